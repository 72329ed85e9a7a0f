"""The gate to the LLM: the fingerprint cache, the daily budgets, the process's memory while the
database is down, on a real database and a real HTTP test LLM."""

from __future__ import annotations

import asyncio

from prefect_failure_insights.blocks import FailureInsightsSettings, LLMCredentials

from prefect_failure_insights.analysis.compose import compose_summary
from prefect_failure_insights.analysis.fingerprint import signature
from prefect_failure_insights.analysis.gate import LLMGate
from prefect_failure_insights.evidence.builder import build_evidence
from prefect_failure_insights.models import FailedRun
from prefect_failure_insights.prefect_api.concurrency import no_limit
from prefect_failure_insights.store.ledger import daily_usage
from prefect_failure_insights.store.summaries import claim_summary, store_summary
from prefect_failure_insights.testing.fake_llm import FakeLLM
from prefect_failure_insights.testing.samples import failed_run


def _run(i: int, flow: str = "nightly-orders"):
    failed, lines = failed_run(flow_name=flow)
    run = failed.run.model_copy(update={"id": f"00000000-0000-4000-8000-{i:012d}", "name": f"run-{i}"})
    return FailedRun(run=run, task_runs=failed.task_runs), lines


async def _summarize(database, fake: FakeLLM, i: int, settings: FailureInsightsSettings | None = None,
                     flow: str = "nightly-orders", regenerate: bool = False):
    failed, lines = _run(i, flow)
    evidence = build_evidence(failed, lines)
    llm = LLMCredentials(base_url=fake.url, model="fake-model", max_retries=0)
    result = await LLMGate(limiter=no_limit).analyze_failure(
        failed, evidence, settings=settings or FailureInsightsSettings(llm_deadline_seconds=8), llm=llm,
        database=database, summarizer_id=f"s-{i}", regenerate=regenerate)
    summary = compose_summary(failed, evidence, result, summarizer_id=f"s-{i}")
    claim = await database.run(claim_summary, failed.run, f"s-{i}")
    assert claim.result == "claimed"
    return (await database.run(store_summary, summary, f"s-{i}")).summary


def test_100_failures_with_one_signature_cost_one_llm_call(database, fake_llm: FakeLLM) -> None:
    async def storm():
        first = await _summarize(database, fake_llm, 0)
        # 20 at once, then 79 one after another.
        burst = await asyncio.gather(*(_summarize(database, fake_llm, i) for i in range(1, 21)))
        rest = [await _summarize(database, fake_llm, i) for i in range(21, 100)]
        return first, burst + rest

    first, others = asyncio.run(storm())
    assert len(fake_llm.completions()) == 1
    assert first.status == "llm" and not first.recurrence.cache_hit and first.usage.prompt_tokens
    assert all(s.recurrence.cache_hit and s.recurrence.same_as_run_id == first.run.id for s in others)
    assert all(s.analysis == first.analysis for s in others)
    assert max(s.recurrence.occurrences for s in others) == 100
    tokens, _ = daily_usage(database.engine, first.delivery.created_at)
    assert tokens == first.usage.tokens  # hits cost nothing


def test_identical_failures_at_once_wait_for_the_first_answer(database, fake_llm: FakeLLM) -> None:
    """No answer cached yet: ten arrive together; one asks, the others wait for its answer."""
    fake_llm.default, fake_llm.slow_seconds = "slow", 1.5

    async def together():
        return await asyncio.gather(*(_summarize(database, fake_llm, i) for i in range(10)))

    results = asyncio.run(together())
    assert len(fake_llm.completions()) == 1
    assert sum(not s.recurrence.cache_hit for s in results) == 1
    assert all(s.status == "llm" for s in results)
    assert len({s.analysis.title for s in results}) == 1


def test_another_signature_or_regenerate_asks_again(database, fake_llm: FakeLLM) -> None:
    asyncio.run(_summarize(database, fake_llm, 0))
    asyncio.run(_summarize(database, fake_llm, 1, flow="billing-sync"))  # another flow: another failure
    assert len(fake_llm.completions()) == 2
    regenerated = asyncio.run(_summarize(database, fake_llm, 2, regenerate=True))
    assert not regenerated.recurrence.cache_hit and len(fake_llm.completions()) == 3


def test_a_failed_llm_call_is_not_cached(database, fake_llm: FakeLLM) -> None:
    fake_llm.script("503")
    down = asyncio.run(_summarize(database, fake_llm, 0, FailureInsightsSettings(llm_deadline_seconds=5)))
    assert down.status == "fallback"
    up = asyncio.run(_summarize(database, fake_llm, 1))
    assert up.status == "llm" and not up.recurrence.cache_hit


def test_the_daily_token_budget_switches_to_the_fallback(database, fake_llm: FakeLLM) -> None:
    first = asyncio.run(_summarize(database, fake_llm, 0))
    budget = first.usage.tokens
    settings = FailureInsightsSettings(daily_token_budget=budget)
    over = asyncio.run(_summarize(database, fake_llm, 1, settings, flow="another-flow"))
    assert over.status == "fallback" and "daily LLM token budget" in over.reason
    assert len(fake_llm.completions()) == 1


def test_the_daily_cost_budget(database, fake_llm: FakeLLM) -> None:
    priced = FailureInsightsSettings(llm_prices={"fake-model": [1000.0, 1000.0]}, daily_cost_budget_usd=0.01)
    first = asyncio.run(_summarize(database, fake_llm, 0, priced))
    assert first.status == "llm" and first.usage.cost_usd > 0.01
    over = asyncio.run(_summarize(database, fake_llm, 1, priced, flow="another-flow"))
    assert over.status == "fallback" and "daily LLM cost budget" in over.reason


def test_signature_masks_numbers_but_keeps_quoted_values() -> None:
    a, lines = failed_run()
    ev = build_evidence(a, lines)
    assert "page=7" not in signature(ev, a) and "nightly-orders" in signature(ev, a)
    assert "extract_orders |" in signature(ev, a)  # the task run's random suffix is gone


def _unreachable_database():
    from prefect_sqlalchemy import ConnectionComponents, SqlAlchemyConnector

    from prefect_failure_insights.store import Database
    from prefect_failure_insights.testing.prefect_server import free_port

    connector = SqlAlchemyConnector(connection_info=ConnectionComponents(
        driver="postgresql+psycopg", username="u", password="p", host="127.0.0.1", port=free_port(),
        database="x"))
    return Database(connector, "an unreachable PostgreSQL")


def test_without_the_database_identical_failures_share_one_call_and_calls_are_capped(fake_llm: FakeLLM) -> None:
    gate = LLMGate(limiter=no_limit)  # one process: its summaries share the gate
    fake_llm.default, fake_llm.slow_seconds = "slow", 0.5
    database = _unreachable_database()
    llm = LLMCredentials(base_url=fake_llm.url, model="fake-model", max_retries=0)
    settings = FailureInsightsSettings(llm_deadline_seconds=8, max_concurrent_llm_calls=3)

    async def one(i: int, flow: str):
        failed, lines = _run(i, flow)
        return await gate.analyze_failure(failed, build_evidence(failed, lines), settings=settings, llm=llm,
                                          database=database, summarizer_id=f"s-{i}")

    async def storm():
        identical = await asyncio.gather(*(one(i, "nightly-orders") for i in range(10)))
        different = await asyncio.gather(*(one(100 + i, f"flow-{i}") for i in range(10)))
        return identical, different

    identical, different = asyncio.run(storm())
    assert len(fake_llm.completions()) == 3  # 1 for the ten identical ones, then 2 more: the cap of 3
    assert all(r.status == "llm" and "database is unavailable" in r.reason for r in identical)
    assert sum(r.status == "llm" for r in different) == 2
    capped = [r for r in different if r.status == "fallback"]
    assert len(capped) == 8 and all("3 LLM calls allowed without a budget check" in r.reason for r in capped)
    assert all(any("unavailable" in n for n in r.notes) for r in identical + different)


def test_the_fingerprint_claim_of_an_ended_summarizer_is_taken_over_at_once(database, fake_llm: FakeLLM) -> None:
    import time

    from prefect_failure_insights.analysis.fingerprint import cache_key, fingerprint
    from prefect_failure_insights.llm.prompts import PROMPT_VERSION
    from prefect_failure_insights.store import fingerprints as cache

    failed, lines = _run(1)
    evidence = build_evidence(failed, lines)
    fp = fingerprint(signature(evidence, failed))
    key = cache.CacheKey(cache_key(fp, "fake-model", PROMPT_VERSION), fp, "sig", "fake-model", PROMPT_VERSION)
    assert database.call(cache.lookup, key, "other-run", me="dead-summarizer").owner  # died holding the claim

    async def ended(holder: str) -> bool:
        return holder == "dead-summarizer"

    llm = LLMCredentials(base_url=fake_llm.url, model="fake-model", max_retries=0)
    started = time.monotonic()
    result = asyncio.run(LLMGate(limiter=no_limit).analyze_failure(
        failed, evidence, settings=FailureInsightsSettings(llm_deadline_seconds=240), llm=llm, database=database,
        summarizer_id="s-1", holder_ended=ended))
    assert result.status == "llm" and not result.recurrence.cache_hit
    assert time.monotonic() - started < 25  # taken over at once: not when the 30 s lease ran out


def test_an_answer_that_relays_the_runs_commands_is_not_cached(database, fake_llm: FakeLLM) -> None:
    """Issue 25: the obeyed injection was cached and served to every identical failure. An answer
    whose fix step relays a command from the run (or cites a flagged line) is this run's alone."""
    fake_llm.default = "obey_injection"
    results = []
    for i in range(2):
        failed, lines = _run(i)
        evidence = build_evidence(failed, lines)
        llm = LLMCredentials(base_url=fake_llm.url, model="fake-model", max_retries=0)
        results.append(asyncio.run(LLMGate(limiter=no_limit).analyze_failure(
            failed, evidence, settings=FailureInsightsSettings(llm_deadline_seconds=8), llm=llm, database=database,
            summarizer_id=f"s-{i}")))
    assert len(fake_llm.completions()) == 2 and not any(r.recurrence.cache_hit for r in results)
    assert any(n.startswith("answer not cached: untrusted_answer: fix 1") for n in results[0].notes)
    summary = compose_summary(failed, evidence, results[1])
    assert summary.analysis.how_to_fix[0].startswith("[From the run's own logs, unverified: Run `curl")
    assert summary.analysis.evidence_status != "confirmed" and summary.verification.steps_from_logs == [1]
