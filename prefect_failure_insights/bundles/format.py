"""Run bundles: a failed run as one self-contained JSON file, for offline analysis.

``failure-insights export RUN_ID -o run.json.gz`` writes one (`bundles.export`);
``summarize --bundle`` and ``evidence --bundle`` analyse it with no Prefect server, through
the same evidence, analysis and rendering code as the live flow (`bundles.offline`). Users attach bundles to bug reports and
replay prompts on them; the tests use them as fixtures.

A bundle is a JSON object (gzip-compressed when the name ends in ``.gz``)::

    {"flow_run_id", "flow_run_name", "flow_name", "deployment", "tags", "work_pool",
     "state": "Failed" | "Crashed", "state_message", "start_time", "end_time", "run_count",
     "task_runs": [{"name", "state", "message", "id"?, "run_count"?, "flow_run_id"?}],
     "subflows":  [{"flow_run_id", "flow_run_name", "flow_name", "state", "state_message",
                    "task_runs"?: [...], "logs"?: [...]}],
     "logs": [{"timestamp", "level": "ERROR", "name", "message", "task_run_name",
               "task_run_id"?, "flow_run_id"?}],
     "baseline"?: {"flow_run_id", "flow_run_name", "differences", "templates"},
     "notes"?: ["..."]}

Subflows may be nested (with their own ``task_runs`` and ``logs``) or flattened into
the top-level lists. Unknown fields are ignored. Exported bundles are redacted: names,
messages and log lines pass through the same redaction as summaries, so a bundle can
be shared.
"""

from __future__ import annotations

import gzip
import json
import zlib
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from prefect_failure_insights.exceptions import BundleError
from prefect_failure_insights.models import (
    Baseline,
    FailedRun,
    FlowRunInfo,
    LogLine,
    LogSection,
    Redacted,
    TaskRunInfo,
)

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


class BundleTaskRun(_Model):
    name: Redacted
    state: str = "Unknown"
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
            tags=self.tags, state=self.state, state_type=self.state.upper(), state_message=self.state_message,
            start_time=self.start_time, end_time=self.end_time, run_count=self.run_count,
        )


class Bundle(BundleRun):
    """A failed run, self-contained."""

    format: str = FORMAT
    version: int = VERSION
    baseline: Baseline | None = None
    sections: list[LogSection] = Field(default_factory=list, description="Other systems' logs.")
    notes: list[str] = Field(default_factory=list)
    exported_at: datetime | None = None

    @field_validator("state")
    @classmethod
    def _failed(cls, value: str) -> str:
        if value.upper() not in {"FAILED", "CRASHED"}:
            raise ValueError(f"state is {value!r}: a bundle holds a Failed or Crashed run")
        return value

    def _all_runs(self) -> list[BundleRun]:
        out: list[BundleRun] = []
        stack = list(self.subflows)
        while stack:
            run = stack.pop(0)
            out.append(run)
            stack.extend(run.subflows)
        return out

    def failed_run(self) -> FailedRun:
        """The run, its (flattened) failed subflows and all task runs."""
        runs = self._all_runs()
        task_runs = []
        for owner in [self, *runs]:
            for t in owner.task_runs:
                task_runs.append(TaskRunInfo(
                    id=t.id or f"{owner.flow_run_id}:{t.name}", name=t.name, state=t.state,
                    state_type=t.state.upper(), message=t.message, run_count=t.run_count,
                    flow_run_id=t.flow_run_id or owner.flow_run_id,
                ))
        subflows = [r.info() for r in runs if r.state.upper() in {"FAILED", "CRASHED"}]
        return FailedRun(run=self.info(), subflows=subflows, task_runs=task_runs)

    def log_lines(self) -> list[LogLine]:
        """All log lines, merged in time order (stable), numbered from 1."""
        tagged: list[tuple[str, int, BundleLog, str]] = []
        order = 0
        for owner in [self, *self._all_runs()]:
            for log in owner.logs:
                tagged.append((log.timestamp, order, log, log.flow_run_id or owner.flow_run_id))
                order += 1
        if self.subflows:
            tagged.sort(key=lambda t: (t[0], t[1]))
        # Logs may name their task run without its id: use the id failed_run() gives it.
        ids = {(t.flow_run_id, t.name): t.id for t in self.failed_run().task_runs}
        lines = []
        for lineno, (_ts, _order, log, run_id) in enumerate(tagged, start=1):
            task_key = log.task_run_id or (
                ids.get((run_id, log.task_run_name), f"{run_id}:{log.task_run_name}")
                if log.task_run_name else None
            )
            lines.append(LogLine(
                lineno=lineno, timestamp=log.timestamp, level=log.level, message=log.message,
                logger=log.name, flow_run_id=run_id, task_run_id=task_key, task_run_name=log.task_run_name,
            ))
        return lines


def load_bundle(path: str | Path) -> Bundle:
    """Read a bundle (``.gz`` transparently).

    Raises:
        BundleError: the file is missing, not JSON, or not a bundle; the message says which.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BundleError(f"Cannot read bundle {path}: {exc.strerror or exc}.") from exc
    try:
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        data = json.loads(raw)
    except (OSError, EOFError, ValueError, zlib.error) as exc:
        raise BundleError(
            f"{path} is not a bundle: not valid JSON{' (gzip)' if path.suffix == '.gz' else ''} "
            f"({str(exc).splitlines()[0]}). Create one with `failure-insights export RUN_ID -o {path.name}`."
        ) from exc
    if not isinstance(data, dict):
        raise BundleError(f"{path} is not a bundle: the JSON is not an object.")
    try:
        return Bundle.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "bundle"
        raise BundleError(
            f"{path} is not a valid bundle: {where}: {first['msg']} ({exc.error_count()} problem(s))."
        ) from exc


def write_bundle(bundle: Bundle, path: str | Path) -> Path:
    """Write ``bundle`` to ``path`` (gzip when it ends in ``.gz``), atomically."""
    path = Path(path)
    data = bundle.model_dump_json(exclude_none=True).encode()
    if path.suffix == ".gz":
        data = gzip.compress(data, compresslevel=6)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_bytes(data)
    tmp.replace(path)  # never a half-written bundle under the real name
    return path
