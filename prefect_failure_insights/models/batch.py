"""Batch insights: a window of failures, its errors, their classifications and the batch's figures."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

from pydantic import BaseModel, Field

from prefect_failure_insights.defaults import CONFIDENT_CLASSIFICATION
from prefect_failure_insights.exceptions import InputError
from prefect_failure_insights.models.common import Redacted, utc
from prefect_failure_insights.models.runs import FlowRunInfo


class Filters(BaseModel):
    """Which failures a batch covers (empty lists: all)."""

    tags: list[str] = Field(default_factory=list)
    deployments: list[str] = Field(default_factory=list)
    flows: list[str] = Field(default_factory=list)
    work_pools: list[str] = Field(default_factory=list)

    def describe(self) -> str:
        parts = [f"{k}={','.join(v)}" for k, v in self.model_dump().items() if v]
        return "; ".join(parts) or "all runs"


class BatchWindow(BaseModel):
    """A batch's window ``[start, end)`` in UTC and its filters; its id derives from them."""

    start: datetime
    end: datetime
    filters: Filters = Field(default_factory=Filters)

    @property
    def batch_id(self) -> str:
        """Deterministic: the same window and filters always give the same id."""
        key = json.dumps({"start": utc(self.start).isoformat(), "end": utc(self.end).isoformat(),
                          "filters": {k: sorted(v) for k, v in sorted(self.filters.model_dump().items())}},
                         sort_keys=True)
        return hashlib.sha256(key.encode()).hexdigest()[:32]

    def previous(self) -> BatchWindow:
        """The window of the same length and filters just before this one (for trends)."""
        return BatchWindow(start=self.start - (self.end - self.start), end=self.start, filters=self.filters)

    def narrowed(self, **filters: list[str]) -> BatchWindow:
        """The same window with some filters replaced (a partition of a fan-out)."""
        return self.model_copy(update={"filters": self.filters.model_copy(update=filters)})

    @property
    def title(self) -> str:
        return (f"Failure insights {self.start:%Y-%m-%d %H:%M} – {self.end:%Y-%m-%d %H:%M} UTC "
                f"({self.filters.describe()})")


def resolve_window(hours: float, since: datetime | None = None, until: datetime | None = None,
                   *, filters: Filters | None = None, scheduled: datetime | None = None) -> BatchWindow:
    """A batch's window: explicit bounds, else the ``hours`` before ``until``, or before a
    scheduled run's scheduled time (to the minute, so that consecutive scheduled windows
    tile exactly), or before now (an ad-hoc run: a failure of a second ago is in it).

    Raises:
        InputError: the window is empty.
    """
    end = utc(until) if until else (utc(scheduled).replace(second=0, microsecond=0) if scheduled
                                    else datetime.now(timezone.utc))
    start = utc(since) if since else end - timedelta(hours=hours)
    if start >= end:
        raise InputError(f"The window is empty: since {start.isoformat()} is not before until {end.isoformat()}.")
    return BatchWindow(start=start, end=end, filters=filters or Filters())


def failed_runs(rows: list[ClassifiedError]) -> int:
    """How many failed runs ``rows`` are the errors of: the one definition the CLI, the report
    and the JSON export use. A failed run is a root run: a failed subflow whose parent is in
    the window is part of its parent's failure (its errors are the parent's), not a run of its
    own; the plugin's own runs are not counted."""
    return len({r.error.run.id for r in rows})


class FailureError(BaseModel):
    """One error of a failed run: a failed task, or the run when it failed outside any task."""

    error_id: str
    run: FlowRunInfo
    task_run_id: str | None = None
    failed_task: Redacted | None = None
    exception_type: str | None = None
    error_text: Redacted


class WindowFailures(BaseModel):
    """The errors read from a window, and what reading them found."""

    errors: list[FailureError] = Field(default_factory=list)
    runs_queried: int = 0
    capped: bool = Field(default=False, description="max_runs was reached: only the newest runs were read.")
    skipped: int = Field(default=0, description="Errors of the plugin's own runs, left out.")


class ErrorItem(BaseModel):
    """One error to classify: a failed task, a crashed run, or a line of `classify --input`."""

    id: str
    error_text: Redacted
    exception_type: str | None = None
    known_category: str | None = Field(default=None, description="The LLM category of the run's summary.")


class Classification(BaseModel):
    """A category for one error, and how it was decided."""

    id: str
    category: str
    confidence: float
    classified_by: str = Field(description="correction | rule:<name> | model:<version> | cache | llm | none")
    reasoning: Redacted
    transience: str = Field(default="UNKNOWN", description="TRANSIENT | INTERMITTENT | PERMANENT | UNKNOWN")
    signature: str
    fingerprint: str
    group: str | None = Field(default=None, description="The signature that stands for this error's group of "
                              "similar errors (`analysis.similarity.group_similar`); None: its own.")

    @property
    def method(self) -> str:
        """``rule:missing-module`` -> ``rule``."""
        return self.classified_by.split(":")[0]

    @property
    def low_confidence(self) -> bool:
        """A best guess below `CONFIDENT_CLASSIFICATION`: the answer, flagged as unsure."""
        return self.category == "UNKNOWN" or (self.method not in ("correction", "llm", "cache") and self.confidence < CONFIDENT_CLASSIFICATION)


class ClassifiedError(BaseModel):
    """One row of a batch: an error and its classification."""

    error: FailureError
    classification: Classification

    @property
    def category(self) -> str:
        return self.classification.category


class Correction(BaseModel):
    """The team's category for one error signature (the latest correction wins)."""

    fingerprint: str
    signature: str
    error_text: Redacted
    exception_type: str | None = None
    category: str
    corrected_by: str | None = None
    flow_run_id: str | None = None
    source: str | None = Field(default=None, description="The file it was imported from.")
    created_at: datetime | None = None


class ClassificationUsage(BaseModel):
    """What classifying a batch cost, and how its errors were decided."""

    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    llm_stopped: str | None = Field(default=None, description="Why the LLM was not asked for the rest.")


def count_methods(rows: Iterable[ClassifiedError]) -> dict[str, int]:
    """Errors by how they were classified (``rule``, ``llm``, ``correction``, ...)."""
    return dict(Counter(r.classification.method for r in rows))


class BatchMetrics(BaseModel):
    """The figures of one batch execution, stored with the batch (``batch_runs.metrics``)."""

    runs_queried: int = 0
    capped: bool = False
    skipped: int = 0
    errors_extracted: int = 0
    unknown: int = 0
    classified_by: dict[str, int] = Field(default_factory=dict)
    llm_calls: int = 0
    llm_tokens: int = 0
    llm_cost_usd: float = 0.0
    llm_model: str | None = None
    llm_note: str | None = None
    partitions: list[str] = Field(default_factory=list)
    failed_partitions: list[str] = Field(default_factory=list)
    duration_s: float = 0.0

    @classmethod
    def of(cls, rows: list[ClassifiedError], read: WindowFailures, usage: ClassificationUsage,
           *, llm_model: str | None) -> BatchMetrics:
        """The figures of a batch classified here."""
        return cls(
            runs_queried=read.runs_queried, capped=read.capped, skipped=read.skipped,
            llm_calls=usage.llm_calls, llm_tokens=usage.prompt_tokens + usage.completion_tokens,
            llm_cost_usd=round(usage.cost_usd, 6), llm_model=llm_model, llm_note=usage.llm_stopped,
        ).counted(rows)

    @classmethod
    def combined(cls, rows: list[ClassifiedError], partitions: list[str], children: list[BatchMetrics],
                 *, failed_partitions: list[str]) -> BatchMetrics:
        """The figures of a fan-out: its children's, added up."""
        return cls(
            partitions=partitions, failed_partitions=failed_partitions,
            runs_queried=sum(c.runs_queried for c in children), skipped=sum(c.skipped for c in children),
            capped=any(c.capped for c in children), llm_calls=sum(c.llm_calls for c in children),
            llm_tokens=sum(c.llm_tokens for c in children),
            llm_cost_usd=round(sum(c.llm_cost_usd for c in children), 6),
        ).counted(rows)

    def counted(self, rows: list[ClassifiedError]) -> BatchMetrics:
        """With the figures that follow from the rows."""
        return self.model_copy(update={
            "errors_extracted": len(rows), "classified_by": count_methods(rows),
            "unknown": sum(1 for r in rows if r.category == "UNKNOWN"),
        })


class PartitionRun(BaseModel):
    """One partition's child run of a fan-out: its window, and what went wrong when it did not complete."""

    name: str
    window: BatchWindow
    problem: str | None = None


class BatchRecord(BaseModel):
    """A stored batch (``batch_runs``)."""

    window: BatchWindow
    status: str = "completed"
    metrics: BatchMetrics = Field(default_factory=BatchMetrics)
    report: str | None = None
    flow_run_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class BatchResult(BaseModel):
    """What one batch-insights run produced."""

    window: BatchWindow
    metrics: BatchMetrics
    report: str
    rows: list[ClassifiedError] = Field(default_factory=list)
    previous_rows: list[ClassifiedError] | None = None
    artifact_id: str | None = None

    @property
    def batch_id(self) -> str:
        return self.window.batch_id
