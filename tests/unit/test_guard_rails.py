"""The fingerprint cache and the daily budgets, on a real database and a real HTTP test LLM."""

from __future__ import annotations

import asyncio

import pytest

from prefect_failure_insights.blocks import FailureInsightsSettings, LLMCredentials
from prefect_failure_insights.models import FailedRun
from prefect_failure_insights.tasks import storage
from prefect_failure_insights.tasks.analysis import analyze_with_guard_rails, compose_summary, no_limit
from prefect_failure_insights.tasks.evidence import build_evidence
from prefect_failure_insights.tasks.fingerprint import signature
from prefect_failure_insights.testing.fake_llm import FakeLLM
from prefect_failure_insights.testing.samples import failed_run


@pytest.fixture
def engine(connector):
    engine = connector.get_engine()
    storage.ensure_schema(engine)
    return engine


def _run(i: int, flow: str = "nightly-orders"):
    failed, lines = failed_run(flow_name=flow)
    run = failed.run.model_copy(update={"id": f"00000000-0000-4000-8000-{i:012d}", "name": f"run-{i}"})
    return FailedRun(run=run, task_runs=failed.task_runs), lines


async def _summarize(engine, fake: FakeLLM, i: int, settings: FailureInsightsSettings | None = None,
                     flow: str = "nightly-orders", regenerate: bool = False):
    failed, lines = _run(i, flow)
    evidence = build_evidence(failed, lines)
    llm = LLMCredentials(base_url=fake.url, model="fake-model", max_retries=0)
    result = await analyze_with_guard_rails(failed, evidence, settings or FailureInsightsSettings(llm_deadline_seconds=8), llm,
                                            engine=engine, summarizer_id=f"s-{i}", limiter=no_limit,
                                            regenerate=regenerate)
    summary = compose_summary(failed, evidence, result, f"s-{i}")
    claim = await asyncio.to_thread(storage.claim, engine, failed.run, f"s-{i}")
    assert claim.result == "claimed"
    await asyncio.to_thread(storage.save, engine, summary, f"s-{i}")
    return summary


def test_100_failures_with_one_signature_cost_one_llm_call(engine, fake_llm: FakeLLM) -> None:
    async def storm():
        first = await _summarize(engine, fake_llm, 0)
        # 20 at once, then 79 one after another.
        burst = await asyncio.gather(*(_summarize(engine, fake_llm, i) for i in range(1, 21)))
        rest = [await _summarize(engine, fake_llm, i) for i in range(21, 100)]
        return first, burst + rest

    first, others = asyncio.run(storm())
    assert len(fake_llm.completions()) == 1
    assert first.status == "llm" and not first.cache_hit and first.prompt_tokens
    assert all(s.cache_hit and s.same_as_run_id == first.flow_run_id for s in others)
    assert all(s.analysis == first.analysis for s in others)
    assert max(s.occurrences for s in others) == 100
    tokens, _ = storage.daily_usage(engine, first.created_at or first.failed_at.replace(year=2000))
    assert tokens == first.prompt_tokens + first.completion_tokens  # hits cost nothing


def test_identical_failures_at_once_wait_for_the_first_answer(engine, fake_llm: FakeLLM) -> None:
    """No answer cached yet: ten arrive together; one asks, the others wait for its answer."""
    fake_llm.default, fake_llm.slow_seconds = "slow", 1.5

    async def together():
        return await asyncio.gather(*(_summarize(engine, fake_llm, i) for i in range(10)))

    results = asyncio.run(together())
    assert len(fake_llm.completions()) == 1
    assert sum(not s.cache_hit for s in results) == 1
    assert all(s.status == "llm" for s in results)
    assert len({s.analysis.title for s in results}) == 1


def test_another_signature_or_regenerate_asks_again(engine, fake_llm: FakeLLM) -> None:
    asyncio.run(_summarize(engine, fake_llm, 0))
    asyncio.run(_summarize(engine, fake_llm, 1, flow="billing-sync"))  # another flow: another failure
    assert len(fake_llm.completions()) == 2
    regenerated = asyncio.run(_summarize(engine, fake_llm, 2, regenerate=True))
    assert not regenerated.cache_hit and len(fake_llm.completions()) == 3


def test_a_failed_llm_call_is_not_cached(engine, fake_llm: FakeLLM) -> None:
    fake_llm.script("503")
    down = asyncio.run(_summarize(engine, fake_llm, 0, FailureInsightsSettings(llm_deadline_seconds=5)))
    assert down.status == "fallback"
    up = asyncio.run(_summarize(engine, fake_llm, 1))
    assert up.status == "llm" and not up.cache_hit


def test_the_daily_token_budget_switches_to_the_fallback(engine, fake_llm: FakeLLM) -> None:
    first = asyncio.run(_summarize(engine, fake_llm, 0))
    budget = first.prompt_tokens + first.completion_tokens
    settings = FailureInsightsSettings(daily_token_budget=budget)
    over = asyncio.run(_summarize(engine, fake_llm, 1, settings, flow="another-flow"))
    assert over.status == "fallback" and "daily LLM token budget" in over.reason
    assert len(fake_llm.completions()) == 1


def test_the_daily_cost_budget(engine, fake_llm: FakeLLM) -> None:
    priced = FailureInsightsSettings(llm_prices={"fake-model": [1000.0, 1000.0]}, daily_cost_budget_usd=0.01)
    first = asyncio.run(_summarize(engine, fake_llm, 0, priced))
    assert first.status == "llm" and first.cost_usd > 0.01
    over = asyncio.run(_summarize(engine, fake_llm, 1, priced, flow="another-flow"))
    assert over.status == "fallback" and "daily LLM cost budget" in over.reason


def test_signature_masks_numbers_but_keeps_quoted_values() -> None:
    a, lines = failed_run()
    ev = build_evidence(a, lines)
    assert "page=7" not in signature(ev, a) and "nightly-orders" in signature(ev, a)
    assert "extract_orders |" in signature(ev, a)  # the task run's random suffix is gone
