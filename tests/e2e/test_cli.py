"""The `failure-insights` CLI against the running system: results, and one-line errors."""

from __future__ import annotations

import json
import uuid

import pytest
from prefect_failure_insights.blocks import FailureInsightsSettings

from prefect_failure_insights.defaults import BATCH_CRON, BATCH_HOURS
from prefect_failure_insights.testing.prefect_server import free_port

pytestmark = pytest.mark.e2e


def _one_line_error(result, code: int, *fragments: str) -> None:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_bad_input_is_one_line_and_exit_code_2(e2e) -> None:
    _one_line_error(e2e.cli("summary", "create", str(uuid.uuid4())), 2, "No flow run with id")
    _one_line_error(e2e.cli("summary", "create", "not-a-run-id"), 2, "No flow run with id")
    ok_id = e2e.run_pipeline("ok")
    _one_line_error(e2e.cli("summary", "create", ok_id), 2, "is Completed, not Failed or Crashed")
    _one_line_error(e2e.cli("summary", "show", str(uuid.uuid4())), 2, "No summary for flow run")
    _one_line_error(e2e.cli("summary", "show", ok_id, "--settings-block", "nope"), 2,
                    "No failure-insights-settings block named 'nope'")
    _one_line_error(e2e.cli("summary", "list", "--since", "yesterday-ish"), 2, "--since")
    _one_line_error(e2e.cli("summary", "list", "--category", "COSMIC"), 2, "--category")
    _one_line_error(e2e.cli("serve", "--batch-cron", "every morning"), 2, "is not a cron expression")
    # No summarizer run was created for any of that bad input.
    assert e2e.summarizer_runs(ok_id) == []


def test_the_previous_release_names_still_work_and_say_the_new_one(e2e) -> None:
    """Renamed commands (`show` is `summary show` now) keep working for one release, with a note."""
    result = e2e.cli("show", str(uuid.uuid4()))
    assert result.returncode == 2
    note, error = result.stderr.strip().splitlines()
    assert note.startswith("Note: `failure-insights show` is now `failure-insights summary show`")
    assert error.startswith("Error: No summary for flow run")


def test_unreachable_api_and_database_are_one_line_and_exit_code_1(e2e) -> None:
    env = {**e2e.env, "PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api"}
    _one_line_error(e2e.cli("summary", "show", str(uuid.uuid4()), env=env), 1, "Cannot reach the Prefect API")

    from prefect_sqlalchemy import ConnectionComponents, SqlAlchemyConnector

    e2e.save_block(SqlAlchemyConnector(connection_info=ConnectionComponents(
        driver="postgresql+psycopg", username="etl", password="hunter2", host="127.0.0.1",
        port=free_port(), database="x")), "down-db")
    e2e.save_block(FailureInsightsSettings(database_block_name="down-db"), "db-down")
    result = e2e.cli("summary", "list", "--settings-block", "db-down")
    _one_line_error(result, 1, "Check that the database is running")
    assert "hunter2" not in result.stderr


def test_summarize_show_list_and_regenerate(e2e) -> None:
    run_id = e2e.run_pipeline("vendor")
    e2e.wait_for_row(e2e.sqlite_engine(), run_id)

    existing = e2e.cli("summary", "create", run_id)
    assert existing.returncode == 0, existing.stderr
    assert "existing summary" in existing.stderr and "What happened:" in existing.stdout

    regenerated = e2e.cli("summary", "create", run_id, "--regenerate", "--format", "json")
    assert regenerated.returncode == 0, regenerated.stderr
    assert json.loads(regenerated.stdout)["delivery"]["regenerated"] is True
    artifacts = e2e.summary_artifacts(run_id)
    assert len(artifacts) == 1 and "Regenerated at" in artifacts[0].data  # one per run, updated in place

    shown = e2e.cli("summary", "show", run_id, "--format", "json")
    assert shown.returncode == 0
    data = json.loads(shown.stdout)
    assert data["run"]["id"] == run_id and data["delivery"]["regenerated"] is True
    assert data["usage"]["prompt_version"] and data["usage"]["model"] == "fake-model"

    listed = json.loads(e2e.cli("summary", "list", "--format", "json", "--flow", "e2e-vendor-sync").stdout)
    assert listed["total"] >= 1
    assert any(s["flow_run_id"] == run_id and s["prompt_tokens"] for s in listed["summaries"])
    text = e2e.cli("summary", "list", "--limit", "1")
    assert text.returncode == 0 and "Showing 1-1 of" in text.stdout


def test_llm_url_and_model_override_the_block_for_one_call(e2e) -> None:
    from prefect_failure_insights.testing.fake_llm import FakeLLM

    run_id = e2e.run_pipeline("vendor")
    e2e.wait_for_row(e2e.sqlite_engine(), run_id)
    with FakeLLM(model="other-model") as other:
        result = e2e.cli("summary", "create", run_id, "--regenerate", "--format", "json",
                         "--llm-url", other.url, "--llm-model", "other-model")
        assert result.returncode == 0, result.stderr
        bodies = other.completions()
    assert len(bodies) == 1 and bodies[0]["model"] == "other-model"
    data = json.loads(result.stdout)
    assert data["status"] == "llm" and data["usage"]["model"] == "other-model"
    listed = json.loads(e2e.cli("summary", "list", "--format", "json", "--flow", "e2e-vendor-sync").stdout)
    row = next(s for s in listed["summaries"] if s["flow_run_id"] == run_id)
    assert row["model"] == "other-model" and row["prompt_tokens"] and row["latency_ms"] and not row["cache_hit"]
    assert "cost_usd" in row  # unpriced model: present, null


def test_automation_commands_are_idempotent_and_doctor_reports(e2e) -> None:
    first = e2e.cli("automation", "install")
    second = e2e.cli("automation", "install")
    assert first.returncode == 0 and second.returncode == 0
    assert "unchanged" in second.stdout
    status = e2e.cli("automation", "status")
    assert status.returncode == 0 and "Installed and enabled" in status.stdout

    doctor = e2e.cli("doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    for name in ("Prefect API", "Settings", "LLM", "Database", "LLM limit", "Automation", "Summarizer",
                 "Batch insights"):
        assert name in doctor.stdout
    assert "[FAIL]" not in doctor.stdout
    assert "[ ok ] LLM limit" in doctor.stdout  # `automation install` created it
    assert "[ ok ] Batch insights" in doctor.stdout  # scheduled and served by `serve`

    async def shrink(client):
        await client.upsert_global_concurrency_limit_by_name("failure-insights-llm", 99)

    e2e.call(shrink)
    doctor = e2e.cli("doctor")
    assert "[warn] LLM limit" in doctor.stdout and "99 slots" in doctor.stdout

    e2e.save_block(FailureInsightsSettings(daily_token_budget=10**9), "roomy")
    e2e.save_block(FailureInsightsSettings(daily_token_budget=0), "spent")
    assert "[ ok ] LLM budget" in e2e.cli("doctor", "--settings-block", "roomy").stdout
    spent = e2e.cli("doctor", "--settings-block", "spent").stdout
    assert "[warn] LLM budget" in spent and "token budget (0) is spent" in spent

    e2e.fake.default = "401"
    doctor = e2e.cli("doctor")
    assert doctor.returncode == 1 and "rejected the API key" in doctor.stdout


@pytest.mark.core
def test_serve_schedules_batch_insights_and_executes_its_runs(e2e) -> None:
    """`failure-insights serve` (started by the fixture) also serves the daily batch deployment."""
    from prefect.deployments import run_deployment

    async def read(client):
        return await client.read_deployment_by_name("batch-insights/batch-insights")

    deployment = e2e.call(read)
    assert [(s.schedule.cron, s.schedule.timezone) for s in deployment.schedules] == [(BATCH_CRON, "UTC")]
    assert deployment.parameters["hours"] == BATCH_HOURS

    e2e.run_pipeline("vendor")  # a failure for the window

    async def start(_client):
        return await run_deployment("batch-insights/batch-insights", parameters={"hours": 1, "use_llm": False},
                                    timeout=120)

    run = e2e.call(start)
    assert run.state and run.state.is_completed(), (run.state, e2e.serve_log.read_text()[-3000:])

    async def artifacts(client):
        from prefect.client.schemas.filters import (
            ArtifactFilter,
            ArtifactFilterFlowRunId,
        )

        return await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))

    keys = {a.key for a in e2e.call(artifacts)}
    assert {"batch-insights", "batch-insights-errors"} <= keys


def test_prefect_yaml_deploys_the_summarizer(e2e, tmp_path) -> None:
    """The documented worker path: `prefect deploy --all` from prefect.yaml, then the automation."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    shutil.copy(root / "prefect.yaml", tmp_path / "prefect.yaml")
    env = {**e2e.env, "PREFECT_CLI_PROMPT": "false"}
    prefect = [sys.executable, "-m", "prefect"]
    subprocess.run([*prefect, "work-pool", "create", "failure-insights", "--type", "process"],
                   env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    deployed = subprocess.run([*prefect, "--no-prompt", "deploy", "--all"], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=180)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr

    async def read(client):
        return await client.read_deployment_by_name("summarize-failure/failure-insights")

    deployment = e2e.call(read)
    assert deployment.entrypoint == "prefect_failure_insights.flows.on_failure_summary:summarize_failure"
    assert deployment.work_pool_name == "failure-insights"

    async def read_batch(client):
        return await client.read_deployment_by_name("batch-insights/batch-insights")

    batch = e2e.call(read_batch)
    assert batch.entrypoint == "prefect_failure_insights.flows.batch_insights:batch_insights"
    # The same schedule as `failure-insights serve` gives it.
    assert [s.schedule.cron for s in batch.schedules] == [BATCH_CRON] and batch.parameters["hours"] == BATCH_HOURS
    assert e2e.cli("automation", "install").returncode == 0


def test_export_then_summarize_bundle_offline_reproduces_the_live_summary(e2e, tmp_path) -> None:
    import gzip

    run_id = e2e.run_pipeline("vendor")
    live = e2e.wait_for_row(e2e.sqlite_engine(), run_id)
    path = tmp_path / "run.json.gz"
    exported = e2e.cli("summary", "export", run_id, "-o", str(path))
    assert exported.returncode == 0, exported.stderr
    raw = gzip.decompress(path.read_bytes()).decode()
    for secret in ["Pl4nted-DB-pass", "pLaNtEdBeArErToKeN0123456789abcdef", "AKIAPLANTED0EXAMPLE1"]:
        assert secret not in raw

    # Offline: no Prefect API at all, the LLM from the environment.
    offline_env = {**e2e.env, "PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api",
                   "FAILURE_INSIGHTS_LLM_URL": e2e.fake.url, "FAILURE_INSIGHTS_LLM_MODEL": "fake-model"}
    result = e2e.cli("summary", "create", "--bundle", str(path), "--format", "json", env=offline_env)
    assert result.returncode == 0, result.stderr
    offline = json.loads(result.stdout)
    assert offline["evidence"] == live.evidence.model_dump(mode="json")
    assert offline["analysis"] == live.analysis.model_dump(mode="json")
    assert offline["status"] == "llm" and offline["run"]["id"] == run_id
    assert offline["recurrence"]["fingerprint"] == live.recurrence.fingerprint

    shown = e2e.cli("summary", "evidence", "--bundle", str(path), "--format", "json", env=offline_env)
    data = json.loads(shown.stdout)
    assert data["text"] == live.evidence.text and data["root_error_line"] == live.evidence.root_error_line
    assert set(data) >= {"text", "tokens", "kept_lines", "redactions", "root_error", "failed_task", "elapsed_ms"}
