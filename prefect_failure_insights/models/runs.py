"""A failed run as the plugin reads it: the run, its subflows and task runs, its log lines."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel, Field, field_validator

from prefect_failure_insights.models.common import Inert, Redacted, bounded
from prefect_failure_insights.redaction import Redactor

_FAILED_TYPES = frozenset({"FAILED", "CRASHED"})


@dataclass(slots=True)
class LogLine:
    """One log record of a failed run, numbered in log order (1-based).

    A plain slotted dataclass rather than a pydantic model: a run can have
    100,000 of these.
    """

    lineno: int
    timestamp: str
    level: int
    message: str
    logger: str | None = None
    flow_run_id: str | None = None
    task_run_id: str | None = None
    task_run_name: str | None = None

    @property
    def level_name(self) -> str:
        return level_name(self.level)


_LEVEL_NAMES = {50: "CRITICAL", 40: "ERROR", 30: "WARNING", 20: "INFO", 10: "DEBUG"}


def level_name(level: int) -> str:
    """``40`` -> ``"ERROR"``; unknown numbers become ``"LEVEL<n>"``."""
    return _LEVEL_NAMES.get(level, f"LEVEL{level}")


class TaskRunInfo(BaseModel):
    """A task run of the failed run (or of one of its subflows)."""

    id: str | None = None
    name: Redacted
    state: Inert = Field(description="State name, e.g. 'Failed' or 'Completed'.")
    state_type: str | None = Field(default=None, description="e.g. 'FAILED'.")
    message: Redacted | None = None
    run_count: int = 1
    flow_run_id: str | None = None
    end_time: datetime | None = None

    @property
    def failed(self) -> bool:
        return (self.state_type or self.state).upper() in _FAILED_TYPES


class FlowRunInfo(BaseModel):
    """The facts about one flow run that a summary needs (names and messages redacted)."""

    id: str
    name: Redacted
    flow_name: Redacted
    flow_id: str | None = None
    deployment: Redacted | None = Field(default=None, description="'flow/deployment'.")
    deployment_id: str | None = None
    work_pool: Redacted | None = None
    work_pool_id: str | None = None
    tags: list[Redacted] = Field(default_factory=list)
    state: Inert = Field(description="State name, e.g. 'Failed' or 'Crashed'.")
    state_type: str | None = None
    state_message: Redacted | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    run_count: int = 1
    parent_task_run_id: str | None = None
    auto_retries: int = Field(default=0, description="Times failure-insights retried the run automatically "
                              "(counted from its state history; read for a summarized run only).")

    @property
    def failed(self) -> bool:
        return (self.state_type or self.state).upper() in _FAILED_TYPES

    @property
    def crashed(self) -> bool:
        return (self.state_type or self.state).upper() == "CRASHED"


class FailedRun(BaseModel):
    """A failed root flow run with its failed subflows and all their task runs."""

    run: FlowRunInfo
    subflows: list[FlowRunInfo] = Field(
        default_factory=list, description="Failed descendant flow runs, parents first."
    )
    task_runs: list[TaskRunInfo] = Field(default_factory=list)

    @property
    def failed_tasks(self) -> list[TaskRunInfo]:
        """Failed task runs, excluding the placeholders of failed subflows."""
        subflow_parents = {s.parent_task_run_id for s in self.subflows}
        return [t for t in self.task_runs if t.failed and t.id not in subflow_parents]


class Target(BaseModel):
    """Which run a trigger is about, after following subflows up to their root.

    ``skip_reason`` is set when nothing should be summarized now: a run of the plugin's
    own flows, a subflow whose parent is still running (the parent's own failure will
    trigger the one summary) or whose parent recovered, a run out of the settings' scope.
    """

    requested: FlowRunInfo
    root: FlowRunInfo
    skip_reason: str | None = None


class LogSection(BaseModel):
    """Extra evidence from another system (e.g. the failed Airbyte attempt's logs)."""

    title: Redacted
    source: str
    header: list[Redacted] = Field(default_factory=list)
    lines: list[LogLine] = Field(default_factory=list)

    @field_validator("lines")
    @classmethod
    def _redacted(cls, lines: list[LogLine]) -> list[LogLine]:
        """Log lines are dataclasses (no field validation): redacted here, where a section enters."""
        for line in lines:
            line.message = Redactor().redact(bounded(line.message))
        return lines


class Baseline(BaseModel):
    """The deployment's last successful run, to compare the failed run with."""

    flow_run_id: str
    flow_run_name: Redacted
    differences: list[Redacted] = Field(
        default_factory=list,
        description="What differs: deployment version, work pool, parameter names, job variables.",
    )
    templates: list[Redacted] = Field(
        default_factory=list, description="Templates of its WARNING and ERROR lines."
    )


@dataclass
class LogWait:
    """How waiting for a run's late logs went.

    ``complete``: every run's final-state record was stored (or, for a run that cannot write it,
    a crashed one or one with no record at all, no record came for the quiet period).
    ``incomplete_runs``: the runs whose final-state record had not been stored when the wait ended.
    """

    complete: bool
    waited_s: float
    run_ids: list[str] = field(default_factory=list)
    incomplete_runs: list[str] = field(default_factory=list)

    @property
    def note(self) -> str | None:
        """What a summary made from these logs says of them, when they were incomplete."""
        if self.complete:
            return None
        return (f"logs incomplete: the run's final-state record had not been stored {self.waited_s:.0f} s "
                "after the summary started; the summary is made again when it is")
