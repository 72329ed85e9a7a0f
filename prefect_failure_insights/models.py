"""Data shapes shared by the flows, the tasks, the CLI and the tests.

Everything a summary is built from or made of is described here, so that the
flow, the on-demand CLI and (later) offline bundles exchange the same objects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator


class Category(str, Enum):
    """Whose problem a failure is. The taxonomy the summaries and the batch use."""

    INPUT_DATA_QUALITY = "INPUT_DATA_QUALITY"
    THIRD_PARTY_SYSTEM = "THIRD_PARTY_SYSTEM"
    WORKFLOW_ENGINE = "WORKFLOW_ENGINE"
    UNKNOWN = "UNKNOWN"


_CATEGORY_SYNONYMS = {
    "DATA": Category.INPUT_DATA_QUALITY,
    "DATA_QUALITY": Category.INPUT_DATA_QUALITY,
    "INPUT_DATA": Category.INPUT_DATA_QUALITY,
    "INPUT": Category.INPUT_DATA_QUALITY,
    "THIRD_PARTY": Category.THIRD_PARTY_SYSTEM,
    "EXTERNAL": Category.THIRD_PARTY_SYSTEM,
    "EXTERNAL_SYSTEM": Category.THIRD_PARTY_SYSTEM,
    "VENDOR": Category.THIRD_PARTY_SYSTEM,
    "WORKFLOW": Category.WORKFLOW_ENGINE,
    "ENGINE": Category.WORKFLOW_ENGINE,
    "INFRASTRUCTURE": Category.WORKFLOW_ENGINE,
    "CODE": Category.WORKFLOW_ENGINE,
    "PIPELINE": Category.WORKFLOW_ENGINE,
}


def parse_category(value: object) -> Category:
    """Map a model's spelling of a category onto the taxonomy, or raise ValueError.

    Small models write ``third-party system`` or ``Third_Party``; those are mapped.
    Anything else is rejected rather than stored as-is.
    """
    if isinstance(value, Category):
        return value
    key = re.sub(r"[^A-Z]+", "_", str(value).upper()).strip("_")
    if key in Category.__members__:
        return Category[key]
    if key in _CATEGORY_SYNONYMS:
        return _CATEGORY_SYNONYMS[key]
    raise ValueError(
        f"category {value!r} is not one of {', '.join(c.value for c in Category)}"
    )


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
    name: str
    state: str = Field(description="State name, e.g. 'Failed' or 'Completed'.")
    state_type: str | None = Field(default=None, description="e.g. 'FAILED'.")
    message: str | None = None
    run_count: int = 1
    flow_run_id: str | None = None
    end_time: datetime | None = None

    @property
    def failed(self) -> bool:
        return (self.state_type or self.state).upper() in {"FAILED", "CRASHED"}


class FlowRunInfo(BaseModel):
    """The facts about one flow run that a summary needs."""

    id: str
    name: str
    flow_name: str
    deployment: str | None = Field(default=None, description="'flow/deployment'.")
    deployment_id: str | None = None
    work_pool: str | None = None
    tags: list[str] = Field(default_factory=list)
    state: str = Field(description="State name, e.g. 'Failed' or 'Crashed'.")
    state_type: str | None = None
    state_message: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    run_count: int = 1
    parent_task_run_id: str | None = None

    @property
    def failed(self) -> bool:
        return (self.state_type or self.state).upper() in {"FAILED", "CRASHED"}

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
    def run_ids(self) -> list[str]:
        return [self.run.id, *(s.id for s in self.subflows)]

    @property
    def failed_tasks(self) -> list[TaskRunInfo]:
        """Failed task runs, excluding the placeholders of failed subflows."""
        subflow_parents = {s.parent_task_run_id for s in self.subflows}
        return [t for t in self.task_runs if t.failed and t.id not in subflow_parents]


class LogSection(BaseModel):
    """Extra evidence from another system (e.g. the failed Airbyte attempt's logs)."""

    title: str
    source: str
    header: list[str] = Field(default_factory=list)
    lines: list[LogLine] = Field(default_factory=list)


class Baseline(BaseModel):
    """The deployment's last successful run, to compare the failed run with."""

    flow_run_id: str
    flow_run_name: str
    differences: list[str] = Field(
        default_factory=list,
        description="What differs: deployment version, work pool, parameter names, job variables.",
    )
    templates: list[str] = Field(
        default_factory=list, description="Templates of its WARNING and ERROR lines."
    )


class Evidence(BaseModel):
    """What may be sent to an LLM: condensed, redacted, with original line numbers."""

    text: str
    tokens: int
    kept_lines: list[int] = Field(default_factory=list)
    redactions: dict[str, int] = Field(default_factory=dict)
    root_error: str | None = Field(
        default=None, description="The log line chosen as the root error (redacted)."
    )
    root_error_line: int | None = None
    root_error_reason: str | None = Field(default=None, description="Why that line was chosen.")
    exception_type: str | None = None
    exception_message: str | None = None
    failed_task: str | None = None
    total_lines: int = 0
    elapsed_ms: float = 0.0

    @property
    def redaction_count(self) -> int:
        return sum(self.redactions.values())


class FailureAnalysis(BaseModel):
    """The structured answer to: what happened, how do I fix it, why did it happen."""

    title: str = Field(description="One line naming the failure, at most 120 characters.")
    what_happened: str = Field(description="What failed and with which error, 1-3 sentences.")
    how_to_fix: list[str] = Field(description="Concrete steps, most likely fix first.")
    root_cause: str = Field(description="Why it happened: the underlying cause.")
    category: Category = Field(description="Whose problem it is.")
    confidence: float = Field(ge=0.0, le=1.0, description="0 to 1.")
    failed_task: str | None = Field(default=None, description="Name of the failed task.")
    tags: list[str] = Field(default_factory=list, description="Up to 5 short keywords.")
    additional_answers: list[str] = Field(
        default_factory=list,
        description="Answers to the settings' extra questions, in order.",
    )

    @field_validator("category", mode="before")
    @classmethod
    def _category(cls, value: object) -> Category:
        return parse_category(value)

    @field_validator("confidence", mode="before")
    @classmethod
    def _confidence(cls, value: object) -> object:
        # Models sometimes answer 85 meaning 85 %.
        if isinstance(value, (int, float)) and 1.0 < value <= 100.0:
            return value / 100.0
        return value

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise ValueError("title is empty")
        return value if len(value) <= 120 else value[:119] + "…"

    @field_validator("how_to_fix", mode="before")
    @classmethod
    def _steps(cls, value: object) -> object:
        if isinstance(value, str):
            parts = value.split("\n") if "\n" in value else re.split(r"\s(?=\d+[.)]\s)", value)
            value = [re.sub(r"^\s*(?:\d+[.)]|[-*\u2022])\s*", "", p) for p in parts]
        return value

    @field_validator("how_to_fix")
    @classmethod
    def _steps_nonempty(cls, value: list[str]) -> list[str]:
        steps = [s.strip() for s in value if s and s.strip()]
        if not steps:
            raise ValueError("how_to_fix has no steps")
        return steps[:8]

    @field_validator("tags", "additional_answers", mode="before")
    @classmethod
    def _none_is_empty(cls, value: object) -> object:
        return [] if value is None else value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        return [t.strip()[:40] for t in value if t and t.strip()][:5]


SummaryStatus = Literal["llm", "fallback"]


class Summary(BaseModel):
    """A delivered failure summary: the analysis plus how and from what it was made.

    One of these is one row of the ``failure_summaries`` table.
    """

    flow_run_id: str
    flow_run_name: str
    flow_name: str
    deployment: str | None = None
    work_pool: str | None = None
    tags: list[str] = Field(default_factory=list)
    state: str
    state_message: str | None = None
    failed_at: datetime | None = None
    analysis: FailureAnalysis
    status: SummaryStatus
    reason: str | None = Field(
        default=None, description="Why the fallback was used, when it was."
    )
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float | None = None
    prompt_version: str
    evidence: str
    evidence_tokens: int = 0
    root_error_line: int | None = None
    redaction_count: int = 0
    summarizer_flow_run_id: str | None = None
    artifact_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    regenerated: bool = False
    cost_usd: float | None = Field(default=None, description="Estimated LLM cost; None when unknown.")
    fingerprint: str | None = None
    signature: str | None = Field(default=None, description="The normalised failure signature.")
    cache_hit: bool = Field(default=False, description="The analysis was reused, no LLM call.")
    same_as_run_id: str | None = Field(default=None, description="The run whose analysis was reused.")
    first_seen: datetime | None = None
    occurrences: int | None = Field(default=None, description="Failures with this signature so far.")


OutcomeAction = Literal["created", "replaced", "exists", "skipped"]


class SummaryOutcome(BaseModel):
    """What one summarizer run did, returned by the flow and printed by the CLI."""

    requested_flow_run_id: str
    flow_run_id: str | None = Field(
        default=None, description="The run that carries the summary (the root run)."
    )
    action: OutcomeAction
    reason: str | None = None
    summary: Summary | None = None
    stored: bool = Field(default=False, description="Whether the row was written.")

    def to_public(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
