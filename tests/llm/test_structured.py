"""The LLM layer against a real local HTTP server that misbehaves on purpose.

Each test states how many requests the server saw: retries must be bounded.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from prefect_failure_insights.blocks import LLMCredentials
from pydantic import SecretStr

from prefect_failure_insights.evidence.builder import build_evidence
from prefect_failure_insights.exceptions import (
    LLMInvalidAnswer,
    LLMRejected,
    LLMUnavailable,
)
from prefect_failure_insights.llm.backends import backend_for
from prefect_failure_insights.llm.prompts import summary_messages
from prefect_failure_insights.llm.structured import (
    FormatMemory,
    RetryPolicy,
    extract_json,
    request_analysis,
)
from prefect_failure_insights.models import Category
from prefect_failure_insights.testing.fake_llm import FakeLLM
from prefect_failure_insights.testing.prefect_server import free_port
from prefect_failure_insights.testing.samples import failed_run

FAST = dict(base_delay=0.01, max_delay=0.05)


def _creds(fake: FakeLLM, **kw) -> LLMCredentials:
    return LLMCredentials(base_url=fake.url, model="fake-model", **kw)


def _ask(creds: LLMCredentials, policy: RetryPolicy | None = None, memory: FormatMemory | None = None):
    failed, lines = failed_run()
    messages = summary_messages(build_evidence(failed, lines), failed)

    async def go():
        backend = backend_for(creds)
        try:
            return await request_analysis(backend, messages, policy or RetryPolicy(**FAST), memory=memory)
        finally:
            await backend.close()

    return asyncio.run(go())


def test_valid_answer(fake_llm: FakeLLM) -> None:
    answer = _ask(_creds(fake_llm))
    assert answer.analysis.category is Category.THIRD_PARTY_SYSTEM
    assert answer.analysis.failed_task == "extract_orders-3f1"
    assert answer.prompt_tokens > 0 and answer.requests == 1
    body = fake_llm.completions()[0]
    assert body["response_format"]["type"] == "json_schema" and body["model"] == "fake-model"


def test_json_schema_refused_with_500_falls_back_to_json_object_with_schema(fake_llm: FakeLLM) -> None:
    """llama.cpp's server answers HTTP 500 to json_schema and accepts {"type": "json_object", "schema": ...}."""
    fake_llm.default = "no_json_schema"
    memory = FormatMemory()
    answer = _ask(_creds(fake_llm), RetryPolicy(max_retries=2, **FAST), memory)
    formats = [b.get("response_format", {}) for b in fake_llm.completions()]
    assert [f.get("type") for f in formats] == ["json_schema", "json_object"]
    assert "schema" in formats[1]
    assert answer.requests == 2
    # Remembered: the next analysis goes straight to the working format.
    _ask(_creds(fake_llm), memory=memory)
    assert fake_llm.completions()[-1]["response_format"]["type"] == "json_object"
    assert len(fake_llm.completions()) == 3


def test_one_repair_round_trip_fixes_broken_json(fake_llm: FakeLLM) -> None:
    fake_llm.script("invalid_json")
    answer = _ask(_creds(fake_llm))
    assert answer.requests == 2
    assert "could not be used" in fake_llm.completions()[1]["messages"][-1]["content"]


@pytest.mark.parametrize("behaviour", ["invalid_json", "truncated", "wrong_schema", "empty_choices", "unknown_category"])
def test_garbage_twice_is_an_invalid_answer_after_exactly_two_requests(fake_llm: FakeLLM, behaviour: str) -> None:
    fake_llm.default = behaviour
    with pytest.raises(LLMInvalidAnswer):
        _ask(_creds(fake_llm))
    assert len(fake_llm.completions()) == 2


def test_server_errors_are_retried_then_give_up(fake_llm: FakeLLM) -> None:
    fake_llm.default = "503"
    with pytest.raises(LLMUnavailable, match="HTTP 503.*2 retries are exhausted"):
        _ask(_creds(fake_llm), RetryPolicy(max_retries=2, **FAST))
    assert len(fake_llm.completions()) == 3


def test_a_500_outage_costs_one_extra_request_for_the_format_probe(fake_llm: FakeLLM) -> None:
    fake_llm.default = "500"
    with pytest.raises(LLMUnavailable, match="HTTP 500"):
        _ask(_creds(fake_llm), RetryPolicy(max_retries=2, **FAST))
    assert len(fake_llm.completions()) == 4  # json_schema once, json_object 1 + 2 retries


def test_rate_limit_honours_retry_after(fake_llm: FakeLLM) -> None:
    fake_llm.retry_after = "1"
    fake_llm.script("429")
    started = time.monotonic()
    answer = _ask(_creds(fake_llm), RetryPolicy(max_retries=2, base_delay=0.01, max_delay=5))
    assert time.monotonic() - started >= 0.95  # waited what the server asked
    assert answer.requests == 2 and len(fake_llm.completions()) == 2


def test_retries_stop_at_the_deadline(fake_llm: FakeLLM) -> None:
    fake_llm.default = "429"
    fake_llm.retry_after = "30"
    started = time.monotonic()
    with pytest.raises(LLMUnavailable, match="deadline"):
        _ask(_creds(fake_llm), RetryPolicy(max_retries=10, deadline=1.0, base_delay=0.01, max_delay=60))
    assert time.monotonic() - started < 15  # the deadline, not the 30 s the server asked for
    assert len(fake_llm.completions()) == 1


def test_bad_key_is_not_retried(fake_llm: FakeLLM) -> None:
    fake_llm.default = "401"
    with pytest.raises(LLMRejected, match="rejected the API key"):
        _ask(_creds(fake_llm))
    assert len(fake_llm.completions()) == 1


def test_unknown_model_is_not_retried(fake_llm: FakeLLM) -> None:
    fake_llm.default = "404"
    with pytest.raises(LLMRejected, match="model not found"):
        _ask(_creds(fake_llm))
    assert len(fake_llm.completions()) == 1


def test_a_slow_answer_times_out_and_is_retried_within_bounds(fake_llm: FakeLLM) -> None:
    fake_llm.default = "slow"
    fake_llm.slow_seconds = 3.0
    with pytest.raises(LLMUnavailable, match="did not answer"):
        _ask(_creds(fake_llm, timeout=0.5), RetryPolicy(max_retries=1, timeout=0.5, **FAST))
    assert len(fake_llm.completions()) == 2


def test_connection_refused() -> None:
    creds = LLMCredentials(base_url=f"http://127.0.0.1:{free_port()}/v1", model="m")
    with pytest.raises(LLMUnavailable, match="could not connect"):
        _ask(creds, RetryPolicy(max_retries=1, **FAST))


def test_anthropic_messages_api(fake_llm: FakeLLM) -> None:
    creds = LLMCredentials(provider="anthropic", base_url=fake_llm.url.removesuffix("/v1"), model="claude-x",
                           api_key=SecretStr("sk-ant-test-key-0123456789abcdefgh"))
    answer = _ask(creds)
    request = fake_llm.requests[0]
    assert request["path"] == "/v1/messages"
    assert request["headers"]["x-api-key"] == "sk-ant-test-key-0123456789abcdefgh"
    assert request["headers"]["anthropic-version"]
    assert request["body"]["messages"][-1] == {"role": "assistant", "content": "{"}
    assert "system" in request["body"] and answer.analysis.category is Category.THIRD_PARTY_SYSTEM
    fake_llm.reset("529")
    with pytest.raises(LLMUnavailable):
        _ask(creds, RetryPolicy(max_retries=1, **FAST))
    assert len(fake_llm.completions()) == 2


def test_azure_openai_deployment_path_and_api_version(fake_llm: FakeLLM) -> None:
    creds = LLMCredentials(provider="azure", base_url=fake_llm.url.removesuffix("/v1"), model="my-gpt4o",
                           api_key=SecretStr("azure-key-0123"), api_version="2024-10-21")
    _ask(creds)
    request = fake_llm.requests[0]
    assert request["path"].startswith("/openai/deployments/my-gpt4o/chat/completions")
    assert "api-version=2024-10-21" in request["path"]
    assert request["headers"]["api-key"] == "azure-key-0123"


def test_extract_json_tolerates_fences_and_prose() -> None:
    assert extract_json('Here you go:\n```json\n{"a": 1}\n```') == {"a": 1}
    assert extract_json('The answer is {"a": {"b": 2}} hope it helps') == {"a": {"b": 2}}
    with pytest.raises(ValueError):
        extract_json("no json here")


def test_raw_newlines_inside_json_strings_are_accepted() -> None:
    assert extract_json('{"title": "two\nlines"}') == {"title": "two\nlines"}


@pytest.mark.parametrize("provider", ["openai-compatible", "anthropic"])
def test_a_request_that_cannot_be_encoded_is_named_as_such_and_not_retried(fake_llm: FakeLLM, provider: str) -> None:
    from prefect_failure_insights.exceptions import LLMRejected

    async def go():
        backend = backend_for(_creds(fake_llm, provider=provider))
        try:
            return await request_analysis(backend, [{"role": "user", "content": "half a pair: \ud83d"}],
                                          RetryPolicy(max_retries=2, **FAST))
        finally:
            await backend.close()

    with pytest.raises(LLMRejected, match="could not be encoded as UTF-8.*not sent"):
        asyncio.run(go())
    assert fake_llm.completions() == []


def test_an_unpaired_surrogate_in_a_log_reaches_the_llm_as_a_replacement_character(fake_llm: FakeLLM) -> None:
    from prefect_failure_insights.blocks import FailureInsightsSettings
    from prefect_failure_insights.analysis.answer import analyze

    failed, lines = failed_run()
    lines[-3].message = "Encountered exception during execution: KeyError('caf\udce9')"
    result = asyncio.run(analyze(failed, build_evidence(failed, lines), FailureInsightsSettings(),
                                 llm=_creds(fake_llm)))
    assert result.status == "llm"
    sent = fake_llm.completions()[0]["messages"][1]["content"]
    assert "KeyError('caf\ufffd')" in sent
