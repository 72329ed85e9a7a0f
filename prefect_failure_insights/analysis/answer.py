"""The answer to "what happened, how to fix it, why": the LLM's, else the deterministic analysis.

`analyze()` needs no database and keeps no state: it asks the LLM (bounded retries and
deadline, see `llm.structured`), redacts and prices the answer, and on any LLM error, or
with no LLM, returns the deterministic analysis with the reason. What a shared service adds
around it (the fingerprint cache, the budgets, the concurrency limit) is `analysis.gate`.
"""

from __future__ import annotations

import logging

from prefect_failure_insights.analysis.categorize import Categorizer
from prefect_failure_insights.analysis.compose import undeliverable
from prefect_failure_insights.analysis.fallback import deterministic_analysis
from prefect_failure_insights.blocks import FailureInsightsSettings, LLMCredentials
from prefect_failure_insights.exceptions import LLMError
from prefect_failure_insights.llm.backends import backend_for
from prefect_failure_insights.llm.costs import estimate_cost
from prefect_failure_insights.llm.prompts import summary_messages
from prefect_failure_insights.llm.structured import FormatMemory, RetryPolicy, request_analysis
from prefect_failure_insights.models import (
    AnalysisResult,
    Evidence,
    FailedRun,
    FailureAnalysis,
    LLMUsage,
)
from prefect_failure_insights.redaction import Redactor

logger = logging.getLogger(__name__)


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


def fallback(failed: FailedRun, evidence: Evidence, reason: str, *, model: str | None = None,
             categorizer: Categorizer | None = None) -> AnalysisResult:
    """The deterministic analysis (classified by the workspace's ``categorizer``), marked as such
    with ``reason``."""
    return AnalysisResult(analysis=deterministic_analysis(evidence, failed, categorizer=categorizer),
                          status="fallback", reason=reason, usage=LLMUsage(model=model))


def retry_policy(llm: LLMCredentials, settings: FailureInsightsSettings) -> RetryPolicy:
    return RetryPolicy(max_retries=llm.max_retries, timeout=llm.timeout, deadline=settings.llm_deadline_seconds)


async def analyze(
    failed: FailedRun,
    evidence: Evidence,
    settings: FailureInsightsSettings,
    *,
    llm: LLMCredentials | None,
    no_llm_reason: str | None = None,
    redactor: Redactor | None = None,
    memory: FormatMemory | None = None,
    categorizer: Categorizer | None = None,
) -> AnalysisResult:
    """Ask the LLM; on any LLM error, or with no LLM, return the deterministic analysis.
    ``memory``: the response formats that endpoints took (see `llm.structured.FormatMemory`)."""
    if llm is None:
        return fallback(failed, evidence, no_llm_reason or "No LLM configured.", categorizer=categorizer)
    instructions, questions = settings.prompt_for(failed.run)
    messages = summary_messages(evidence, failed, instructions, extra_questions=questions,
                                language=settings.answer_language)
    final = redactor or Redactor()  # the second line of defence: everything sent, once more
    messages = [{**m, "content": final.redact(m["content"])} for m in messages]
    backend = backend_for(llm)
    spent: tuple[int | None, int | None] = (None, None)
    try:
        answer = await request_analysis(backend, messages, retry_policy(llm, settings), memory=memory)
    except LLMError as exc:
        reason = f"LLM failed: {exc}"
        spent = (exc.prompt_tokens, exc.completion_tokens)
    except Exception as exc:  # noqa: BLE001 - a bug here must not cost the user the summary
        logger.exception("Unexpected error while asking the LLM")
        reason = f"LLM step failed unexpectedly: {type(exc).__name__}"
    else:
        result = AnalysisResult(
            analysis=redact_analysis(answer.analysis, redactor),
            status="llm",
            usage=LLMUsage(
                model=answer.model, prompt_tokens=answer.prompt_tokens, completion_tokens=answer.completion_tokens,
                latency_ms=round(answer.latency_ms, 1),
                cost_usd=estimate_cost(answer.model, answer.prompt_tokens, answer.completion_tokens,
                                       overrides=settings.llm_prices),
            ),
        )
        problem = undeliverable(failed, evidence, result)
        if problem is None:
            return result
        logger.error("The LLM's answer could not be rendered (%s); the deterministic analysis is used", problem)
        reason = f"the LLM's answer could not be rendered ({problem})"
        spent = (answer.prompt_tokens, answer.completion_tokens)
    finally:
        await backend.close()
    result = fallback(failed, evidence, reason, model=llm.model, categorizer=categorizer)
    if spent[0] is not None:  # unusable answers still cost tokens: the ledger and the budgets count them
        result.usage = LLMUsage(model=llm.model, prompt_tokens=spent[0], completion_tokens=spent[1],
                                cost_usd=estimate_cost(llm.model, spent[0], spent[1], overrides=settings.llm_prices))
    return result
