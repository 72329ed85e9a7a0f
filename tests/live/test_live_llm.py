"""Contract tests against real models: protocol and shape, not content.

A 135M-parameter model often writes broken or looping JSON; the contract is that
every exchange ends, within its deadline and a bounded number of requests, in either a
validated `FailureAnalysis` or a clear `LLMInvalidAnswer`, and that `analyze` always
returns a summary. Against OpenAI (when ``OPENAI_API_KEY`` is set) the answer must be
valid.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from prefect_failure_insights.blocks import FailureInsightsSettings, LLMCredentials
from pydantic import SecretStr

from prefect_failure_insights.analysis.classifier import Classifier
from prefect_failure_insights.analysis.answer import analyze
from prefect_failure_insights.evidence.builder import build_evidence
from prefect_failure_insights.exceptions import LLMInvalidAnswer
from prefect_failure_insights.llm.backends import backend_for
from prefect_failure_insights.llm.prompts import summary_messages
from prefect_failure_insights.llm.structured import (
    FormatMemory,
    RESPONSE_FORMATS,
    RetryPolicy,
    request_analysis,
)
from prefect_failure_insights.models import Category, ErrorItem
from prefect_failure_insights.testing.samples import failed_run

pytestmark = pytest.mark.live

# A small model on one thread: ~10 s per 1,500-token prompt, longer when it loops to the token limit.
SLOW = RetryPolicy(max_retries=1, timeout=240, deadline=600)
EVIDENCE_TOKENS = 1200  # prompt + 1,500 answer tokens must fit the server's 4,096-token context


@pytest.fixture(params=["llama.cpp", "openai"])
def endpoint(request, live_openai_api_key) -> LLMCredentials:
    """A real endpoint: the local llama.cpp server always, OpenAI when a key is set."""
    if request.param == "llama.cpp":
        return LLMCredentials(base_url=request.getfixturevalue("llama_server"), model="smollm2",
                              timeout=SLOW.timeout, max_retries=SLOW.max_retries)
    if not live_openai_api_key:
        pytest.skip("OPENAI_API_KEY is not set")
    return LLMCredentials(api_key=SecretStr(live_openai_api_key), model="gpt-4o-mini", timeout=60, max_retries=1)


def _messages() -> list[dict[str, str]]:
    failed, lines = failed_run()
    return summary_messages(build_evidence(failed, lines, budget_tokens=EVIDENCE_TOKENS), failed)


def test_the_endpoint_speaks_the_chat_completions_protocol(endpoint: LLMCredentials) -> None:
    async def go():
        client = endpoint.get_async_client()
        try:
            return await client.chat.completions.create(
                model=endpoint.model, max_tokens=16,
                messages=[{"role": "user", "content": "Say OK."}],
            )
        finally:
            await client.close()

    response = asyncio.run(go())
    assert response.choices and isinstance(response.choices[0].message.content, str)
    assert response.choices[0].finish_reason in {"stop", "length"}
    assert response.usage.prompt_tokens > 0 and response.usage.completion_tokens > 0


def test_request_analysis_ends_in_a_valid_answer_or_a_clear_error(endpoint: LLMCredentials) -> None:
    policy = RetryPolicy(max_retries=endpoint.max_retries, timeout=endpoint.timeout, deadline=SLOW.deadline)

    async def go():
        backend = backend_for(endpoint)
        try:
            return await request_analysis(backend, _messages(), policy)
        finally:
            await backend.close()

    started = time.monotonic()
    try:
        answer = asyncio.run(go())
    except LLMInvalidAnswer as exc:  # a small model's broken JSON, twice: allowed, but said clearly
        assert "after one repair" in str(exc)
        assert endpoint.model == "smollm2", f"a hosted model must answer validly: {exc}"
    else:
        assert answer.analysis.category in set(Category)
        assert answer.analysis.title and answer.analysis.what_happened
        assert answer.prompt_tokens > 0 and answer.completion_tokens > 0
        # A format probe, one answer and at most one repair (retries only on transient errors).
        assert 1 <= answer.requests <= 3 + policy.max_retries
    assert time.monotonic() - started < SLOW.deadline + 10


def test_the_remembered_response_format_is_one_the_server_accepts(endpoint: LLMCredentials) -> None:
    """llama.cpp answers 500 to `json_schema`; the fallback must land on a format it takes."""
    memory = FormatMemory()
    asyncio.run(analyze(*_failed_and_evidence(), FailureInsightsSettings(llm_deadline_seconds=SLOW.deadline),
                        endpoint, memory=memory))
    (_, base_url, _), index = next(iter(memory.remembered().items()))
    fmt = RESPONSE_FORMATS[index]
    headers = {"Authorization": f"Bearer {endpoint.api_key.get_secret_value()}"} if endpoint.api_key else {}
    body = {"model": endpoint.model, "max_tokens": 16, "messages": [{"role": "user", "content": "{}"}]}
    if fmt is not None:
        body["response_format"] = fmt
    direct = httpx.post(f"{base_url.rstrip('/')}/chat/completions", json=body, headers=headers, timeout=endpoint.timeout)
    assert direct.status_code == 200, direct.text[:300]


def test_analyze_always_returns_a_summary(endpoint: LLMCredentials) -> None:
    failed, evidence = _failed_and_evidence()
    result = asyncio.run(analyze(failed, evidence, FailureInsightsSettings(llm_deadline_seconds=SLOW.deadline),
                                 llm=endpoint))
    assert result.status in {"llm", "fallback"}
    assert result.analysis.category in set(Category) and result.analysis.how_to_fix
    if result.status == "fallback":
        assert result.reason.startswith("LLM failed:"), result.reason  # never "failed unexpectedly"
    else:
        assert result.model and result.prompt_tokens > 0 and result.latency_ms > 0


def _failed_and_evidence():
    failed, lines = failed_run()
    return failed, build_evidence(failed, lines, budget_tokens=EVIDENCE_TOKENS)


def test_classification_ends_in_a_category_of_the_taxonomy(endpoint: LLMCredentials) -> None:
    """Errors the rules leave alone go to the model once per signature; every answer is usable or said to be not."""
    texts = ["ledger.ReconcileError: reconciliation drift of 12 entries between ledger shards",
             "RuntimeError: the nightly snapshot of warehouse 'emea' is missing for 2026-11-28",
             "ledger.ReconcileError: reconciliation drift of 40 entries between ledger shards"]  # same signature
    items = [ErrorItem(id=str(i), error_text=text) for i, text in enumerate(texts)]
    classifier = Classifier(FailureInsightsSettings(llm_deadline_seconds=SLOW.deadline), llm=endpoint)
    results = asyncio.run(classifier.classify(items))
    assert [r.id for r in results] == ["0", "1", "2"]
    assert results[0].category == results[2].category  # one question for the two drift errors
    for result in results:
        assert result.category in classifier.taxonomy.names
        if result.classified_by == "none":
            assert "unusable" in result.reasoning or "LLM failed" in result.reasoning, result.reasoning
            assert endpoint.model == "smollm2", f"a hosted model must answer validly: {result.reasoning}"
        else:
            assert result.classified_by == "llm" and result.reasoning
    assert 1 <= classifier.usage.llm_calls <= 2 and classifier.usage.prompt_tokens > 0
