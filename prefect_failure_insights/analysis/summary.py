"""Analysing a failure: a cached answer, else the LLM, else the deterministic fallback.

`analyze()` is the part that needs no database: ask the LLM (bounded retries and
deadline, see `llm.structured`) or fall back, and price the answer. `analyze_failure()`
adds what a shared service needs: the fingerprint cache (one LLM call per distinct
failure), the daily token and cost budgets, and a limit on concurrent LLM calls (a
Prefect global concurrency limit by default), so that a storm of 500 failures can
neither run up a bill nor trip the provider's rate limits. `compose_summary()` makes
the summary of the run from its facts, its evidence and the analysis.
"""

from __future__ import annotations

import asyncio
import logging
import time as _time
from collections.abc import Awaitable, Callable
from datetime import datetime, time, timezone
from typing import TYPE_CHECKING, TypeVar

from prefect_failure_insights.analysis.fallback import deterministic_analysis
from prefect_failure_insights.analysis.fingerprint import (
    cache_key,
    fingerprint,
    signature,
)
from prefect_failure_insights.blocks import FailureInsightsSettings, LLMCredentials
from prefect_failure_insights.redaction import Redactor
from prefect_failure_insights.exceptions import LLMError, StorageError
from prefect_failure_insights.llm.backends import backend_for
from prefect_failure_insights.llm.costs import estimate_cost
from prefect_failure_insights.llm.prompts import PROMPT_VERSION, summary_messages
from prefect_failure_insights.llm.structured import RetryPolicy, request_analysis
from prefect_failure_insights.models import (
    AnalysisResult,
    Delivery,
    Evidence,
    FailedRun,
    FailureAnalysis,
    LLMUsage,
    Recurrence,
    Summary,
)
from prefect_failure_insights.analysis.citations import checked
from prefect_failure_insights.analysis.similarity import failure_pattern, pattern_id
from prefect_failure_insights.prefect_api.concurrency import llm_slot
from prefect_failure_insights.store import Database
from prefect_failure_insights.store import fingerprints as cache
from prefect_failure_insights.store.ledger import daily_usage

if TYPE_CHECKING:
    from sqlalchemy import Engine

logger = logging.getLogger(__name__)

T = TypeVar("T")
#: Runs an LLM call while holding a slot of the concurrency limit; TimeoutError when none frees up.
Limiter = Callable[[FailureInsightsSettings, Callable[[], Awaitable[T]]], Awaitable[T]]


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
    return AnalysisResult(analysis=deterministic_analysis(evidence, failed), status="fallback", reason=reason,
                          usage=LLMUsage(model=model))


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
    final = redactor or Redactor()  # the second line of defence: everything sent, once more
    messages = [{**m, "content": final.redact(m["content"])} for m in messages]
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
            usage=LLMUsage(
                model=answer.model, prompt_tokens=answer.prompt_tokens, completion_tokens=answer.completion_tokens,
                latency_ms=round(answer.latency_ms, 1),
                cost_usd=estimate_cost(answer.model, answer.prompt_tokens, answer.completion_tokens,
                                       settings.llm_prices),
            ),
        )
    finally:
        await backend.close()
    result = _fallback(failed, evidence, reason, llm.model)
    if spent[0] is not None:  # unusable answers still cost tokens: the ledger and the budgets count them
        result.usage = LLMUsage(model=llm.model, prompt_tokens=spent[0], completion_tokens=spent[1],
                                cost_usd=estimate_cost(llm.model, spent[0], spent[1], settings.llm_prices))
    return result


def over_budget(engine: Engine, settings: FailureInsightsSettings) -> str | None:
    """Why today's LLM budget is spent, or None."""
    if settings.daily_token_budget is None and settings.daily_cost_budget_usd is None:
        return None
    midnight = datetime.combine(datetime.now(timezone.utc).date(), time.min, tzinfo=timezone.utc)
    tokens, cost = daily_usage(engine, midnight)
    if settings.daily_token_budget is not None and tokens >= settings.daily_token_budget:
        return f"the daily LLM token budget ({settings.daily_token_budget:,}) is spent: {tokens:,} used today (UTC)"
    if settings.daily_cost_budget_usd is not None and cost >= settings.daily_cost_budget_usd:
        return f"the daily LLM cost budget (${settings.daily_cost_budget_usd:.2f}) is spent: ${cost:.2f} today (UTC)"
    return None


class WithoutDatabase:
    """What summarizers in one process do while the database is unavailable.

    Without it there is no fingerprint cache across processes and no budget to check,
    so the process keeps its own: identical failures share one LLM call, and at most
    ``max_concurrent_llm_calls`` calls are made until the database answers again (then
    the count starts over). Every summary made this way says so.
    """

    def __init__(self) -> None:
        self.calls = 0
        self._answers: dict[str, asyncio.Future[AnalysisResult]] = {}

    def back(self) -> None:
        """The database answered: the cache and the budgets are in charge again."""
        self.calls = 0
        self._answers.clear()

    async def analyze(self, key: str, cap: int, ask: Callable[[], Awaitable[AnalysisResult]],
                      fallback: Callable[[str], AnalysisResult], why: str) -> AnalysisResult:
        known = self._answers.get(key)
        if known is not None and known.get_loop() is asyncio.get_running_loop():
            result = await asyncio.shield(known)
            return result.model_copy(update={"reason": f"{why}; the answer of an identical failure in this "
                                                       "process is reused, no LLM call"})
        if self.calls >= cap:
            return fallback(f"LLM not asked: {why}, and the {cap} LLM calls allowed without a budget check "
                            "are spent until it is back")
        self.calls += 1
        future: asyncio.Future[AnalysisResult] = asyncio.get_running_loop().create_future()
        self._answers[key] = future
        try:
            result = await ask()
        except BaseException as exc:
            self._answers.pop(key, None)
            future.set_exception(exc)
            future.exception()  # retrieved: waiters see it, nobody else has to
            raise
        if result.status != "llm":
            self._answers.pop(key, None)  # only answers are shared, never fallbacks
        future.set_result(result)
        note = (f"{why}: no deduplication across processes and no budget check (at most {cap} LLM calls "
                "until it is back)")
        return result.model_copy(update={"reason": note}) if result.status == "llm" else result


#: This process's memory while the database is unavailable.
WITHOUT_DATABASE = WithoutDatabase()
#: How often a summarizer waiting for another's answer to the same failure looks again, and
#: how often it asks Prefect whether that other summarizer's run has ended.
CACHE_POLL_SECONDS = 0.25
HOLDER_CHECK_SECONDS = 5.0


async def _answer_or_claim(database: Database, key: cache.CacheKey, run_id: str, me: str, wait_s: float,
                           holder_ended: Callable[[str], Awaitable[bool]] | None) -> cache.Lookup:
    """The cached answer of another summarizer (waiting while it asks), or the claim to ask:
    taken over when the owner's lease runs out, its run has ended, or ``wait_s`` is over."""
    start = _time.monotonic()
    checked = start - HOLDER_CHECK_SECONDS  # the first holder is checked at once
    ended: str | None = None
    while True:
        waited = _time.monotonic() - start
        found = await database.run(cache.lookup, key, run_id, me, take_over=waited >= wait_s, take_over_from=ended)
        if found.hit is not None or found.owner:
            return found
        if found.holder and holder_ended is not None and _time.monotonic() - checked >= HOLDER_CHECK_SECONDS:
            checked = _time.monotonic()
            if await holder_ended(found.holder):
                ended = found.holder
                continue
        await asyncio.sleep(CACHE_POLL_SECONDS)


async def analyze_failure(
    failed: FailedRun,
    evidence: Evidence,
    settings: FailureInsightsSettings,
    llm: LLMCredentials | None,
    *,
    no_llm_reason: str | None = None,
    redactor: Redactor | None = None,
    database: Database | None = None,
    regenerate: bool = False,
    summarizer_id: str = "",
    limiter: Limiter = llm_slot,
    holder_ended: Callable[[str], Awaitable[bool]] | None = None,
) -> AnalysisResult:
    """`analyze`, behind the fingerprint cache, the daily budgets and the concurrency limit.

    Without a database (offline use), only `analyze` runs. When the database fails, the
    process's own memory stands in for it (`WithoutDatabase`). ``holder_ended`` tells
    whether another summarizer's run has ended, so that its claim on the same failure is
    taken over at once instead of when its lease runs out. What degraded on the way is in
    the result's ``notes``.
    """
    sig = signature(evidence, failed)
    fp = fingerprint(sig)
    shape = failure_pattern(evidence, failed)
    seen = Recurrence(fingerprint=fp, signature=sig, pattern=shape, pattern_id=pattern_id(shape))
    if llm is None or database is None:
        result = await analyze(failed, evidence, settings, llm, no_llm_reason, redactor)
        return result.model_copy(update={"recurrence": seen})
    key = cache.CacheKey(cache_key(fp, llm.model, PROMPT_VERSION), fp, sig, llm.model, PROMPT_VERSION)
    run_id = failed.run.id
    notes: list[str] = []

    def ask() -> Awaitable[AnalysisResult]:
        return _limited(settings, limiter, failed, evidence, llm, no_llm_reason, redactor)

    def fallback(reason: str) -> AnalysisResult:
        return _fallback(failed, evidence, reason, llm.model)

    try:
        found = cache.Lookup(owner=False)
        if not regenerate:
            found = await _answer_or_claim(database, key, run_id, summarizer_id, settings.llm_deadline_seconds,
                                           holder_ended)
            if found.hit is not None:
                WITHOUT_DATABASE.back()
                return _reused(found.hit, evidence, llm, seen)
        spent = await database.run(over_budget, settings)
        WITHOUT_DATABASE.back()
    except StorageError as exc:  # the cache and the ledger are optimisations; the summary is not
        why = "the database is unavailable"
        notes.append(f"{why} ({exc}): deduplication and budgets are this process's own until it is back")
        result = await WITHOUT_DATABASE.analyze(key.key, settings.max_concurrent_llm_calls, ask, fallback, why)
        return result.model_copy(update={"recurrence": seen, "notes": notes})
    if spent:
        result = fallback(f"LLM not asked: {spent}")
    elif found.owner:
        async with database.lease(f"the fingerprint {fp[:12]}", cache.renew, key, summarizer_id):
            result = await ask()
    else:
        result = await ask()
    try:
        if result.status == "llm" and (found.owner or regenerate):
            await database.run(cache.store, key, result.analysis, run_id, summarizer_id, replace=regenerate)
        elif found.owner:
            await database.run(cache.release, key, summarizer_id)
    except StorageError as exc:
        notes.append(f"could not update the fingerprint cache: {exc}")
    return result.model_copy(update={"recurrence": seen, "notes": notes})


async def _limited(settings: FailureInsightsSettings, limiter: Limiter, failed: FailedRun, evidence: Evidence,
                   llm: LLMCredentials, no_llm_reason: str | None, redactor: Redactor | None) -> AnalysisResult:
    """`analyze` holding a slot of the LLM concurrency limit; the fallback when none frees up."""
    try:
        return await limiter(settings, lambda: analyze(failed, evidence, settings, llm, no_llm_reason, redactor))
    except TimeoutError:
        return _fallback(failed, evidence, "LLM not asked: every LLM slot stayed busy until the deadline", llm.model)


def _reused(hit: cache.Hit, evidence: Evidence, llm: LLMCredentials, seen: Recurrence) -> AnalysisResult:
    """Another run's cached answer, for this run."""
    # The cached answer names the first run's task run; this run's page names its own.
    mine = hit.analysis.model_copy(update={"failed_task": evidence.failed_task or hit.analysis.failed_task})
    return AnalysisResult(
        analysis=mine, status="llm", reason=f"same failure as run {hit.first_run_id}: analysis reused",
        usage=LLMUsage(model=llm.model, prompt_tokens=0, completion_tokens=0, cost_usd=0.0),
        recurrence=seen.model_copy(update={
            "cache_hit": True, "same_as_run_id": hit.first_run_id, "first_seen": hit.first_seen,
            "occurrences": hit.occurrences}),
    )


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
                        summarizer_id: str | None = None) -> Summary:
    """The summary delivered at once, before the late logs and the LLM: the deterministic analysis
    of the run's state messages and the warnings and errors stored so far. Its evidence numbers
    those records (``E<n>``), not the log's lines, and so do its citations."""
    analysis = deterministic_analysis(evidence, failed)
    reason = (f"The final summary is in progress: it waits up to {wait_s:g} s for the run's late logs, reads "
              "all of them and analyses them (with the LLM when one is configured), then replaces this one.")
    return compose_summary(failed, evidence, AnalysisResult(analysis=analysis, status="provisional", reason=reason),
                           summarizer_id)


def compose_summary(failed: FailedRun, evidence: Evidence, result: AnalysisResult,
                    summarizer_id: str | None = None) -> Summary:
    """The summary of ``failed``: its facts (already redacted), the evidence and the analysis, whose
    citations are checked here against that evidence (`citations.checked`)."""
    analysis, verification = checked(result.analysis, evidence)
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
