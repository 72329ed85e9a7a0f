"""A failure summary: the run's facts, the analysis, the evidence it rests on, and its delivery."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, computed_field

from prefect_failure_insights.models.analysis import (
    FailureAnalysis,
    LLMUsage,
    Recurrence,
    SummaryStatus,
)
from prefect_failure_insights.models.common import Redacted
from prefect_failure_insights.models.evidence import EvidenceRef
from prefect_failure_insights.models.runs import FlowRunInfo


class Delivery(BaseModel):
    """Who made the summary, when, and where it was delivered."""

    summarizer_flow_run_id: str | None = None
    artifact_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    regenerated_count: int = Field(default=0, description="Times the summary was replaced by a new one.")

    @computed_field
    @property
    def regenerated(self) -> bool:
        return self.regenerated_count > 0


class Summary(BaseModel):
    """A delivered failure summary; one row of the ``failure_summaries`` table.

    Made of the failed run's facts, the analysis and how it was made (status, reason, LLM
    usage, recurrence), the evidence it rests on and its delivery. Mapped to and from the
    row in one place: `prefect_failure_insights.store.summaries`.
    """

    run: FlowRunInfo
    analysis: FailureAnalysis
    status: SummaryStatus
    reason: Redacted | None = Field(default=None, description="Why the fallback was used, when it was.")
    usage: LLMUsage = Field(default_factory=LLMUsage)
    recurrence: Recurrence = Field(default_factory=Recurrence)
    evidence: EvidenceRef
    delivery: Delivery = Field(default_factory=Delivery)


class Claim(BaseModel):
    """One summarizer's claim on a failed run's row: it alone may write the summary.

    ``result``: ``claimed`` (go on), ``exists`` (a finished summary is there),
    ``in_progress`` (another summarizer holds a fresh claim) or ``unavailable`` (the
    database failed: go on without a row; ``error`` says why).
    """

    result: Literal["claimed", "exists", "in_progress", "unavailable"]
    claimed_by: str
    existing_status: str | None = None
    error: str | None = None

    @property
    def holds(self) -> bool:
        """Whether this summarizer may write the row."""
        return self.result == "claimed"

    @property
    def stop_reason(self) -> tuple[OutcomeAction, str] | None:
        """``(action, reason)`` when this summarizer must not go on."""
        if self.result == "exists":
            return "exists", "a summary already exists (run with regenerate=True to replace it)"
        if self.result == "in_progress":
            return "skipped", "another summarizer run is summarizing this run right now"
        return None


OutcomeAction = Literal["created", "replaced", "exists", "skipped"]


class Stored(BaseModel):
    """What became of a summary's row: written (``created``/``replaced``), ``lost`` to another
    summarizer that took the claim over, or ``not_stored`` because the database failed."""

    summary: Summary
    action: Literal["created", "replaced", "lost", "not_stored"]
    error: str | None = Field(default=None, description="The database error, when there was one.")


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
