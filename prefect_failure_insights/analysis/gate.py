"""The way to the LLM for the summaries of one process: the fingerprint cache, the daily
budgets and the limit on concurrent calls, around `analysis.answer.analyze`.

One LLM call per distinct failure (the fingerprint cache in the database, shared by every
process), no call once the day's token or cost budget is spent, and at most
``max_concurrent_llm_calls`` calls at once (a Prefect global concurrency limit), so that a
storm of 500 failures can neither run up a bill nor trip the provider's rate limits.

What a process keeps for this is one object, `LLMGate`, owned by whoever runs summaries and
passed in: ``serve`` makes one for every summary it executes (its own slots, handed from one
summary to the next at once, before the server's global limit is asked), a flow run that a
worker starts makes its own, and so does the CLI.
"""

from __future__ import annotations

import asyncio
import time as _time
from collections.abc import Awaitable, Callable
from datetime import datetime, time, timezone
from functools import partial
from typing import TYPE_CHECKING, TypeVar

import anyio

from prefect_failure_insights.analysis.answer import analyze, fallback
from prefect_failure_insights.analysis.categorize import Categorizer
from prefect_failure_insights.analysis.compose import undeliverable
from prefect_failure_insights.analysis.citations import untrusted_answer
from prefect_failure_insights.analysis.fingerprint import (
    cache_key,
    fingerprint,
    signature,
)
from prefect_failure_insights.analysis.similarity import failure_pattern, pattern_id
from prefect_failure_insights.blocks import FailureInsightsSettings, LLMCredentials
from prefect_failure_insights.exceptions import StorageError
from prefect_failure_insights.llm.prompts import PROMPT_VERSION
from prefect_failure_insights.llm.structured import FormatMemory
from prefect_failure_insights.models import (
    AnalysisResult,
    Evidence,
    FailedRun,
    LLMUsage,
    Recurrence,
)
from prefect_failure_insights.prefect_api.concurrency import llm_slot
from prefect_failure_insights.redaction import Redactor
from prefect_failure_insights.store import Database
from prefect_failure_insights.store import fingerprints as cache
from prefect_failure_insights.store.ledger import daily_usage

if TYPE_CHECKING:
    from sqlalchemy import Engine

T = TypeVar("T")
#: Runs an LLM call while holding a slot of the concurrency limit; TimeoutError when none frees up.
Limiter = Callable[[FailureInsightsSettings, Callable[[], Awaitable[T]]], Awaitable[T]]

#: How often a summarizer waiting for another's answer to the same failure looks again, and
#: how often it asks Prefect whether that other summarizer's run has ended.
CACHE_POLL_SECONDS = 0.25
HOLDER_CHECK_SECONDS = 5.0


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
    """What the summaries of one process do while the database is unavailable.

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
                      *, fallback: Callable[[str], AnalysisResult], why: str,
                      shared: Callable[[AnalysisResult], bool] = lambda result: True) -> AnalysisResult:
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
        if result.status != "llm" or not shared(result):
            self._answers.pop(key, None)  # only trusted answers are shared, never fallbacks
        future.set_result(result)
        note = (f"{why}: no deduplication across processes and no budget check (at most {cap} LLM calls "
                "until it is back)")
        return result.model_copy(update={"reason": note}) if result.status == "llm" else result


class LLMGate:
    """What the summaries of one process share on their way to the LLM (see the module docstring):
    the limit on concurrent calls, the memory of which response format each endpoint takes, and
    what stands in for the database while it is down.

    Args:
        local_slots: Most LLM calls at once among this process's summaries, which hand a slot
            to each other at once and only then ask the server's global limit (shared with other
            processes). None: the global limit alone.
        limiter: How a call holds a slot of the shared limit (`prefect_api.concurrency.llm_slot`;
            `prefect_api.concurrency.no_limit` offline and in tests).

    Example:
        ```python
        gate = LLMGate(local_slots=settings.max_concurrent_llm_calls)  # once, in the process that serves
        result = await gate.analyze_failure(failed, evidence, settings=settings, llm=llm, database=database)
        ```
    """

    def __init__(self, *, local_slots: int | None = None, limiter: Limiter | None = None) -> None:
        local = anyio.Semaphore(local_slots) if local_slots else None
        self.limiter: Limiter = limiter or partial(llm_slot, local=local)
        self.without_database = WithoutDatabase()
        self.formats = FormatMemory()

    async def analyze_failure(
        self,
        failed: FailedRun,
        evidence: Evidence,
        *,
        settings: FailureInsightsSettings,
        llm: LLMCredentials | None,
        no_llm_reason: str | None = None,
        redactor: Redactor | None = None,
        database: Database | None = None,
        regenerate: bool = False,
        summarizer_id: str = "",
        holder_ended: Callable[[str], Awaitable[bool]] | None = None,
        categorizer: Categorizer | None = None,
    ) -> AnalysisResult:
        """`analyze`, behind the fingerprint cache, the daily budgets and the concurrency limit.

        Without a database (offline use), only `analyze` runs. When the database fails, this
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
            result = await analyze(failed, evidence, settings, llm=llm, no_llm_reason=no_llm_reason, redactor=redactor,
                                   memory=self.formats, categorizer=categorizer)
            return result.model_copy(update={"recurrence": seen})
        key = cache.CacheKey(cache_key(fp, llm.model, PROMPT_VERSION), fp, sig, llm.model, PROMPT_VERSION)
        run_id = failed.run.id
        notes: list[str] = []

        def ask() -> Awaitable[AnalysisResult]:
            return self._limited(settings, failed, evidence, llm, no_llm_reason, redactor, categorizer=categorizer)

        def fall_back(reason: str) -> AnalysisResult:
            return fallback(failed, evidence, reason, model=llm.model, categorizer=categorizer)

        try:
            found = cache.Lookup(owner=False)
            if not regenerate:
                found = await _answer_or_claim(database, key, run_id, summarizer_id, settings.llm_deadline_seconds,
                                               holder_ended)
                if found.hit is not None:
                    self.without_database.back()
                    reused = _reused(found.hit, evidence, llm, seen)
                    if problem := undeliverable(failed, evidence, reused):
                        return fall_back(f"the cached answer of run {found.hit.first_run_id} could not be "
                                         f"rendered ({problem})").model_copy(update={"recurrence": seen})
                    return reused
            spent = await database.run(over_budget, settings)
            self.without_database.back()
        except StorageError as exc:  # the cache and the ledger are optimisations; the summary is not
            why = "the database is unavailable"
            notes.append(f"{why} ({exc}): deduplication and budgets are this process's own until it is back")
            result = await self.without_database.analyze(key.key, settings.max_concurrent_llm_calls, ask,
                                                         fallback=fall_back, why=why,
                                                         shared=lambda r: untrusted_answer(r.analysis, evidence) is None)
            return result.model_copy(update={"recurrence": seen, "notes": notes})
        if spent:
            result = fall_back(f"LLM not asked: {spent}")
        elif found.owner:
            async with database.lease(f"the fingerprint {fp[:12]}", cache.renew, key, summarizer_id):
                result = await ask()
        else:
            result = await ask()
        # An answer that relays the run's own commands or rests on instruction-like lines is this
        # run's alone: cached, it would be served to every identical failure.
        untrusted = untrusted_answer(result.analysis, evidence) if result.status == "llm" else None
        if untrusted:
            notes.append(f"answer not cached: {untrusted}")
        try:
            # An answer made before the run's last log records arrived is made again when they do, and
            # one relaying the run's own commands is marked unverified: neither is the answer for
            # every identical failure.
            if result.status == "llm" and evidence.logs_complete and not untrusted and (found.owner or regenerate):
                await database.run(cache.store, key, result.analysis, run_id=run_id, me=summarizer_id,
                                   replace=regenerate)
            elif found.owner:
                await database.run(cache.release, key, summarizer_id)
        except StorageError as exc:
            notes.append(f"could not update the fingerprint cache: {exc}")
        return result.model_copy(update={"recurrence": seen, "notes": notes})

    async def _limited(self, settings: FailureInsightsSettings, failed: FailedRun, evidence: Evidence,
                       llm: LLMCredentials, no_llm_reason: str | None, redactor: Redactor | None,
                       *, categorizer: Categorizer | None = None) -> AnalysisResult:
        """`analyze` holding a slot of the LLM concurrency limit; the fallback when none frees up."""
        try:
            return await self.limiter(settings, lambda: analyze(failed, evidence, settings, llm=llm,
                                                                no_llm_reason=no_llm_reason, redactor=redactor,
                                                                memory=self.formats, categorizer=categorizer))
        except TimeoutError:
            return fallback(failed, evidence, "LLM not asked: every LLM slot stayed busy until the deadline",
                            model=llm.model, categorizer=categorizer)


async def _answer_or_claim(database: Database, key: cache.CacheKey, run_id: str, me: str, wait_s: float,
                           holder_ended: Callable[[str], Awaitable[bool]] | None) -> cache.Lookup:
    """The cached answer of another summarizer (waiting while it asks), or the claim to ask:
    taken over when the owner's lease runs out, its run has ended, or ``wait_s`` is over."""
    start = _time.monotonic()
    checked = start - HOLDER_CHECK_SECONDS  # the first holder is checked at once
    ended: str | None = None
    while True:
        waited = _time.monotonic() - start
        found = await database.run(cache.lookup, key, run_id, me=me, take_over=waited >= wait_s, take_over_from=ended)
        if found.hit is not None or found.owner:
            return found
        if found.holder and holder_ended is not None and _time.monotonic() - checked >= HOLDER_CHECK_SECONDS:
            checked = _time.monotonic()
            if await holder_ended(found.holder):
                ended = found.holder
                continue
        await asyncio.sleep(CACHE_POLL_SECONDS)


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
