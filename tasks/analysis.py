"""Analysing a failure: the LLM when one is configured and answers, else the fallback."""

from __future__ import annotations

import logging

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger
from pydantic import BaseModel

from prefect_failure_insights.blocks import FailureInsightsSettings, LLMCredentials
from prefect_failure_insights.exceptions import LLMError
from prefect_failure_insights.models import Evidence, FailedRun, FailureAnalysis, Summary, SummaryStatus
from prefect_failure_insights.prompts import PROMPT_VERSION, summary_messages
from prefect_failure_insights.tasks.fallback import deterministic_analysis
from prefect_failure_insights.tasks.llm import request_analysis
from prefect_failure_insights.tasks.redaction import Redactor


logger = logging.getLogger(__name__)


class AnalysisResult(BaseModel):
    """An analysis and how it was made."""

    analysis: FailureAnalysis
    status: SummaryStatus
    reason: str | None = None
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float | None = None


def redact_analysis(analysis: FailureAnalysis, redactor: Redactor | None = None) -> FailureAnalysis:
    """Run every text field of an answer through the redactor (a model may echo a secret)."""
    r = redactor or Redactor()
    data = analysis.model_dump()
    for key in ("title", "what_happened", "root_cause", "failed_task"):
        if data[key]:
            data[key] = r.redact(data[key])
    for key in ("how_to_fix", "tags", "additional_answers"):
        data[key] = [r.redact(v) for v in data[key]]
    return FailureAnalysis.model_validate(data)


def _fallback(failed: FailedRun, evidence: Evidence, reason: str, model: str | None = None) -> AnalysisResult:
    return AnalysisResult(
        analysis=deterministic_analysis(evidence, failed), status="fallback", reason=reason, model=model
    )


async def analyze(
    failed: FailedRun,
    evidence: Evidence,
    settings: FailureInsightsSettings,
    llm: LLMCredentials | None,
    no_llm_reason: str | None = None,
    redactor: Redactor | None = None,
) -> AnalysisResult:
    """Ask the LLM; on any LLM error, or with no LLM, return the deterministic analysis."""
    if llm is None:
        return _fallback(failed, evidence, no_llm_reason or "No LLM configured.")
    messages = summary_messages(
        evidence, failed, settings.custom_instructions, settings.extra_questions
    )
    client = llm.get_async_client()
    try:
        answer = await request_analysis(client, llm.model, messages, llm.base_url)
    except LLMError as exc:
        reason = f"LLM failed: {exc}"
    except Exception as exc:  # noqa: BLE001 - a bug here must not cost the user the summary
        logger.exception("Unexpected error while asking the LLM")
        reason = f"LLM step failed unexpectedly: {type(exc).__name__}"
    else:
        return AnalysisResult(
            analysis=redact_analysis(answer.analysis, redactor),
            status="llm",
            model=answer.model,
            prompt_tokens=answer.prompt_tokens,
            completion_tokens=answer.completion_tokens,
            latency_ms=round(answer.latency_ms, 1),
        )
    finally:
        await client.close()
    return _fallback(failed, evidence, reason, llm.model)


# Retries: the SDK client owns them (LLMCredentials.max_retries), so none here.
# Cache: none on purpose; a run is analysed once, and a row in the database
# (not Prefect's task cache) is what stops a second analysis.
@task(name="analyze-failure", cache_policy=NO_CACHE, retries=0)
async def analyze_failure(
    failed: FailedRun,
    evidence: Evidence,
    settings: FailureInsightsSettings,
    llm: LLMCredentials | None,
    no_llm_reason: str | None = None,
    redactor: Redactor | None = None,
) -> AnalysisResult:
    """Explain the failure: what happened, how to fix it, why it happened."""
    result = await analyze(failed, evidence, settings, llm, no_llm_reason, redactor)
    logger = get_run_logger()
    if result.status == "llm":
        logger.info(
            "LLM analysis by %s: %s prompt + %s completion tokens in %.0f ms",
            result.model, result.prompt_tokens, result.completion_tokens, result.latency_ms or 0,
        )
    else:
        logger.warning("Deterministic analysis used: %s", result.reason)
    return result


def compose_summary(
    failed: FailedRun, evidence: Evidence, result: AnalysisResult, summarizer_id: str | None = None
) -> Summary:
    """The summary of ``failed``: its facts (already redacted), the evidence and the analysis."""
    run = failed.run
    return Summary(
        flow_run_id=run.id,
        flow_run_name=run.name,
        flow_name=run.flow_name,
        deployment=run.deployment,
        work_pool=run.work_pool,
        tags=run.tags,
        state=run.state,
        state_message=run.state_message,
        failed_at=run.end_time,
        analysis=result.analysis,
        status=result.status,
        reason=Redactor().redact(result.reason) if result.reason else None,
        model=result.model,
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        latency_ms=result.latency_ms,
        prompt_version=PROMPT_VERSION,
        evidence=evidence.text,
        evidence_tokens=evidence.tokens,
        root_error_line=evidence.root_error_line,
        redaction_count=evidence.redaction_count,
        summarizer_flow_run_id=summarizer_id,
    )
