"""`SummarizerRun`: one summary in progress, what every stage of the summarizer needs."""

from __future__ import annotations

from dataclasses import dataclass

from prefect_failure_insights.analysis.gate import LLMGate
from prefect_failure_insights.blocks import FailureInsightsSettings
from prefect_failure_insights.blocks.loading import LLMChoice
from prefect_failure_insights.models import Claim, FlowRunInfo
from prefect_failure_insights.redaction import Redactor
from prefect_failure_insights.store import Database

__all__ = ["LLMGate", "SummarizerRun"]


@dataclass(frozen=True, kw_only=True)
class SummarizerRun:
    """One summary in progress, built once by the `summarize-failure` flow after its claim, and
    passed to its tasks (which hand the domain functions the parts they need).

    Args:
        root: The failed run the summary is for (the root run of a failed subflow).
        summarizer_id: This summarizer's flow run id (the claim's holder).
        settings: The ``failure-insights-settings`` in force.
        database: Where the summary's row goes.
        claim: This summarizer's claim on the row.
        redactor: Removes secrets, the exact values of the workspace's Secret blocks included.
        llm: The LLM to ask, or none and why.
        gate: What the process's summaries share on their way to the LLM (cache, budgets, slots).
        regenerate: Replace an existing summary (and the cached answer of the same failure).
    """

    root: FlowRunInfo
    summarizer_id: str
    settings: FailureInsightsSettings
    database: Database
    claim: Claim
    redactor: Redactor
    llm: LLMChoice
    gate: LLMGate
    regenerate: bool = False

    @property
    def provisional(self) -> bool:
        """Whether a provisional summary comes first: on by default, and only into a row that has no
        summary yet (regenerating keeps the old one readable until the new one replaces it)."""
        return self.settings.provisional_summary and self.claim.row_is_new
