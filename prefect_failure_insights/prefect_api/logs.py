"""Reading a failed run's logs: following them while they arrive, or streaming them whole.

Logs reach the API late: for a 50,000-line run, up to ~46 s after the run ended, and
Prefect ships them in batches every 2 s, in the order they were logged. The last record
a flow run writes is ``Finished in state Failed(...)`` (or ``Crashed``) from the
``prefect.flow_runs`` logger: the "logs are complete" marker. A run that cannot write it (a
crashed one, whose process was killed, or one with no record at all: logging to the API turned
off) is complete after a quiet period; every other run waits for its marker, within an overall
bound. Measured, a 20,000-line run's error records were stored ~50 s after it ended, after
minutes of silence in which a quiet rule had declared its logs complete. Runs still without
their marker when the bound is reached are waited for again, longer, by
`wait_for_final_records` (the summary says meanwhile that its logs are incomplete).

`follow_run_logs` reads the records *while* they arrive, with a timestamp cursor per run
(``POST /logs/filter``, time order, one page per request, the records at the cursor's
instant told apart by id), spooling them to temporary files; when the marker is stored,
only the last page is left to read. Then it checks with one request per run that the
server holds no record older than the cursor beyond those read (a record shipped out of
order): if it does, the run is read again whole. `read_run_logs` streams each run's
``GET /flow_runs/{id}/logs/download`` (CSV, paged 1,000 rows at a time on the server) to a
file, falling back to paging ``/logs/filter`` when the endpoint is missing. `RunLogs`
then parses the files lazily and merges the runs in time order: memory stays flat
whatever the log size.
"""

from __future__ import annotations

import csv
import heapq
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import anyio
import httpx
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId, LogFilterLevel
from prefect.client.schemas.sorting import LogSort

from prefect_failure_insights.defaults import API_PAGE, LATE_LOG_POLL_SECONDS, SUMMARY_RECORD_PREFIX
from prefect_failure_insights.models import FlowRunInfo, LogLine, LogWait, TaskRunInfo, bounded
from prefect_failure_insights.prefect_api.paging import pages
from prefect_failure_insights.prefect_api.runs import failed_subflows
from prefect_failure_insights.redaction import LogRedactor, Redactor

MARKER = "Finished in state"
MARKER_LOGGER = "prefect.flow_runs"
QUIET_SECONDS = 5.0
#: A failed run with records but no final-state record yet: so long without a new record ends the
#: wait too, but the logs then count as incomplete (the summary says so and is made again if the
#: record comes). Measured: a SQLite-backed server stored a 20,000-line run's last records ~50 s
#: late, in batches; a run set Failed through the API never writes the record at all.
LATE_QUIET_SECONDS = 20.0
POLL_SECONDS = 0.2

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
                 source: str, *, read_ms: float, line_count: int) -> None:
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
        """The lines, redacted by ``redactor`` as they are read, in order (a `LogRedactor` per pass:
        a private key logged one line per record goes whole); iterable more than once."""
        return RedactedLines(self, redactor)

    def _iter(self, redactor: Redactor) -> Iterator[LogLine]:
        streams = [self._read(run_id, path) for run_id, path in self.files.items()]
        rows = streams[0] if len(streams) == 1 else heapq.merge(*streams, key=lambda r: r[0])
        names = self.task_names
        # The plugin's own record pointing at a summary is not part of the run's story.
        rows = (r for r in rows if not (r[2] is None and r[3].startswith(SUMMARY_RECORD_PREFIX)))
        log = LogRedactor(redactor)  # in log order: a key logged one line per record is redacted whole
        for lineno, (ts, level, task_run, message, logger, run_id) in enumerate(rows, start=1):
            yield LogLine(
                lineno=lineno, timestamp=ts, level=level, message=log.redact(message, stream=task_run or run_id),
                logger=logger,
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
        return self._logs._iter(self._redactor)

    def __len__(self) -> int:
        return self._logs.line_count

    def __repr__(self) -> str:
        return f"redacted {self._logs!r}"


def _row(timestamp: str, level: Any, task_run_id: Any, message: str, logger: str | None) -> tuple[Any, ...]:
    """A record as `RunLogs` files hold it: timestamp, level, task run id, message (`bounded`:
    one message is never larger than Prefect's own limit), logger."""
    return timestamp, level or 0, task_run_id or "", bounded(message or ""), logger or ""


def _is_marker(record: dict[str, Any]) -> bool:
    return (record.get("task_run_id") is None and record.get("name") == MARKER_LOGGER
            and str(record.get("message", "")).startswith(MARKER))


class _Cursor:
    """One run's records read so far, in time order, spooled to a CSV file in `RunLogs`' format."""

    def __init__(self, run_id: str, path: Path) -> None:
        self.run_id = run_id
        self.path = path
        self._fh = open(path, "w", newline="", encoding="utf-8")  # noqa: SIM115 - closed by `close`
        self._writer = csv.writer(self._fh)
        self.after: str | None = None  # the newest record's timestamp, as the API wrote it
        self._newest: datetime | None = None
        self._at_newest: set[str] = set()  # ids of the records read at that instant
        self.count = 0
        self.marker = False
        self.last_new = time.monotonic()

    def _filter(self) -> dict[str, Any]:
        found: dict[str, Any] = {"flow_run_id": {"any_": [self.run_id]}}
        if self.after is not None:
            found["timestamp"] = {"after_": self.after}  # inclusive: the instant's other records
        return found

    async def poll(self, client: PrefectClient) -> None:
        """Read the records stored since the last poll."""
        new = 0
        while True:
            # Skip the records at the cursor's instant already read (their order among equal
            # timestamps is the database's; the completeness check catches a reordering).
            response = await client.request("POST", "/logs/filter", json={
                "logs": self._filter(), "sort": "TIMESTAMP_ASC", "limit": API_PAGE,
                "offset": len(self._at_newest)})
            page = response.json()
            for record in page:
                if str(record["id"]) in self._at_newest:
                    continue
                stamp = datetime.fromisoformat(record["timestamp"])
                if self._newest is None or stamp > self._newest:
                    self._newest, self.after, self._at_newest = stamp, record["timestamp"], set()
                self._at_newest.add(str(record["id"]))
                self._writer.writerow(_row(stamp.isoformat(), record.get("level"), record.get("task_run_id"),
                                           record.get("message", ""), record.get("name")))
                self.marker = self.marker or _is_marker(record)
                new += 1
            if len(page) < API_PAGE:
                break
        if new:
            self.count += new
            self.last_new = time.monotonic()

    async def missed(self, client: PrefectClient) -> bool:
        """Whether the server holds a record at or before the cursor that was not read (one
        was stored out of time order): one request, past the records read."""
        self.close()
        found = self._filter()
        if self.after is not None:
            found["timestamp"] = {"before_": self.after}
        response = await client.request("POST", "/logs/filter", json={
            "logs": found, "sort": "TIMESTAMP_ASC", "limit": 1, "offset": self.count})
        return bool(response.json())

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()


async def follow_logs(
    client: PrefectClient,
    run_ids: Iterable[str],
    max_wait_s: float,
    *,
    crashed: Iterable[str] = (),
    quiet_s: float = QUIET_SECONDS,
    late_quiet_s: float = LATE_QUIET_SECONDS,
    poll_s: float = POLL_SECONDS,
) -> tuple[LogWait, RunLogs]:
    """Read every run's records as they are stored, until its logs are complete, at most
    ``max_wait_s`` seconds: its final-state marker is stored or, for the ``crashed`` runs and
    runs with no record yet, no new record arrived for ``quiet_s``. Any other run also stops
    being waited for after ``late_quiet_s`` without a new record, but counts as incomplete.

    Returns how the wait went and the logs read. Nothing is lost to the cursor: a run whose
    server holds more records up to the cursor than were read is read again whole.
    """
    started = time.monotonic()
    all_runs = list(dict.fromkeys(run_ids))
    directory = tempfile.TemporaryDirectory(prefix="failure-insights-logs-")
    cursors = {run_id: _Cursor(run_id, Path(directory.name) / f"{run_id}.csv") for run_id in all_runs}
    source = "follow"
    may_be_quiet = set(crashed)
    incomplete: list[_Cursor] = []  # ended by the long quiet rule, without their marker
    try:
        pending = list(cursors.values())
        while True:
            for cursor in pending:
                await cursor.poll(client)
            now = time.monotonic()
            quiet = [c for c in pending if not c.marker and now - c.last_new >= (
                quiet_s if c.run_id in may_be_quiet or c.count == 0 else late_quiet_s)]
            pending = [c for c in pending if not c.marker and c not in quiet]
            incomplete.extend(c for c in quiet if c.run_id not in may_be_quiet and c.count)
            waited = now - started
            if not pending or waited >= max_wait_s:
                break
            await anyio.sleep(min(poll_s, max(max_wait_s - waited, 0)))
        lines = 0
        for cursor in cursors.values():
            if await cursor.missed(client):
                source = "follow, re-read (records stored out of time order)"
                cursor.count, _ = await _download_or_page(client, cursor.run_id, cursor.path)
            lines += cursor.count
    except BaseException:
        for cursor in cursors.values():
            cursor.close()
        directory.cleanup()
        raise
    missing = [c.run_id for c in [*incomplete, *pending]]
    wait = LogWait(complete=not missing, waited_s=waited, run_ids=all_runs, incomplete_runs=missing)
    files = {run_id: cursor.path for run_id, cursor in cursors.items()}
    return wait, RunLogs(files, directory, source, read_ms=(time.monotonic() - started) * 1000, line_count=lines)


async def _download_csv(client: PrefectClient, run_id: str, path: Path) -> int:
    """Stream the run's CSV download into ``path`` (our 5-column format); return the line count.

    Uses the Prefect client's HTTP client (its auth, headers and TLS settings) with httpx's own
    ``send``: Prefect's request wrapper closes a streamed response (measured: ``StreamClosed``) and
    `PrefectClient.request` reads the body whole, a million lines in memory. The one request that
    leaves the wrapper; every other goes through it. Raises httpx.HTTPStatusError when the endpoint
    is missing (404/405/501).
    """
    http = client._client
    response = await httpx.AsyncClient.send(http, http.build_request("GET", f"/flow_runs/{run_id}/logs/download"),
                                            stream=True)
    return await _write_csv(response, path)


async def _write_csv(response: httpx.Response, path: Path) -> int:
    """The download's records into ``path``, as they arrive."""
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
                        writer.writerow(_row(ts.replace(" ", "T", 1), level, task_run, message, None))
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
                writer.writerow(_row(log.timestamp.isoformat(), log.level, log.task_run_id, log.message, log.name))
            count += len(page)
    return count


async def _download_or_page(client: PrefectClient, run_id: str, path: Path) -> tuple[int, str]:
    """Every record of the run into ``path``: the CSV download, or pages where it is missing;
    the count and how it was read."""
    try:
        return await _download_csv(client, run_id, path), "csv"
    except httpx.HTTPStatusError as exc:
        if exc.response.status_code not in (404, 405, 501):
            raise
        return await _page_filter(client, run_id, path), "filter"


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
            count, source = await _download_or_page(client, run_id, path)
            lines += count
            files[run_id] = path
    except BaseException:
        directory.cleanup()
        raise
    return RunLogs(files, directory, source, read_ms=(time.perf_counter() - started) * 1000, line_count=lines)


async def follow_run_logs(client: PrefectClient, root: FlowRunInfo, max_wait_s: float) -> tuple[LogWait, RunLogs]:
    """Read the logs of the run and its failed subflows while their late records arrive (bounded)."""
    subflows = await failed_subflows(client, root.id)
    crashed = [r.id for r in (root, *subflows) if r.crashed]
    return await follow_logs(client, [root.id, *(s.id for s in subflows)], max_wait_s, crashed=crashed)


async def has_final_record(client: PrefectClient, run_id: str) -> bool:
    """Whether the run's final-state record is stored (among its newest records: hooks may log after it)."""
    newest = await client.read_logs(
        log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[UUID(run_id)])),
        limit=API_PAGE, sort=LogSort.TIMESTAMP_DESC)
    return any(log.task_run_id is None and log.name == MARKER_LOGGER and log.message.startswith(MARKER)
               for log in newest)


async def wait_for_final_records(client: PrefectClient, waited: LogWait, max_wait_s: float,
                                 *, poll_s: float = LATE_LOG_POLL_SECONDS) -> LogWait:
    """After a summary made from incomplete logs: wait, at most ``max_wait_s`` more, until every
    incomplete run's final-state record is stored. How the whole wait went."""
    started = time.monotonic()
    missing = list(waited.incomplete_runs)
    while missing:
        missing = [run_id for run_id in missing if not await has_final_record(client, run_id)]
        if not missing or time.monotonic() - started >= max_wait_s:
            break
        await anyio.sleep(poll_s)
    return LogWait(complete=not missing, waited_s=waited.waited_s + time.monotonic() - started,
                   run_ids=waited.run_ids, incomplete_runs=missing)
