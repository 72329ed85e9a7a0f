"""Reading a failed run's logs: waiting until they are complete, then streaming them.

Logs reach the API late: for a 50,000-line run, up to ~46 s after the run ended, and
Prefect ships them in batches every 2 s. The last record a flow run writes is
``Finished in state Failed(...)`` (or ``Crashed``) from the ``prefect.flow_runs``
logger, so `wait_for_run_logs` polls for that marker, with a quiet-period rule for runs
that never write it (killed processes, logging to the API turned off) and an
overall bound.

`read_run_logs` streams each run's ``GET /flow_runs/{id}/logs/download`` (CSV, paged
1,000 rows at a time on the server) straight to a temporary file, falling back to
paging ``/logs/filter`` when the endpoint is missing. `RunLogs` then parses the files
lazily and merges the runs in time order: memory stays flat whatever the log size.
"""

from __future__ import annotations

import csv
import heapq
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import anyio
import httpx
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId, LogFilterLevel
from prefect.client.schemas.sorting import LogSort

from prefect_failure_insights.models import LogLine, LogWait, TaskRunInfo
from prefect_failure_insights.prefect_api.paging import pages
from prefect_failure_insights.prefect_api.runs import failed_subflows
from prefect_failure_insights.redaction import Redactor

MARKER = "Finished in state"
MARKER_LOGGER = "prefect.flow_runs"
QUIET_SECONDS = 5.0
POLL_SECONDS = 0.2
NEWEST = 20  # on_failure hooks may log after the marker

csv.field_size_limit(sys.maxsize)  # a traceback or a dumped payload can be megabytes


class RunLogs:
    """A run's log lines, read lazily from temporary files in log order, numbered from 1.

    Deliberately not a list or a pydantic model: Prefect walks task parameters that
    are collections, and a run can have a million lines. An opaque handle is passed
    between tasks instead. The files hold the lines as the API returned them; the only
    way to read them is `lines(redactor)`, which redacts each one as it is read. Call
    `close()` to delete the files.
    """

    def __init__(self, files: dict[str, Path], directory: tempfile.TemporaryDirectory[str] | None,
                 source: str, read_ms: float, line_count: int) -> None:
        self.files = files  # run id -> CSV file (timestamp, level, task_run_id, message, logger)
        self._directory = directory
        self.source = source
        self.read_ms = read_ms
        self.line_count = line_count
        self.task_names: dict[str, str] = {}

    def name_tasks(self, task_runs: Iterable[TaskRunInfo]) -> None:
        """Label lines with the names of the task runs that logged them (applied while reading)."""
        self.task_names = {t.id: t.name for t in task_runs if t.id}

    def _read(self, run_id: str, path: Path) -> Iterator[tuple[str, int, str | None, str, str | None, str]]:
        with open(path, newline="", encoding="utf-8") as fh:
            for ts, level, task_run, message, logger in csv.reader(fh):
                yield ts, int(level), task_run or None, message, logger or None, run_id

    def lines(self, redactor: Redactor) -> RedactedLines:
        """The lines, redacted by ``redactor`` as they are read (iterable more than once)."""
        return RedactedLines(self, redactor)

    def _iter(self, redact: Callable[[str], str]) -> Iterator[LogLine]:
        streams = [self._read(run_id, path) for run_id, path in self.files.items()]
        rows = streams[0] if len(streams) == 1 else heapq.merge(*streams, key=lambda r: r[0])
        names = self.task_names
        for lineno, (ts, level, task_run, message, logger, run_id) in enumerate(rows, start=1):
            yield LogLine(
                lineno=lineno, timestamp=ts, level=level, message=redact(message), logger=logger,
                flow_run_id=run_id, task_run_id=task_run,
                task_run_name=names.get(task_run) if task_run else None,
            )

    def __len__(self) -> int:
        return self.line_count

    def close(self) -> None:
        if self._directory is not None:
            self._directory.cleanup()
            self._directory = None

    def __repr__(self) -> str:
        return f"RunLogs({self.line_count} lines of {len(self.files)} run(s) via {self.source})"


class RedactedLines:
    """A run's log lines as `RunLogs.lines` gives them: redacted, in log order, numbered from 1."""

    def __init__(self, logs: RunLogs, redactor: Redactor) -> None:
        self._logs = logs
        self._redactor = redactor

    def __iter__(self) -> Iterator[LogLine]:
        return self._logs._iter(self._redactor.redact)

    def __len__(self) -> int:
        return self._logs.line_count

    def __repr__(self) -> str:
        return f"redacted {self._logs!r}"


async def _latest_logs(client: PrefectClient, run_id: str) -> list[Any]:
    # Text search (LogFilterTextSearch) would find the marker directly, but it fails
    # with HTTP 500 on SQLite servers whose SQLite lacks concat(); the marker is among
    # the newest records anyway.
    return await client.read_logs(
        log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[UUID(run_id)])),
        limit=NEWEST,
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


async def _download_csv(client: PrefectClient, run_id: str, path: Path) -> int:
    """Stream the run's CSV download into ``path`` (our 5-column format); return the line count.

    Uses the Prefect client's HTTP client (its auth and TLS settings) without its
    response wrapper, which would read the body whole. Raises httpx.HTTPStatusError
    when the endpoint is missing (404/405/501).
    """
    http = client._client
    request = http.build_request("GET", f"/flow_runs/{run_id}/logs/download")
    response = await httpx.AsyncClient.send(http, request, stream=True)
    count = 0
    try:
        response.raise_for_status()
        pending: list[str] = []
        quotes = 0
        header = True
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            async for text in response.aiter_lines():
                pending.append(text)
                quotes += text.count('"')
                if quotes % 2:
                    continue  # inside a quoted, multi-line message
                for record in csv.reader(["\n".join(pending)]):
                    if header:
                        header = False
                    elif len(record) >= 5:
                        ts, level, _flow_run, task_run, message = record[:5]
                        writer.writerow((ts.replace(" ", "T", 1), level or 0, task_run, message, ""))
                        count += 1
                pending, quotes = [], 0
    finally:
        await response.aclose()
    return count


async def _page_filter(client: PrefectClient, run_id: str, path: Path, min_level: int | None = None) -> int:
    count = 0
    log_filter = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[UUID(run_id)]),
                           level=LogFilterLevel(ge_=min_level) if min_level is not None else None)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        async for page in pages(lambda offset, size: client.read_logs(
                log_filter=log_filter, limit=size, offset=offset, sort=LogSort.TIMESTAMP_ASC)):
            for log in page:
                writer.writerow((log.timestamp.isoformat(), log.level, log.task_run_id or "", log.message,
                                 log.name or ""))
            count += len(page)
    return count


async def read_run_logs(client: PrefectClient, run_ids: list[str], min_level: int | None = None) -> RunLogs:
    """Stream the logs of these flow runs (a root and its failed subflows) to temporary files;
    with ``min_level``, only the records at that level or above, filtered by the server (their
    ``lineno`` then counts those records, not the log's lines)."""
    started = time.perf_counter()
    directory = tempfile.TemporaryDirectory(prefix="failure-insights-logs-")
    files: dict[str, Path] = {}
    source = "csv"
    lines = 0
    try:
        for run_id in run_ids:
            path = Path(directory.name) / f"{run_id}.csv"
            if min_level is not None:
                source = f"filter, level >= {min_level}"
                lines += await _page_filter(client, run_id, path, min_level)
                files[run_id] = path
                continue
            try:
                lines += await _download_csv(client, run_id, path)
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code not in (404, 405, 501):
                    raise
                source = "filter"
                lines += await _page_filter(client, run_id, path)
            files[run_id] = path
    except BaseException:
        directory.cleanup()
        raise
    return RunLogs(files, directory, source, (time.perf_counter() - started) * 1000, lines)


async def wait_for_run_logs(client: PrefectClient, root_id: str, max_wait_s: float) -> LogWait:
    """Wait (bounded) until the late-arriving logs of the run and its failed subflows are stored."""
    subflows = await failed_subflows(client, root_id)
    return await wait_for_logs(client, [root_id, *(s.id for s in subflows)], max_wait_s)
