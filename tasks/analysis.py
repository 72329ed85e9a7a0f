"""Analysing a failure: a cached answer, else the LLM, else the deterministic fallback.

`analyze()` is the part that needs no database: ask the LLM (bounded retries and
deadline, see `tasks.llm`) or fall back, and price the answer. The `analyze_failure`
task adds what a shared service needs: the fingerprint cache (one LLM call per
distinct failure), the daily token and cost budgets, and a Prefect global
concurrency limit on LLM calls, so that a storm of 500 failures can neither run up a
bill nor trip the provider's rate limits.
"""

from __future__ import annotations

import logging
from datetime import datetime, time, timezone

import anyio
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger
from pydantic import BaseModel
from sqlalchemy import Engine

from prefect_failure_insights.blocks import FailureInsightsSettings, LLMCredentials
from prefect_failure_insights.exceptions import LLMError, StorageError
from prefect_failure_insights.models import Evidence, FailedRun, FailureAnalysis, Summary, SummaryStatus
from prefect_failure_insights.prompts import PROMPT_VERSION, summary_messages
from prefect_failure_insights.tasks import analysis_cache, storage
from prefect_failure_insights.tasks.chat import backend_for
from prefect_failure_insights.tasks.costs import estimate_cost
from prefect_failure_insights.tasks.fallback import deterministic_analysis
from prefect_failure_insights.tasks.fingerprint import cache_key, fingerprint, signature
from prefect_failure_insights.tasks.llm import RetryPolicy, request_analysis
from prefect_failure_insights.tasks.redaction import Redactor

logger = logging.getLogger(__name__)

LLM_CONCURRENCY_LIMIT = "failure-insights-llm"


class AnalysisResult(BaseModel):
    """An analysis and how it was made."""

    analysis: FailureAnalysis
    status: SummaryStatus
    reason: str | None = None
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float | None = None
    cost_usd: float | None = None
    cache_hit: bool = False
    same_as_run_id: str | None = None
    first_seen: datetime | None = None
    occurrences: int | None = None
    fingerprint: str | None = None
    signature: str | None = None
    notes: list[str] = []


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


def retry_policy(llm: LLMCredentials, settings: FailureInsightsSettings) -> RetryPolicy:
    return RetryPolicy(max_retries=llm.max_retries, timeout=llm.timeout, deadline=settings.llm_deadline_seconds)


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
    instructions, questions = settings.prompt_for(failed.run)
    messages = summary_messages(evidence, failed, instructions, questions, settings.answer_language)
    backend = backend_for(llm)
    spent: tuple[int | None, int | None] = (None, None)
    try:
        answer = await request_analysis(backend, messages, retry_policy(llm, settings))
    except LLMError as exc:
        reason = f"LLM failed: {exc}"
        spent = (exc.prompt_tokens, exc.completion_tokens)
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
            cost_usd=estimate_cost(answer.model, answer.prompt_tokens, answer.completion_tokens, settings.llm_prices),
        )
    finally:
        await backend.close()
    result = _fallback(failed, evidence, reason, llm.model)
    if spent[0] is not None:  # unusable answers still cost tokens: the ledger and the budgets count them
        result = result.model_copy(update={
            "prompt_tokens": spent[0], "completion_tokens": spent[1],
            "cost_usd": estimate_cost(llm.model, spent[0], spent[1], settings.llm_prices)})
    return result


def over_budget(engine: Engine, settings: FailureInsightsSettings) -> str | None:
    """Why today's LLM budget is spent, or None."""
    if settings.daily_token_budget is None and settings.daily_cost_budget_usd is None:
        return None
    midnight = datetime.combine(datetime.now(timezone.utc).date(), time.min, tzinfo=timezone.utc)
    tokens, cost = storage.daily_usage(engine, midnight)
    if settings.daily_token_budget is not None and tokens >= settings.daily_token_budget:
        return f"the daily LLM token budget ({settings.daily_token_budget:,}) is spent: {tokens:,} used today (UTC)"
    if settings.daily_cost_budget_usd is not None and cost >= settings.daily_cost_budget_usd:
        return f"the daily LLM cost budget (${settings.daily_cost_budget_usd:.2f}) is spent: ${cost:.2f} today (UTC)"
    return None


async def ensure_llm_limit(client, settings: FailureInsightsSettings) -> None:
    """Create or update the global concurrency limit on LLM calls (idempotent)."""
    await client.upsert_global_concurrency_limit_by_name(LLM_CONCURRENCY_LIMIT, settings.max_concurrent_llm_calls)


async def llm_slot(settings: FailureInsightsSettings, call):
    """Run ``call`` holding a slot of the global LLM concurrency limit (when it exists)."""
    from prefect.concurrency.asyncio import concurrency

    async with concurrency(LLM_CONCURRENCY_LIMIT, occupy=1, timeout_seconds=settings.llm_deadline_seconds,
                           strict=False):
        return await call()


async def no_limit(settings: FailureInsightsSettings, call):
    return await call()


async def analyze_with_guard_rails(
    failed: FailedRun,
    evidence: Evidence,
    settings: FailureInsightsSettings,
    llm: LLMCredentials | None,
    *,
    no_llm_reason: str | None = None,
    redactor: Redactor | None = None,
    engine: Engine | None = None,
    regenerate: bool = False,
    summarizer_id: str = "",
    limiter=llm_slot,
) -> AnalysisResult:
    """`analyze`, behind the fingerprint cache, the daily budgets and the concurrency limit.

    Without a database engine (it failed, or offline use), only `analyze` runs.
    """
    sig = signature(evidence, failed)
    fp = fingerprint(sig)
    identity = {"fingerprint": fp, "signature": sig}
    if llm is None or engine is None:
        result = await analyze(failed, evidence, settings, llm, no_llm_reason, redactor)
        return result.model_copy(update=identity)
    key = analysis_cache.CacheKey(cache_key(fp, llm.model, PROMPT_VERSION), fp, sig, llm.model, PROMPT_VERSION)
    run_id = failed.run.id
    notes: list[str] = []
    owner = False
    spent = None
    try:
        if not regenerate:
            found = await anyio.to_thread.run_sync(lambda: analysis_cache.lookup(
                engine, key, run_id, summarizer_id, wait_s=settings.llm_deadline_seconds))
            if found.hit is not None:
                hit = found.hit
                # The cached answer names the first run's task run; this run's page names its own.
                mine = hit.analysis.model_copy(update={"failed_task": evidence.failed_task or hit.analysis.failed_task})
                return AnalysisResult(
                    analysis=mine, status="llm", model=llm.model, prompt_tokens=0, completion_tokens=0,
                    cost_usd=0.0, cache_hit=True, same_as_run_id=hit.first_run_id, first_seen=hit.first_seen,
                    occurrences=hit.occurrences, reason=f"same failure as run {hit.first_run_id}: analysis reused",
                    **identity,
                )
            owner = found.owner
        spent = await anyio.to_thread.run_sync(over_budget, engine, settings)
    except StorageError as exc:  # the cache and the ledger are optimisations; the summary is not
        notes.append(f"fingerprint cache or budget unavailable ({exc}); the LLM was asked directly")
    if spent:
        result = _fallback(failed, evidence, f"LLM not asked: {spent}", llm.model)
    else:
        try:
            result = await limiter(settings, lambda: analyze(failed, evidence, settings, llm, no_llm_reason,
                                                             redactor))
        except TimeoutError:
            result = _fallback(failed, evidence, "LLM not asked: every LLM slot stayed busy until the deadline",
                               llm.model)
    try:
        if result.status == "llm" and (owner or regenerate):
            await anyio.to_thread.run_sync(lambda: analysis_cache.store(
                engine, key, result.analysis, run_id, summarizer_id, replace=regenerate))
        elif owner:
            await anyio.to_thread.run_sync(analysis_cache.release, engine, key, summarizer_id)
    except StorageError as exc:
        notes.append(f"could not update the fingerprint cache: {exc}")
    return result.model_copy(update={**identity, "notes": notes})


# Retries: inside `analyze` (tasks.llm owns them), so none here.
# Cache: Prefect's task cache is off on purpose; the fingerprint cache in the
# database (shared by every summarizer and worker) is what saves LLM calls.
@task(name="analyze-failure", cache_policy=NO_CACHE, retries=0)
async def analyze_failure(
    failed: FailedRun,
    evidence: Evidence,
    settings: FailureInsightsSettings,
    llm: LLMCredentials | None,
    no_llm_reason: str | None = None,
    redactor: Redactor | None = None,
    engine: Engine | None = None,
    regenerate: bool = False,
    summarizer_id: str = "",
) -> AnalysisResult:
    """Explain the failure: what happened, how to fix it, why it happened."""
    result = await analyze_with_guard_rails(
        failed, evidence, settings, llm, no_llm_reason=no_llm_reason, redactor=redactor, engine=engine,
        regenerate=regenerate, summarizer_id=summarizer_id,
    )
    log = get_run_logger()
    for note in result.notes:
        log.warning("%s", note)
    if result.cache_hit:
        log.info("Same failure as run %s (%s occurrences): analysis reused, no LLM call",
                 result.same_as_run_id, result.occurrences)
    elif result.status == "llm":
        log.info("LLM analysis by %s: %s prompt + %s completion tokens in %.0f ms, est. cost %s",
                 result.model, result.prompt_tokens, result.completion_tokens, result.latency_ms or 0,
                 f"${result.cost_usd:.4f}" if result.cost_usd is not None else "unknown")
    else:
        log.warning("Deterministic analysis used: %s", result.reason)
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
        cost_usd=result.cost_usd,
        fingerprint=result.fingerprint,
        signature=result.signature,
        cache_hit=result.cache_hit,
        same_as_run_id=result.same_as_run_id,
        first_seen=result.first_seen,
        occurrences=result.occurrences,
    )
