"""Retry what a retry would fix (issue 15): the automation `retry install` sets up retries a
deployment's run whose summary says TRANSIENT, the way the UI's Retry does, behind a guard.

The pipelines run as deployments served by a runner of their own (`pipelines.py serve`), as
in production: a retried run is picked up again by that runner."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from prefect_failure_insights.defaults import RETRY_STATE_MARK
from prefect_failure_insights.store.summaries import get_summary

from .conftest import HERE, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def deployments(system):
    """The test pipelines served as deployments ``<flow>/e2e``, and the retry automation (2 retries, 1 s)."""
    log_path = system.server.home / "pipelines-serve.log"
    log = open(log_path, "wb")  # noqa: SIM115
    runner = subprocess.Popen([sys.executable, str(HERE / "pipelines.py"), "serve"],
                              env={**system.env, "PREFECT_RUNNER_POLL_FREQUENCY": "1"},
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    installed = system.cli("retry", "install", "--max-retries", "2", "--delay", "1")
    assert installed.returncode == 0, installed.stderr
    try:
        wait_for(lambda: runner.poll() is not None or "e2e-vendor-auth/e2e" in log_path.read_text(errors="replace"),
                 90)
        assert runner.poll() is None, log_path.read_text()
        yield system
    finally:
        system.cli("retry", "uninstall")
        os.killpg(runner.pid, signal.SIGTERM)
        try:
            runner.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(runner.pid, signal.SIGKILL)


def _start(e2e, deployment: str) -> str:
    from prefect.deployments import run_deployment

    async def go(_client):
        return str((await run_deployment(deployment, timeout=0)).id)

    return e2e.call(go)


def _ended(e2e, run_id: str, state_type: str, timeout_s: float = 150):
    def ended():
        run = e2e.flow_run(run_id)
        return run if run.state and run.state.type.value == state_type else None

    return wait_for(ended, timeout_s, interval_s=0.5)


def _our_retries(e2e, run_id: str) -> list:
    return [s for s in e2e.flow_run_states(run_id)
            if s.name == "AwaitingRetry" and (s.message or "").startswith(RETRY_STATE_MARK)]


def _retry_runs(e2e, run_id: str) -> list:
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    async def read(client):
        runs = await client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["retry-transient-failure"])), limit=200)
        return [r for r in runs if str(r.parameters.get("flow_run_id")) == run_id]

    return e2e.call(read)


def test_a_transient_vendor_failure_is_retried_once_and_ends_completed(deployments, e2e) -> None:
    run_id = _start(e2e, "e2e-flaky-vendor/e2e")
    run = _ended(e2e, run_id, "COMPLETED")
    assert run.run_count == 2
    retries = _our_retries(e2e, run_id)
    assert len(retries) == 1 and "1 of 2" in retries[0].message and "THIRD_PARTY_SYSTEM" in retries[0].message
    # The retry is noted in the summary of the failure, row and card.
    summary = wait_for(lambda: (s := get_summary(e2e.sqlite_engine(), run_id)) and s.run.auto_retries == 1 and s)
    cards = wait_for(lambda: [c for c in e2e.summary_artifacts(run_id) if "Retried automatically" in (c.data or "")])
    assert len(e2e.summary_artifacts(run_id)) == 1 and cards[0].id.hex == summary.delivery.artifact_id.replace("-", "")


def test_a_rejected_key_is_not_retried(deployments, e2e) -> None:
    e2e.fake.answer = {**e2e.fake.answer, "title": "Vendor rejected the API key (401)",
                       "root_cause": "The API key is invalid.", "transience": "PERMANENT"}
    run_id = _start(e2e, "e2e-vendor-auth/e2e")
    _ended(e2e, run_id, "FAILED")
    summary = e2e.wait_for_row(e2e.sqlite_engine(), run_id)
    assert summary.analysis.transience.value == "PERMANENT"
    time.sleep(6)  # a retry, if one were coming, would be scheduled by now
    run = e2e.flow_run(run_id)
    assert run.state.type.value == "FAILED" and run.run_count == 1
    assert _our_retries(e2e, run_id) == [] and _retry_runs(e2e, run_id) == []


def test_a_run_that_keeps_failing_is_retried_at_most_n_times(deployments, e2e) -> None:
    run_id = _start(e2e, "e2e-vendor-down/e2e")

    def settled():  # two retries, then a third failure whose retry run refused
        runs = _retry_runs(e2e, run_id)
        done = [r for r in runs if r.state and r.state.is_final()]
        return runs if len(runs) >= 3 and len(done) == len(runs) else None

    runs = wait_for(settled, 240, interval_s=1)
    run = e2e.flow_run(run_id)
    assert run.state.type.value == "FAILED" and run.run_count == 3
    assert [s.message.split(":")[0] for s in _our_retries(e2e, run_id)] == [
        f"{RETRY_STATE_MARK} 1 of 2", f"{RETRY_STATE_MARK} 2 of 2"]
    assert len(runs) == 3  # the third failure's retry run said no
    time.sleep(4)
    assert e2e.flow_run(run_id).run_count == 3 and len(_retry_runs(e2e, run_id)) == 3
    # Each failure got its summary, the last one says the run was retried twice.
    summary = e2e.wait_for_row(e2e.sqlite_engine(), run_id)
    assert summary.run.run_count == 3 and summary.run.auto_retries == 2


def test_the_plugins_own_runs_are_never_retried(deployments, e2e) -> None:
    """The guard refuses the plugin's own flows first, whatever their state and summary say."""
    from prefect_failure_insights.prefect_api.retries import retry_failed_run

    from prefect.states import Failed

    from prefect_failure_insights.defaults import SUMMARIZER_DEPLOYMENT

    async def failed_own_run(client):  # a Failed run of the summarizer's deployment, as if it had failed
        deployment = await client.read_deployment_by_name(SUMMARIZER_DEPLOYMENT)
        return await client.create_flow_run_from_deployment(
            deployment.id, parameters={"flow_run_id": "00000000-0000-0000-0000-000000000000"},
            state=Failed(message="Server error '503 Service Unavailable'"))

    own = e2e.call(failed_own_run)
    outcome = e2e.call(retry_failed_run, str(own.id), None, max_retries=2, delay_s=0,
                       categories=["THIRD_PARTY_SYSTEM"])
    assert not outcome.retried and "plugin's own flows" in outcome.reason
    assert _our_retries(e2e, str(own.id)) == [] and e2e.flow_run(str(own.id)).state.type.value == "FAILED"


def test_retry_commands_are_idempotent_and_refuse_bad_input(deployments, e2e) -> None:
    again = e2e.cli("retry", "install", "--max-retries", "2", "--delay", "1")
    assert again.returncode == 0 and "unchanged" in again.stdout, again.stdout + again.stderr
    status = e2e.cli("retry", "status")
    assert status.returncode == 0 and "at most 2 retr(ies) per run after 1.0 s" in status.stdout, status.stdout
    assert "[ ok ] Retries" in e2e.cli("doctor").stdout
    for args, message in [(("--max-retries", "0"), "out of range"), (("--delay", "-5"), "out of range"),
                          (("--category", "SOMETHING"), "is not a category")]:
        bad = e2e.cli("retry", "install", *args)
        assert bad.returncode == 2 and message in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    assert "at most 2 retr(ies)" in e2e.cli("retry", "status").stdout  # unchanged by the refused calls
