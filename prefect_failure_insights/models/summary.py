"""A failure summary: the run's facts, the analysis, the evidence it rests on, and its delivery."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from prefect_failure_insights.models.analysis import (
    FailureAnalysis,
    LLMUsage,
    Recurrence,
    SimilarFailures,
    SummaryStatus,
    Verification,
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


#: What the retry automation decided for one failure: the run was retried, or why not.
RetryVerdict = Literal["retried", "not_retried"]
#: Rules that say the run moved on, or that there is nothing to decide from, rather than anything
#: about the failure: such a decision never replaces one about the same failure.
RETRY_SKIP_RULES = frozenset({"not-failed", "earlier-attempt", "no-summary", "provisional", "already-decided",
                              "not-stored"})
#: The rule of a retry the server refused: it alone replaces a "retried" of the same failure.
RETRY_REFUSED_RULE = "refused"


class RetryPolicy(BaseModel):
    """What `retry install` asked for, as the retry flow enforces it (see `prefect_api.retries.limits`)."""

    model_config = ConfigDict(frozen=True)

    max_retries: int = Field(description="Most automatic retries of one run.")
    delay_s: float = Field(description="Seconds from the decision to the retried run's start.")
    categories: tuple[str, ...] = Field(description="Categories whose TRANSIENT failures are retried.")
    crashed: bool = Field(default=False, description="Retry runs their infrastructure crashed (`--crashed`).")
    oom: bool = Field(default=False, description="Also out-of-memory and SIGKILL crashes (`--oom`).")


class RetryDecision(BaseModel):
    """Whether failure-insights retried one failure of a run automatically, and why or why not.

    Keyed by ``attempt``, the run's run count at that failure: a decision is about one failure,
    and `supersedes` says which of two decisions the summary keeps, whatever order they come in.
    """

    decision: RetryVerdict | None = Field(default=None, description="None: no decision recorded.")
    rule: str | None = Field(default=None, description="The rule that decided, e.g. 'transient', 'infra-evicted', "
                             "'not-transient', 'limit'.")
    reason: Redacted | None = Field(default=None, description="Why, in a sentence naming the rule.")
    transience: str | None = Field(default=None, description="The summary's transience when it was decided.")
    attempt: int | None = Field(default=None, description="The run's run count at the failure decided on.")
    retries: int | None = Field(default=None, description="Automatic retries of the run, this one included.")
    max_retries: int | None = None
    decided_at: datetime | None = None

    @property
    def retried(self) -> bool:
        return self.decision == "retried"

    def supersedes(self, old: RetryDecision) -> bool:
        """Whether this decision replaces ``old`` on the summary.

        A decision about a later failure replaces one about an earlier failure, never the other
        way round. For the same failure, a "retried" is final (only the server refusing that very
        retry replaces it): a second run of the retry flow that finds the run Scheduled must not
        turn "retried" into "not retried". A skip (the run moved on, no summary) never replaces a
        decision about the failure; otherwise the newer decision (from a summary made again in
        place) replaces an older one that says something else.
        """
        if self.decision is None:
            return False
        if old.decision is None or old.attempt is None:
            return True
        if (self.attempt or 0) != old.attempt:
            return (self.attempt or 0) > old.attempt
        if old.retried:
            return self.rule == RETRY_REFUSED_RULE
        if self.retried:
            return True
        if self.rule in RETRY_SKIP_RULES and old.rule not in RETRY_SKIP_RULES:
            return False
        return (self.rule, self.reason) != (old.rule, old.reason)


class Summary(BaseModel):
    """A delivered failure summary; one row of the ``failure_summaries`` table.

    Made of the failed run's facts, the analysis and how it was made (status, reason, LLM
    usage, recurrence), the evidence it rests on, its delivery, and the retry automation's
    decision on the failure. Mapped to and from the row in one place:
    `prefect_failure_insights.store.summaries`.
    """

    run: FlowRunInfo
    analysis: FailureAnalysis
    status: SummaryStatus
    reason: Redacted | None = Field(default=None, description="Why the fallback was used, when it was.")
    usage: LLMUsage = Field(default_factory=LLMUsage)
    recurrence: Recurrence = Field(default_factory=Recurrence)
    evidence: EvidenceRef
    verification: Verification = Field(default_factory=Verification)
    similar: SimilarFailures = Field(default_factory=SimilarFailures)
    delivery: Delivery = Field(default_factory=Delivery)
    retry: RetryDecision = Field(default_factory=RetryDecision,
                               description="The retry automation's decision on this failure, if it made one.")


#: A claimed row that has no summary yet.
PENDING = "pending"


class Claim(BaseModel):
    """One summarizer's claim on a failed run's row: it alone may write the summary.

    ``result``: ``claimed`` (go on), ``exists`` (a finished summary is there),
    ``in_progress`` (another live summarizer, ``holder``, holds the lease for
    ``lease_left_s`` more seconds unless it renews it) or ``unavailable`` (the database
    failed: go on without a row; ``error`` says why).
    """

    result: Literal["claimed", "exists", "in_progress", "unavailable"]
    run_id: str = Field(description="The failed run whose summary is claimed.")
    claimed_by: str
    existing_status: str | None = None
    error: str | None = None
    holder: str | None = Field(default=None, description="Who holds the claim, when another summarizer does.")
    lease_left_s: float | None = None

    @property
    def holds(self) -> bool:
        """Whether this summarizer may write the row."""
        return self.result == "claimed"

    @property
    def replaces_summary(self) -> bool:
        """Whether the run had a summary (final or provisional) before this summarizer's."""
        return self.existing_status not in (None, PENDING)

    @property
    def row_is_new(self) -> bool:
        """Whether this summarizer holds a row that has no summary yet (nothing to keep readable)."""
        return self.holds and not self.replaces_summary

    @property
    def stop_reason(self) -> tuple[OutcomeAction, str] | None:
        """``(action, reason)`` when this summarizer must not go on."""
        if self.result == "exists":
            return "exists", "a summary already exists (run with regenerate=True to replace it)"
        if self.result == "in_progress":
            left = f"; its lease runs out in {self.lease_left_s:.0f}s if it has died" if self.lease_left_s else ""
            return "skipped", (f"summarizer run {self.holder or '(unknown)'} is summarizing this run and renewing "
                               f"its claim{left}: wait for it, or replace it now with --regenerate")
        return None


OutcomeAction = Literal["created", "replaced", "exists", "skipped"]
#: What a summary event says of the summary: its first delivery, or a replacement.
EventAction = Literal["created", "updated"]


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


class RetryOutcome(BaseModel):
    """What the retry flow did for one failed run: its decision, and where it was recorded."""

    flow_run_id: str
    decision: RetryDecision
    scheduled_for: datetime | None = Field(default=None, description="When the retried run starts.")
    recorded: Literal["pending", "recorded", "unchanged", "no_row", "not_stored"] = Field(
        default="pending", description="What became of the decision on the summary's row.")
    noted: bool = Field(default=False, description="Whether the card was published again with the decision.")
    event_emitted: bool = False
    summary: Summary | None = Field(default=None, exclude=True,
                                    description="The run's summary as stored after the decision (for the card).")

    @property
    def retried(self) -> bool:
        return self.decision.retried

    @property
    def reason(self) -> str:
        return self.decision.reason or ""

    @property
    def retries(self) -> int:
        return self.decision.retries or 0

    @property
    def remade_since_decided(self) -> bool:
        """Whether the summary was made again (late logs, a regeneration) after its decision was
        recorded: its card may then have been published without the decision."""
        s = self.summary
        return (s is not None and s.retry.decided_at is not None and s.delivery.updated_at is not None
                and s.delivery.updated_at > s.retry.decided_at)

    def unclaimed(self) -> RetryOutcome:
        """This outcome when its decision to retry was not recorded by this run of the flow: no
        retry (another run recorded one for the same failure, or the database could not say)."""
        if self.recorded == "unchanged":
            rule, why = "already-decided", "its summary holds a decision on this failure already (another run of " \
                                           "the retry flow retried it)"
        else:
            rule, why = "not-stored", "the decision could not be recorded on its summary, and a retry is recorded " \
                                      "before it is made"
        return self.model_copy(update={"decision": self.decision.model_copy(update={
            "decision": "not_retried", "rule": rule, "reason": f"{why} (rule {rule})",
            "retries": max(0, (self.decision.retries or 1) - 1)})})


class Reconciled(BaseModel):
    """What one reconcile pass found and did (`prefect_failure_insights.lifecycle.reconciler`)."""

    hours: float = Field(description="The look-back window.")
    failures: int = Field(default=0, description="Failed or crashed runs in the window and in scope.")
    summarized: int = Field(default=0, description="Of them, those with a finished summary.")
    in_progress: int = Field(default=0, description="Of them, those a live summarizer is working on.")
    crashed: list[str] = Field(default_factory=list, description="Dead summarizer runs set Crashed.")
    released: int = Field(default=0, description="Claims whose lease ran out, deleted.")
    deleted: dict[str, int] = Field(default_factory=dict, description="Rows past their retention, deleted, by table.")
    started: list[str] = Field(default_factory=list, description="Failed runs a summarizer run was started for.")
    deferred: int = Field(default=0, description="Missing summaries left for the next pass (limit, or too recent).")
    gave_up: list[str] = Field(default_factory=list,
                               description="Failed runs whose summarizer ended without a summary too often.")

    @property
    def missing(self) -> int:
        """Failures in scope that have no summary and nobody working on one."""
        return self.failures - self.summarized - self.in_progress
