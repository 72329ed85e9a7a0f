"""The Airbyte log source against a local fake Airbyte API over real HTTP."""

from __future__ import annotations

import asyncio

import pytest
from prefect_failure_insights.blocks import AirbyteLogCredentials
from pydantic import SecretStr

from prefect_failure_insights.evidence.builder import build_evidence
from prefect_failure_insights.evidence.sources import AirbyteSource, parse_airbyte_line
from prefect_failure_insights.models import FailedRun, FlowRunInfo, LogLine, TaskRunInfo
from prefect_failure_insights.testing.fake_airbyte import FakeAirbyte

CONNECTION = "5a1c9d2e-7b3f-4c8a-9e21-0f6d4b8a3c71"
OTHER_CONNECTION = "11111111-2222-4333-8444-555555555555"
ATTEMPT_LOGS = [
    "2026-11-20 02:00:00 INFO i.a.w.g.DefaultReplicationWorker(run):100 - start sync worker",
    "2026-11-20 02:00:01 source > INFO Connecting to jdbc:postgresql://pg.internal:5432/shop as etl",
    *[f"2026-11-20 02:00:{2 + i % 50:02d} destination > INFO wrote batch {i}" for i in range(300)],
    "2026-11-20 02:01:00 source > ERROR org.postgresql.util.PSQLException: FATAL: password authentication "
    "failed for user \"etl\" (password=SourcePgS3cret)",
    "2026-11-20 02:01:01 ERROR i.a.w.g.DefaultReplicationWorker(run):200 - Sync worker failed.",
]


@pytest.fixture
def airbyte():
    with FakeAirbyte() as fake:
        fake.add_job(CONNECTION, "succeeded", [(None, ["ok"])], created_at=1)
        fake.add_job(CONNECTION, "failed", [("Source: first attempt", ["attempt 0 failed"]),
                                            ("Source Postgres: password authentication failed", ATTEMPT_LOGS)],
                     created_at=2)
        fake.add_job(OTHER_CONNECTION, "failed", [("other", ["unrelated"])], created_at=3)
        yield fake


def _failed_sync_run() -> tuple[FailedRun, list[LogLine]]:
    task = TaskRunInfo(id="t1", name="trigger_sync-4f2", state="Failed", state_type="FAILED",
                       message="Task run encountered an exception AirbyteSyncJobFailed: Job 1001 failed.")
    failed = FailedRun(run=FlowRunInfo(id="r1", name="run", flow_name="elt", state="Failed"), task_runs=[task])
    lines = [
        LogLine(1, "2026-11-20T02:00:00+00:00", 20, f"Triggering Airbyte connection {CONNECTION} sync", task_run_id="t1",
                task_run_name="trigger_sync-4f2"),
        LogLine(2, "2026-11-20T02:01:05+00:00", 40,
                "Task run failed with exception: AirbyteSyncJobFailed('Job 1001 failed.') - Retries are exhausted",
                task_run_id="t1", task_run_name="trigger_sync-4f2"),
    ]
    return failed, lines


def _creds(fake: FakeAirbyte, password: str = "password") -> AirbyteLogCredentials:
    return AirbyteLogCredentials(server_url=fake.url, username="airbyte", password=SecretStr(password))


def test_the_failed_attempts_logs_become_a_redacted_evidence_section(airbyte: FakeAirbyte) -> None:
    failed, lines = _failed_sync_run()
    sections = asyncio.run(AirbyteSource(_creds(airbyte)).sections(failed, lines))
    assert len(sections) == 1
    section = sections[0]
    assert section.title.startswith("Airbyte job 1001")
    assert any("password authentication failed" in h for h in section.header)
    assert len(section.lines) == len(ATTEMPT_LOGS)  # the last attempt, not the first
    assert [p for p, _ in airbyte.requests] == ["/api/v1/jobs/list", "/api/v1/jobs/get"]
    assert airbyte.requests[0][1]["configId"] == CONNECTION

    ev = build_evidence(failed, lines, 3000, sections=sections)
    assert ev.tokens <= 3000
    assert "## Airbyte job 1001" in ev.text and "PSQLException" in ev.text
    assert "SourcePgS3cret" not in ev.text
    assert ev.root_error_line == 2  # the Prefect root error stays the run's root error


def test_no_airbyte_task_means_no_request(airbyte: FakeAirbyte) -> None:
    failed = FailedRun(run=FlowRunInfo(id="r1", name="run", flow_name="etl", state="Failed"),
                       task_runs=[TaskRunInfo(id="t1", name="transform-1", state="Failed", state_type="FAILED")])
    assert asyncio.run(AirbyteSource(_creds(airbyte)).sections(failed, [])) == []
    assert airbyte.requests == []


def test_wrong_credentials_raise_an_http_error_the_task_reports(airbyte: FakeAirbyte) -> None:
    import httpx

    failed, lines = _failed_sync_run()
    with pytest.raises(httpx.HTTPStatusError):
        asyncio.run(AirbyteSource(_creds(airbyte, "wrong")).sections(failed, lines))


def test_airbyte_line_levels() -> None:
    assert parse_airbyte_line(1, "2026-11-20 02:01:00 source > ERROR boom").level == 40
    assert parse_airbyte_line(2, "2026-11-20 02:01:00 INFO fine").level == 20
    assert parse_airbyte_line(3, "java.lang.RuntimeException: failure in sync").level == 40
