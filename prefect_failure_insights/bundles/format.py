"""Run bundles: a failed run as one self-contained JSON file, for offline analysis.

``failure-insights summary export RUN_ID -o run.json.gz`` writes one (`bundles.export`);
``summary create --bundle`` and ``summary evidence --bundle`` analyse it with no Prefect server,
through the same evidence, analysis and rendering code as the live flow (`bundles.offline`).
Users attach bundles to bug reports and replay prompts on them; the tests use them as fixtures.

A bundle is a JSON object (gzip-compressed when the name ends in ``.gz``)::

    {"flow_run_id", "flow_run_name", "flow_name", "deployment", "tags", "work_pool",
     "state": "Failed" | "Crashed" | any name, "state_type"?: "FAILED" | "CRASHED",
     "state_message", "start_time", "end_time", "run_count",
     "task_runs": [{"name", "state", "state_type"?, "message", "id"?, "run_count"?, "flow_run_id"?}],
     "subflows":  [{"flow_run_id", "flow_run_name", "flow_name", "state", "state_message",
                    "task_runs"?: [...], "logs"?: [...]}],
     "logs": [{"timestamp", "level": "ERROR", "name", "message", "task_run_name",
               "task_run_id"?, "flow_run_id"?}],
     "baseline"?: {"flow_run_id", "flow_run_name", "differences", "templates"},
     "notes"?: ["..."]}

A failure is a state *type*, not a name: Prefect names a timed-out run's Failed state
``TimedOut``, and a flow may return ``Failed(name="ContractViolated")``. ``state_type`` says
which type a state is; without it, Prefect's own names tell (``Crashed`` is CRASHED, ``Completed``
COMPLETED, ...) and any other name of a bundle's failed run is FAILED.

Subflows may be nested (with their own ``task_runs`` and ``logs``) or flattened into
the top-level lists; each run's logs are in time order. Unknown fields are ignored.
Exported bundles are redacted: names, messages and log lines pass through the same
redaction as summaries, so a bundle can be shared.

Reading streams the file (`ijson`): log lines go to a temporary spool, one file per run,
as they are parsed and redacted, and are read back lazily, so memory stays flat whatever
the number of lines (a 1,000,000-line bundle: see bench/bundles.py). Writing streams the
same way.
"""

from __future__ import annotations

import csv
import gzip
import heapq
import json
import re
import sys
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any

import ijson
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from prefect_failure_insights.defaults import BUNDLE_MAX_DEPTH, BUNDLE_MAX_VALUE_BYTES
from prefect_failure_insights.exceptions import BundleError
from prefect_failure_insights.models import (
    Baseline,
    FailedRun,
    FlowRunInfo,
    LogLine,
    LogSection,
    Redacted,
    TaskRunInfo,
    bounded,
)
from prefect_failure_insights.redaction import LogRedactor, Redactor

FORMAT = "prefect-failure-insights/bundle"
VERSION = 1
_LEVELS = {"CRITICAL": 50, "FATAL": 50, "ERROR": 40, "WARNING": 30, "WARN": 30, "INFO": 20, "DEBUG": 10}


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class BundleLog(_Model):
    timestamp: str = ""
    level: int = 20
    name: str | None = None
    message: Redacted = ""
    task_run_name: Redacted | None = None
    task_run_id: str | None = None
    flow_run_id: str | None = None

    @field_validator("level", mode="before")
    @classmethod
    def _level(cls, value: Any) -> int:
        if isinstance(value, str) and not value.strip().isdigit():
            if value.strip().upper() not in _LEVELS:
                raise ValueError(f"unknown level {value!r}")
            return _LEVELS[value.strip().upper()]
        return int(value)

    @field_validator("timestamp", mode="before")
    @classmethod
    def _timestamp(cls, value: Any) -> str:
        return value.isoformat() if isinstance(value, datetime) else str(value or "")


#: Prefect's own state names that are not failures, by type (any other name is a failure's own).
_TYPE_OF_NAME = MappingProxyType({
    "completed": "COMPLETED", "cached": "COMPLETED", "rolledback": "COMPLETED", "crashed": "CRASHED",
    "cancelled": "CANCELLED", "cancelling": "CANCELLING", "running": "RUNNING", "retrying": "RUNNING",
    "pending": "PENDING", "notready": "PENDING", "submitting": "PENDING", "infrastructurepending": "PENDING",
    "scheduled": "SCHEDULED", "late": "SCHEDULED", "awaitingretry": "SCHEDULED",
    "awaitingconcurrencyslot": "SCHEDULED", "paused": "PAUSED", "suspended": "PAUSED", "unknown": "UNKNOWN",
})


def state_type_of(name: str, given: str | None = None) -> str:
    """The type of a state named ``name`` (``given`` when the bundle says it): FAILED for a name
    Prefect does not use for another type (``Failed``, ``TimedOut``, ``ContractViolated``)."""
    if given:
        return given.upper()
    return _TYPE_OF_NAME.get(name.strip().lower().replace(" ", ""), "FAILED")


class BundleTaskRun(_Model):
    name: Redacted
    state: str = "Unknown"
    state_type: str | None = None
    message: Redacted | None = None
    id: str | None = None
    run_count: int = 1
    flow_run_id: str | None = None


class BundleRun(_Model):
    """A flow run in a bundle: the top level, or a (nested) subflow."""

    flow_run_id: str
    flow_run_name: Redacted = ""
    flow_name: Redacted = ""
    deployment: Redacted | None = None
    tags: list[Redacted] = Field(default_factory=list)
    work_pool: Redacted | None = None
    state: str
    state_type: str | None = None
    state_message: Redacted | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    run_count: int = 1
    task_runs: list[BundleTaskRun] = Field(default_factory=list)
    logs: list[BundleLog] = Field(default_factory=list)
    subflows: list[BundleRun] = Field(default_factory=list)

    def info(self) -> FlowRunInfo:
        return FlowRunInfo(
            id=self.flow_run_id, name=self.flow_run_name or self.flow_run_id,
            flow_name=self.flow_name or "unknown-flow", deployment=self.deployment, work_pool=self.work_pool,
            tags=self.tags, state=self.state, state_type=state_type_of(self.state, self.state_type),
            state_message=self.state_message,
            start_time=self.start_time, end_time=self.end_time, run_count=self.run_count,
        )


class LogSpool:
    """A bundle's log lines in temporary files, one per run, in the order they were added."""

    def __init__(self) -> None:
        csv.field_size_limit(sys.maxsize)
        # Lines arrive in each run's log order: a key logged one line per record is redacted whole.
        self.log_redactor = LogRedactor(Redactor())
        self._directory: tempfile.TemporaryDirectory[str] | None = tempfile.TemporaryDirectory(
            prefix="failure-insights-bundle-")
        self._files: dict[str, tuple[Path, IO[str], Any]] = {}
        self.count = 0

    def add(self, owner: str, log: BundleLog) -> None:
        """Append a (validated, redacted) line of the run ``owner``."""
        if owner not in self._files:
            assert self._directory is not None
            path = Path(self._directory.name) / f"{len(self._files)}.csv"
            fh = path.open("w", newline="", encoding="utf-8")
            self._files[owner] = (path, fh, csv.writer(fh))
        self._files[owner][2].writerow([log.timestamp, log.level, log.name or "", log.message,
                                        "" if log.task_run_name is None else log.task_run_name,
                                        log.task_run_id or "", log.flow_run_id or ""])
        self.count += 1

    def close_writers(self) -> None:
        for _path, fh, _writer in self._files.values():
            fh.close()

    def owners(self) -> list[str]:
        return list(self._files)

    def read(self, owner: str) -> Iterator[BundleLog]:
        if owner not in self._files:
            return
        with self._files[owner][0].open(newline="", encoding="utf-8") as fh:
            for ts, level, name, message, task_name, task_id, run_id in csv.reader(fh):
                yield BundleLog.model_construct(timestamp=ts, level=int(level), name=name or None, message=message,
                                                task_run_name=task_name or None, task_run_id=task_id or None,
                                                flow_run_id=run_id or None)

    def cleanup(self) -> None:
        self.close_writers()
        if self._directory is not None:
            self._directory.cleanup()
            self._directory = None


class BundleLines:
    """A bundle's log lines as `Bundle.log_lines` gives them: merged in time order, numbered
    from 1, read lazily (iterable more than once)."""

    def __init__(self, bundle: Bundle) -> None:
        self._bundle = bundle

    def __iter__(self) -> Iterator[LogLine]:
        return self._bundle._iter_lines()

    def __len__(self) -> int:
        return self._bundle.log_count

    def __getitem__(self, index: int) -> LogLine:  # for tests and small bundles
        return list(self)[index]


class Bundle(BundleRun):
    """A failed run, self-contained."""

    format: str = FORMAT
    version: int = VERSION
    baseline: Baseline | None = None
    sections: list[LogSection] = Field(default_factory=list, description="Other systems' logs.")
    notes: list[str] = Field(default_factory=list)
    exported_at: datetime | None = None
    #: Log lines kept in temporary files (a streamed read), by run path ("" the top run,
    #: "0.1" its first subflow's second subflow), instead of in the ``logs`` lists.
    _spool: LogSpool | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _failed(self) -> Bundle:
        kind = state_type_of(self.state, self.state_type)
        if kind not in ("FAILED", "CRASHED"):
            raise ValueError(f"state is {self.state!r} ({kind}): a bundle holds a failed or crashed run")
        return self

    def _all_runs(self) -> list[BundleRun]:
        return [run for _path, run in self._paths()[1:]]

    def _paths(self) -> list[tuple[str, BundleRun]]:
        """Every run with its path, the top run first, then its subflows breadth first."""
        out: list[tuple[str, BundleRun]] = [("", self)]
        queue = [(str(i), run) for i, run in enumerate(self.subflows)]
        while queue:
            path, run = queue.pop(0)
            out.append((path, run))
            queue.extend((f"{path}.{i}", child) for i, child in enumerate(run.subflows))
        return out

    @property
    def log_count(self) -> int:
        """How many log lines the bundle holds."""
        held = sum(len(run.logs) for _path, run in self._paths())
        return held + (self._spool.count if self._spool is not None else 0)

    def failed_run(self) -> FailedRun:
        """The run, its (flattened) failed subflows and all task runs."""
        runs = self._all_runs()
        task_runs = []
        for owner in [self, *runs]:
            for t in owner.task_runs:
                task_runs.append(TaskRunInfo(
                    id=t.id or f"{owner.flow_run_id}:{t.name}", name=t.name, state=t.state,
                    state_type=state_type_of(t.state, t.state_type), message=t.message, run_count=t.run_count,
                    flow_run_id=t.flow_run_id or owner.flow_run_id,
                ))
        subflows = [r.info() for r in runs if state_type_of(r.state, r.state_type) in ("FAILED", "CRASHED")]
        return FailedRun(run=self.info(), subflows=subflows, task_runs=task_runs)

    def log_lines(self) -> BundleLines:
        """All log lines, merged in time order (stable), numbered from 1; read lazily."""
        return BundleLines(self)

    def _iter_lines(self) -> Iterator[LogLine]:
        def stream(path: str, run: BundleRun) -> Iterator[tuple[str, BundleLog, str]]:
            logs: Iterable[BundleLog] = run.logs
            if self._spool is not None:
                logs = [*run.logs, *self._spool.read(path)] if run.logs else self._spool.read(path)
            for log in logs:
                yield log.timestamp, log, log.flow_run_id or run.flow_run_id

        streams = [stream(path, run) for path, run in self._paths()]
        merged = heapq.merge(*streams, key=lambda t: t[0]) if self.subflows else streams[0]
        # Logs may name their task run without its id: use the id failed_run() gives it.
        ids = {(t.flow_run_id, t.name): t.id for t in self.failed_run().task_runs}
        for lineno, (_ts, log, run_id) in enumerate(merged, start=1):
            task_key = log.task_run_id or (
                ids.get((run_id, log.task_run_name), f"{run_id}:{log.task_run_name}")
                if log.task_run_name else None
            )
            yield LogLine(
                lineno=lineno, timestamp=log.timestamp, level=log.level, message=log.message,
                logger=log.name, flow_run_id=run_id, task_run_id=task_key, task_run_name=log.task_run_name,
            )


#: Where log items sit in a bundle: ``logs.item``, ``subflows.item.logs.item``, ...
_LOG_ITEM = re.compile(r"(?:subflows\.item\.)*logs\.item")
_SUBFLOW = re.compile(r"(?:subflows\.item\.)*subflows\.item")


def _open(path: Path) -> IO[bytes]:
    fh = path.open("rb")
    if fh.read(2) == b"\x1f\x8b":
        fh.close()
        return gzip.open(path, "rb")
    fh.seek(0)
    return fh


def _not_json(path: Path, exc: Exception) -> BundleError:
    return BundleError(
        f"{path} is not a bundle: not valid JSON{' (gzip)' if path.suffix == '.gz' else ''} "
        f"({(str(exc).splitlines() or [type(exc).__name__])[0]}). "
        f"Create one with `failure-insights summary export RUN_ID -o {path.name}`."
    )


def _invalid(path: Path, exc: ValidationError, prefix: str = "") -> BundleError:
    first = exc.errors()[0]
    where = ".".join([*([prefix] if prefix else []), *(str(p) for p in first["loc"])]) or "bundle"
    return BundleError(f"{path} is not a valid bundle: {where}: {first['msg']} ({exc.error_count()} problem(s)).")


def load_bundle(path: str | Path) -> Bundle:
    """Read a bundle (``.gz`` transparently), streaming: its log lines are spooled, not held.

    Raises:
        BundleError: the file is missing, not JSON, or not a bundle; the message says which.
    """
    path = Path(path)
    try:
        fh = _open(path)
    except OSError as exc:
        raise BundleError(f"Cannot read bundle {path}: {exc.strerror or exc}.") from exc
    spool = LogSpool()
    try:
        with fh:
            data = _parse(path, fh, spool)
        spool.close_writers()
        try:
            bundle = Bundle.model_validate(data)
        except ValidationError as exc:
            raise _invalid(path, exc) from exc
    except BaseException:
        spool.cleanup()
        raise
    bundle._spool = spool
    return bundle


class _Guarded:
    """A bundle's bytes on their way to the JSON parser, refusing a single value larger than
    `BUNDLE_MAX_VALUE_BYTES`: the parser re-reads a value it has not finished at every chunk, so
    a 100 MB log line cost 80 s. ``pending``: bytes read since the parser last produced an event."""

    def __init__(self, raw: IO[bytes], path: Path) -> None:
        self.raw, self.path, self.pending = raw, path, 0

    def read(self, size: int = -1) -> bytes:
        chunk = self.raw.read(size)
        self.pending += len(chunk)
        if self.pending > BUNDLE_MAX_VALUE_BYTES:
            raise BundleError(f"{self.path} is not a valid bundle: it holds a single value larger than "
                              f"{BUNDLE_MAX_VALUE_BYTES:,} bytes (a log message is at most about 1 MB); export the "
                              "run again, or cut that message.")
        return chunk


def _events(path: Path, fh: IO[bytes]) -> Iterator[tuple[str, str, Any]]:
    """``ijson.parse``'s ``(prefix, event, value)``, bounded: the nesting depth is checked before
    any prefix is built (ijson builds every event's prefix from the whole path, so a file nested
    10,000 deep cost minutes and gigabytes before it failed), deeper than `BUNDLE_MAX_DEPTH` is
    refused at once, and so is a single value larger than `BUNDLE_MAX_VALUE_BYTES` (`_Guarded`)."""
    names: list[str] = []  # the path's parts, as ijson names them ("item" for an array's items)
    prefixes = [""]  # prefixes[i]: the first i parts joined
    guarded = _Guarded(fh, path)
    for event, value in ijson.basic_parse(guarded, use_float=True, buf_size=256 * 1024):
        guarded.pending = 0
        if event == "map_key":
            names[-1] = value
            prefixes[-1] = f"{prefixes[-2]}.{value}" if len(names) > 1 else value
            yield prefixes[-2], event, value
            continue
        if event in ("start_map", "start_array"):
            if len(names) >= BUNDLE_MAX_DEPTH:
                raise BundleError(f"{path} is not a valid bundle: it is nested deeper than {BUNDLE_MAX_DEPTH} levels "
                                  f"(at {prefixes[-1][:80] or 'the top'}...); a run's subflows are never that deep.")
            yield prefixes[-1], event, value
            part = "item" if event == "start_array" else ""
            prefixes.append(f"{prefixes[-1]}.{part}" if names else part)
            names.append(part)
            continue
        if event in ("end_map", "end_array"):
            names.pop()
            prefixes.pop()
        yield prefixes[-1], event, value


def _parse(path: Path, fh: IO[bytes], spool: LogSpool) -> dict[str, Any]:
    """The bundle's JSON without its log items, which go to ``spool`` as they are parsed."""
    opens, closes = ("start_map", "start_array"), ("end_map", "end_array")
    document = ijson.ObjectBuilder()
    item: ijson.ObjectBuilder | None = None
    depth, first = 0, True
    counts: dict[str, int] = {}
    owners = [""]  # the run path of each open subflow
    try:
        for prefix, event, value in _events(path, fh):
            if item is not None:  # inside a log item
                item.event(event, value)
                depth += 1 if event in opens else -1 if event in closes else 0
                if depth == 0:
                    _spool_log(path, item.value, owners[-1], counts, spool)
                    item = None
                continue
            if first and event != "start_map":
                raise BundleError(f"{path} is not a bundle: the JSON is not an object.")
            first = False
            if _LOG_ITEM.fullmatch(prefix):  # a log item begins
                item = ijson.ObjectBuilder()
                item.event(event, value)
                depth = 1 if event in opens else 0
                if depth == 0:
                    _spool_log(path, item.value, owners[-1], counts, spool)
                    item = None
                continue
            if _SUBFLOW.fullmatch(prefix) and event == "start_map":
                key = f"sub:{owners[-1]}"
                counts[key] = counts.get(key, 0) + 1
                owners.append(f"{owners[-1]}.{counts[key] - 1}".lstrip("."))
            elif _SUBFLOW.fullmatch(prefix) and event == "end_map":
                owners.pop()
            document.event(event, value)
    except (ijson.JSONError, OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise _not_json(path, exc) from exc
    if first:
        raise _not_json(path, ValueError("the file is empty"))
    return document.value


def _spool_log(path: Path, value: Any, owner: str, counts: dict[str, int], spool: LogSpool) -> None:
    index = counts.get(f"log:{owner}", 0)
    counts[f"log:{owner}"] = index + 1
    if isinstance(value, dict) and isinstance(value.get("message"), str):
        stream = f"{owner}:{value.get('task_run_id') or value.get('task_run_name') or ''}"
        value = {**value, "message": spool.log_redactor.redact(bounded(value["message"]), stream=stream)}
    try:
        spool.add(owner, BundleLog.model_validate(value))
    except ValidationError as exc:
        where = ".".join(f"subflows.{p}" for p in owner.split(".")) + "." if owner else ""
        raise _invalid(path, exc, f"{where}logs.{index}") from exc


def write_bundle(bundle: Bundle, path: str | Path) -> Path:
    """Write ``bundle`` to ``path`` (gzip when it ends in ``.gz``), atomically and streaming:
    subflows and logs are written flattened into the top-level lists."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial")
    head = bundle.model_dump(mode="json", exclude_none=True, exclude={"logs", "subflows"})
    subflows = [run.model_dump(mode="json", exclude_none=True, exclude={"logs", "subflows"})
                for run in bundle._all_runs()]
    try:
        with (gzip.open(tmp, "wt", encoding="utf-8", compresslevel=6) if path.suffix == ".gz"
              else tmp.open("w", encoding="utf-8")) as out:
            out.write(json.dumps(head)[:-1] + ', "subflows": ' + json.dumps(subflows) + ', "logs": [')
            for i, line in enumerate(bundle.log_lines()):
                log = {"timestamp": line.timestamp, "level": line.level, "name": line.logger,
                       "message": line.message, "task_run_name": line.task_run_name,
                       "task_run_id": line.task_run_id, "flow_run_id": line.flow_run_id}
                out.write(("," if i else "") + json.dumps({k: v for k, v in log.items() if v is not None}))
            out.write("]}")
        tmp.replace(path)  # never a half-written bundle under the real name
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
