"""A summary made of the run's facts, its evidence and the analysis; and how it was made, in one line."""

from __future__ import annotations

from prefect_failure_insights.analysis.categorize import Categorizer
from prefect_failure_insights.analysis.citations import checked
from prefect_failure_insights.analysis.fallback import deterministic_analysis
from prefect_failure_insights.llm.prompts import PROMPT_VERSION
from prefect_failure_insights.models import (
    AnalysisResult,
    Delivery,
    Evidence,
    FailedRun,
    Summary,
)
from prefect_failure_insights.prefect_api.events import summary_event
from prefect_failure_insights.redaction import Redactor
from prefect_failure_insights.reporting import card


def describe(result: AnalysisResult) -> str:
    """How the analysis was made, in one line for the run's logs."""
    usage, seen = result.usage, result.recurrence
    if seen.cache_hit:
        return (f"Same failure as run {seen.same_as_run_id} ({seen.occurrences} occurrences): analysis reused, "
                "no LLM call")
    if result.status == "llm":
        cost = f"${usage.cost_usd:.4f}" if usage.cost_usd is not None else "unknown"
        return (f"LLM analysis by {usage.model}: {usage.prompt_tokens} prompt + {usage.completion_tokens} "
                f"completion tokens in {usage.latency_ms or 0:.0f} ms, est. cost {cost}")
    return f"Deterministic analysis used: {result.reason}"


def provisional_summary(failed: FailedRun, evidence: Evidence, wait_s: float,
                        *, summarizer_id: str | None = None, categorizer: Categorizer | None = None) -> Summary:
    """The summary delivered at once, before the late logs and the LLM: the deterministic analysis
    of the run's state messages and the warnings and errors stored so far. Its evidence numbers
    those records (``E<n>``), not the log's lines, and so do its citations."""
    analysis = deterministic_analysis(evidence, failed, categorizer=categorizer)
    reason = (f"The final summary is in progress: it waits up to {wait_s:g} s for the run's late logs, reads "
              "all of them and analyses them (with the LLM when one is configured), then replaces this one.")
    return compose_summary(failed, evidence, AnalysisResult(analysis=analysis, status="provisional", reason=reason),
                           summarizer_id=summarizer_id)


def compose_summary(failed: FailedRun, evidence: Evidence, result: AnalysisResult,
                    *, summarizer_id: str | None = None) -> Summary:
    """The summary of ``failed``: its facts (already redacted), the evidence and the analysis, whose
    citations are checked here against that evidence (`citations.checked`; the deterministic
    analysis writes its own fix steps, a model's may come from the logs)."""
    analysis, verification = checked(result.analysis, evidence, steps_are_ours=result.status != "llm")
    return Summary(
        run=failed.run,
        analysis=analysis,
        verification=verification,
        status=result.status,
        reason=Redactor().redact(result.reason) if result.reason else None,
        usage=result.usage.model_copy(update={"prompt_version": PROMPT_VERSION}),
        recurrence=result.recurrence,
        evidence=evidence.reference(),
        delivery=Delivery(summarizer_flow_run_id=summarizer_id),
    )


def undeliverable(failed: FailedRun, evidence: Evidence, result: AnalysisResult) -> str | None:
    """Why ``result`` cannot be delivered (composing or rendering it raises), or None. Checked
    before an answer is cached or reused, so that one answer's bad shape never reaches every
    identical failure: such an answer gives way to the deterministic analysis."""
    try:
        summary = compose_summary(failed, evidence, result)
        card.render_markdown(summary)
        card.render_text(summary)
        card.artifact_description(summary)
        summary_event(summary, "created")
    except Exception as exc:  # noqa: BLE001 - any failure to render is the answer's
        return f"{type(exc).__name__}: {str(exc)[:200]}"
    return None
