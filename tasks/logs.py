"""Reading a failed run's logs: waiting until they are complete, then reading them fast.

Logs reach the API late: for a 50,000-line run, up to ~46 s after the run ended.
The last record a flow run writes is ``Finished in state Failed(...)`` (or
``Crashed``) from the ``prefect.flow_runs`` logger, so `wait_for_logs` polls for that
marker, with a quiet-period rule for runs that never write it (killed processes,
logging to the API turned off) and an overall bound.

`read_run_logs` reads ``GET /flow_runs/{id}/logs/download`` (CSV, paged 1,000 rows
at a time on the server) instead of paging ``/logs/filter`` 200 rows at a time from
here, and falls back to the latter when the download endpoint is not offered.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import anyio
import httpx
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.client.schemas.sorting import LogSort

from prefect_failure_insights.models import LogLine, TaskRunInfo
from prefect_failure_insights.tasks.runs import failed_subflows

MARKER = "Finished in state"
MARKER_LOGGER = "prefect.flow_runs"
PAGE = 200
QUIET_SECONDS = 5.0
POLL_SECONDS = 0.2


@dataclass
class LogWait:
    """How waiting for late logs went."""

    complete: bool
    waited_s: float
    run_ids: list[str] = field(default_factory=list)
    incomplete_runs: list[str] = field(default_factory=list)


class RunLogs:
    """A run's log lines, in log order.

    Deliberately not a list or a pydantic model: Prefect walks task parameters
    that are collections to find upstream futures, and a run can have 100,000
    lines. An opaque container is passed between tasks as it is.
    """

    __slots__ = ("lines", "source", "read_ms")

    def __init__(self, lines: list[LogLine], source: str, read_ms: float) -> None:
        self.lines = lines
        self.source = source
        self.read_ms = read_ms

    def __len__(self) -> int:
        return len(self.lines)

    def name_tasks(self, task_runs: Iterable[TaskRunInfo]) -> None:
        """Label each line with the name of the task run that logged it."""
        names = {t.id: t.name for t in task_runs}
        for line in self.lines:
            if line.task_run_id:
                line.task_run_name = names.get(line.task_run_id)

    def __repr__(self) -> str:
        return f"RunLogs({len(self.lines)} lines from {self.source})"


async def _latest_logs(client: PrefectClient, run_id: str, n: int = 5) -> list:
    # Text search (LogFilterTextSearch) would find the marker directly, but it fails
    # with HTTP 500 on SQLite servers whose SQLite lacks concat(); the marker is the
    # newest record anyway.
    return await client.read_logs(
        log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[UUID(run_id)])),
        limit=n,
        sort=LogSort.TIMESTAMP_DESC,
    )


def _is_marker(log: Any) -> bool:
    return log.task_run_id is None and log.name == MARKER_LOGGER and log.message.startswith(MARKER)


async def wait_for_logs(
    client: PrefectClient,
    run_ids: Iterable[str],
    max_wait_s: float,
    quiet_s: float = QUIET_SECONDS,
    poll_s: float = POLL_SECONDS,
) -> LogWait:
    """Wait until every run's logs are complete, at most ``max_wait_s`` seconds.

    A run's logs are complete when its final-state marker is stored, or when no
    new record has arrived for ``quiet_s`` seconds.
    """
    started = time.monotonic()
    all_runs = list(dict.fromkeys(run_ids))
    pending = list(all_runs)
    newest: dict[str, tuple[str | None, float]] = {}
    while True:
        still: list[str] = []
        for run_id in pending:
            recent = await _latest_logs(client, run_id)
            if any(_is_marker(log) for log in recent):
                continue
            latest = str(recent[0].id) if recent else None
            now = time.monotonic()
            seen, since = newest.get(run_id, (None, now))
            if run_id not in newest or latest != seen:
                newest[run_id] = (latest, now)
                still.append(run_id)
            elif now - since < quiet_s:
                still.append(run_id)
        pending = still
        waited = time.monotonic() - started
        if not pending:
            return LogWait(complete=True, waited_s=waited, run_ids=all_runs)
        if waited >= max_wait_s:
            return LogWait(complete=False, waited_s=waited, run_ids=all_runs, incomplete_runs=pending)
        await anyio.sleep(min(poll_s, max(max_wait_s - waited, 0)))


async def _download_csv(client: PrefectClient, run_id: str) -> list[tuple[str, int, str | None, str]]:
    """``(timestamp, level, task_run_id, message)`` rows from the CSV endpoint.

    Read through the Prefect client's own HTTP client so that its auth, TLS and
    retry settings apply. Raises httpx.HTTPStatusError when the endpoint is missing.
    """
    response = await client._client.get(f"/flow_runs/{run_id}/logs/download")
    response.raise_for_status()
    rows: list[tuple[str, int, str | None, str]] = []
    reader = csv.reader(io.StringIO(response.text, newline=""))
    next(reader, None)  # header
    for record in reader:
        if len(record) < 5:
            continue
        ts, level, _flow_run, task_run, message = record[:5]
        rows.append((ts.replace(" ", "T", 1), int(level or 0), task_run or None, message))
    return rows


async def _page_filter(client: PrefectClient, run_id: str) -> AsyncIterator[tuple[str, int, str | None, str, str | None]]:
    offset = 0
    while True:
        page = await client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[UUID(run_id)])),
            limit=PAGE,
            offset=offset,
            sort=LogSort.TIMESTAMP_ASC,
        )
        for log in page:
            yield (log.timestamp.isoformat(), log.level, str(log.task_run_id) if log.task_run_id else None,
                   log.message, log.name)
        if len(page) < PAGE:
            return
        offset += PAGE


async def read_logs(client: PrefectClient, run_ids: list[str]) -> RunLogs:
    """All logs of these flow runs (a root and its failed subflows), merged in time order and numbered."""
    started = time.perf_counter()
    rows: list[tuple[str, int, str | None, str, str | None, str]] = []
    source = "csv"
    for run_id in run_ids:
        try:
            for ts, level, task_run, message in await _download_csv(client, run_id):
                rows.append((ts, level, task_run, message, None, run_id))
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code not in (404, 405, 501):
                raise
            source = "filter"
            rows = [r for r in rows if r[5] != run_id]
            async for ts, level, task_run, message, logger in _page_filter(client, run_id):
                rows.append((ts, level, task_run, message, logger, run_id))
    if len(run_ids) > 1:
        rows.sort(key=lambda r: r[0])  # stable: keeps each run's own order on ties
    lines = [
        LogLine(
            lineno=i,
            timestamp=ts,
            level=level,
            message=message,
            logger=logger,
            flow_run_id=run_id,
            task_run_id=task_run,
        )
        for i, (ts, level, task_run, message, logger, run_id) in enumerate(rows, start=1)
    ]
    return RunLogs(lines, source, (time.perf_counter() - started) * 1000)


@task(name="wait-for-logs", cache_policy=NO_CACHE)
async def wait_for_run_logs(root_id: str, max_wait_s: float) -> LogWait:
    """Wait (bounded) until the late-arriving logs of the run and its failed subflows are stored."""
    async with get_client() as client:
        subflows = await failed_subflows(client, root_id)
        return await wait_for_logs(client, [root_id, *(s.id for s in subflows)], max_wait_s)


@task(name="read-logs", cache_policy=NO_CACHE)
async def read_run_logs(run_ids: list[str]) -> RunLogs:
    """Read every log line of the failed run and its failed subflows."""
    async with get_client() as client:
        return await read_logs(client, run_ids)
