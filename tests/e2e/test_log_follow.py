"""Following a run's logs while they arrive (real server): every record read once, nothing lost
to the cursor, and the run read again whole when records were stored out of time order."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from uuid import uuid4

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import LogCreate
from prefect import flow

from prefect_failure_insights.models import LogWait
from prefect_failure_insights.prefect_api.logs import MARKER, MARKER_LOGGER, follow_logs, wait_for_final_records
from prefect_failure_insights.redaction import Redactor


@flow(name="log-follow-test")
def _placeholder() -> None:
    pass


async def _run(client) -> str:
    return str((await client.create_flow_run(_placeholder, name="follow")).id)


def _record(run_id: str, at: datetime, i: int, message: str | None = None, name: str = "prefect.task_runs",
            level: int = 20) -> LogCreate:
    return LogCreate(name=name, level=level, message=message or f"line {i}", timestamp=at, flow_run_id=run_id)


async def _follow_while(client, run_id: str, arriving):
    """Follow the run's log while ``arriving`` stores records; the wait, the logs and their lines."""
    (wait, logs), _ = await asyncio.gather(follow_logs(client, [run_id], max_wait_s=30, poll_s=0.1), arriving)
    try:
        return wait, logs, list(logs.lines(Redactor()))
    finally:
        logs.close()


def test_records_arriving_in_order_are_read_as_they_come_and_once_each(prefect_server) -> None:
    async def go():
        async with get_client() as client:
            run_id = await _run(client)
            start = datetime.now(timezone.utc)
            # 450 records at one instant (more than a page) tell the cursor's tie-break apart.
            await client.create_logs([_record(run_id, start, i) for i in range(450)])

            async def arrive() -> None:
                for batch in range(3):
                    await asyncio.sleep(0.4)
                    at = start + timedelta(milliseconds=batch * 300)
                    await client.create_logs([_record(run_id, at + timedelta(microseconds=i), 1000 + batch * 300 + i)
                                              for i in range(300)])
                await client.create_logs([_record(run_id, start + timedelta(seconds=1), -1,
                                                  f"{MARKER} Failed('boom')", MARKER_LOGGER, 40)])

            return await _follow_while(client, run_id, arrive())

    wait, logs, lines = asyncio.run(go())
    assert wait.complete and logs.source == "follow"
    assert len(lines) == len(logs) == 450 + 900 + 1
    assert len({ln.message for ln in lines}) == len(lines)  # none twice
    assert [ln.timestamp for ln in lines] == sorted(ln.timestamp for ln in lines)
    assert lines[-1].message.startswith(MARKER)


def test_records_stored_out_of_time_order_are_not_lost(prefect_server) -> None:
    async def go():
        async with get_client() as client:
            run_id = await _run(client)
            start = datetime.now(timezone.utc)
            await client.create_logs([_record(run_id, start + timedelta(seconds=5), 0, "the error", level=40)])

            async def late() -> None:
                await asyncio.sleep(0.5)  # after the cursor passed them: older than what it read
                await client.create_logs([_record(run_id, start + timedelta(milliseconds=i), i) for i in range(1, 300)])
                await client.create_logs([_record(run_id, start + timedelta(seconds=6), -1,
                                                  f"{MARKER} Failed('boom')", MARKER_LOGGER, 40)])

            return await _follow_while(client, run_id, late())

    wait, logs, lines = asyncio.run(go())
    assert wait.complete and "re-read" in logs.source
    assert len(lines) == len(logs) == 301
    assert lines[0].message == "line 1" and lines[-1].message.startswith(MARKER)


def test_a_crashed_run_or_one_without_records_ends_by_the_quiet_rule(prefect_server) -> None:
    """A killed process never writes its final-state record; nor does a run that logs nothing to the API."""
    async def go():
        async with get_client() as client:
            crashed, silent = await _run(client), await _run(client)
            await client.create_logs([_record(crashed, datetime.now(timezone.utc), i) for i in range(3)])
            wait, logs = await follow_logs(client, [crashed, silent], max_wait_s=30, crashed=[crashed],
                                           quiet_s=0.5, poll_s=0.1)
            logs.close()
            return wait, logs

    wait, logs = asyncio.run(go())
    assert wait.complete and len(logs) == 3 and wait.waited_s < 5


def test_a_failed_run_waits_for_its_final_record_and_says_when_it_did_not_come(prefect_server) -> None:
    """Measured: a 20,000-line run's error records were stored ~50 s after it ended, after a silence
    a quiet rule took for the end. A failed run's logs are complete only with its marker."""
    async def go():
        async with get_client() as client:
            run_id = await _run(client)
            await client.create_logs([_record(run_id, datetime.now(timezone.utc), i) for i in range(3)])
            wait, logs = await follow_logs(client, [run_id], max_wait_s=2, quiet_s=0.2, poll_s=0.1)
            logs.close()
            # A long silence ends the wait too (a run set Failed through the API never writes the
            # record), but the logs stay incomplete.
            silent, logs = await follow_logs(client, [run_id], max_wait_s=30, quiet_s=0.2, late_quiet_s=0.5,
                                             poll_s=0.1)
            logs.close()
            assert not silent.complete and silent.waited_s < 10 and silent.incomplete_runs == [run_id]

            async def late() -> None:
                await asyncio.sleep(1.0)
                await client.create_logs([_record(run_id, datetime.now(timezone.utc), -1,
                                                  f"{MARKER} Failed('boom')", MARKER_LOGGER, 40)])

            arrival = asyncio.create_task(late())
            later = await wait_for_final_records(client, wait, max_wait_s=30, poll_s=0.2)
            await arrival
            never = await wait_for_final_records(client, LogWait(complete=False, waited_s=2, run_ids=[str(uuid4())],
                                                                 incomplete_runs=[str(uuid4())]),
                                                 max_wait_s=0.5, poll_s=0.1)
            return wait, later, never

    wait, later, never = asyncio.run(go())
    assert not wait.complete and wait.waited_s >= 2 and wait.note and "incomplete" in wait.note
    assert later.complete and later.incomplete_runs == [] and later.note is None
    assert not never.complete
