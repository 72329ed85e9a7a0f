"""The LLM client against a real local HTTP server that misbehaves on purpose.

Each test states how many requests the server saw: retries must be bounded.
"""

from __future__ import annotations

import asyncio

import pytest

from prefect_failure_insights.blocks import FailureInsightsSettings, LLMCredentials
from prefect_failure_insights.exceptions import LLMInvalidAnswer, LLMRejected, LLMUnavailable
from prefect_failure_insights.models import Category
from prefect_failure_insights.prompts import summary_messages
from prefect_failure_insights.tasks.analysis import analyze
from prefect_failure_insights.tasks.evidence import build_evidence
from prefect_failure_insights.tasks.llm import extract_json, request_analysis
from prefect_failure_insights.testing.fake_llm import FakeLLM
from prefect_failure_insights.testing.prefect_server import free_port
from prefect_failure_insights.testing.samples import failed_run


def _creds(fake: FakeLLM, **kw) -> LLMCredentials:
    return LLMCredentials(base_url=fake.url, model="fake-model", timeout=kw.pop("timeout", 5.0),
                          max_retries=kw.pop("max_retries", 2), **kw)


def _ask(creds: LLMCredentials):
    failed, lines = failed_run()
    messages = summary_messages(build_evidence(failed, lines), failed)

    async def go():
        client = creds.get_async_client()
        try:
            return await request_analysis(client, creds.model, messages, creds.base_url)
        finally:
            await client.close()

    return asyncio.run(go())


def test_valid_answer(fake_llm: FakeLLM) -> None:
    answer = _ask(_creds(fake_llm))
    assert answer.analysis.category is Category.THIRD_PARTY_SYSTEM
    assert answer.analysis.failed_task == "extract_orders-3f1"
    assert answer.prompt_tokens > 0 and answer.requests == 1
    body = fake_llm.completions()[0]
    assert body["response_format"]["type"] == "json_schema"
    assert body["model"] == "fake-model"


def test_json_schema_refused_with_500_falls_back_to_json_object(fake_llm: FakeLLM) -> None:
    """llama.cpp's server answers HTTP 500 to json_schema; json_object must be tried."""
    fake_llm.default = "no_json_schema"
    answer = _ask(_creds(fake_llm, max_retries=0))
    formats = [b.get("response_format", {}).get("type") for b in fake_llm.completions()]
    assert formats == ["json_schema", "json_object"]
    assert answer.requests == 2


def test_one_repair_round_trip_fixes_broken_json(fake_llm: FakeLLM) -> None:
    fake_llm.script("invalid_json")
    answer = _ask(_creds(fake_llm))
    assert answer.requests == 2
    repair = fake_llm.completions()[1]["messages"][-1]["content"]
    assert "could not be used" in repair


@pytest.mark.parametrize("behaviour", ["invalid_json", "truncated", "wrong_schema", "empty_choices", "unknown_category"])
def test_garbage_twice_is_an_invalid_answer_after_exactly_two_requests(fake_llm: FakeLLM, behaviour: str) -> None:
    fake_llm.default = behaviour
    with pytest.raises(LLMInvalidAnswer):
        _ask(_creds(fake_llm))
    assert len(fake_llm.completions()) == 2


def test_server_errors_are_retried_by_the_sdk_then_give_up(fake_llm: FakeLLM) -> None:
    fake_llm.default = "503"
    with pytest.raises(LLMUnavailable, match="HTTP 503"):
        _ask(_creds(fake_llm, max_retries=2))
    assert len(fake_llm.completions()) == 3


def test_rate_limit_is_retried_then_reported(fake_llm: FakeLLM) -> None:
    fake_llm.script("429", "429")
    answer = _ask(_creds(fake_llm, max_retries=2))
    assert answer.requests == 1  # SDK retries are invisible to us ...
    assert len(fake_llm.completions()) == 3  # ... but the server saw them
    fake_llm.reset("429")
    with pytest.raises(LLMUnavailable, match="rate-limiting"):
        _ask(_creds(fake_llm, max_retries=1))
    assert len(fake_llm.completions()) == 2


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


def test_timeout_is_bounded(fake_llm: FakeLLM) -> None:
    fake_llm.default = "slow"
    fake_llm.slow_seconds = 3.0
    with pytest.raises(LLMUnavailable, match="timeout"):
        _ask(_creds(fake_llm, timeout=0.5, max_retries=1))
    assert len(fake_llm.completions()) == 2


def test_connection_refused() -> None:
    creds = LLMCredentials(base_url=f"http://127.0.0.1:{free_port()}/v1", model="m", max_retries=0)
    with pytest.raises(LLMUnavailable, match="could not connect"):
        _ask(creds)


def test_analyze_falls_back_on_a_broken_response_body(fake_llm: FakeLLM) -> None:
    """A 200 whose body is not JSON must end in the fallback, not a crash."""
    fake_llm.default = "broken_response"
    failed, lines = failed_run()
    result = asyncio.run(analyze(failed, build_evidence(failed, lines), FailureInsightsSettings(),
                                 _creds(fake_llm, max_retries=0)))
    assert result.status == "fallback"
    assert result.reason
    assert result.analysis.category is Category.THIRD_PARTY_SYSTEM


def test_no_secret_reaches_the_llm_request(fake_llm: FakeLLM) -> None:
    failed, lines = failed_run(secrets=True)
    result = asyncio.run(analyze(failed, build_evidence(failed, lines), FailureInsightsSettings(),
                                 _creds(fake_llm)))
    assert result.status == "llm"
    raw = str(fake_llm.requests)
    assert "Sup3rS3cret!" not in raw and "AbCdEfGhIjKlMnOp" not in raw
    assert "[REDACTED:url_password]" in raw


def test_custom_instructions_and_extra_questions_reach_the_prompt(fake_llm: FakeLLM) -> None:
    fake_llm.answer["additional_answers"] = ["The on-call owner is the orders team."]
    failed, lines = failed_run()
    settings = FailureInsightsSettings(custom_instructions="Our vendors are listed in VENDORS.md.",
                                       extra_questions=["Who owns this pipeline?"])
    result = asyncio.run(analyze(failed, build_evidence(failed, lines), settings, _creds(fake_llm)))
    messages = fake_llm.completions()[0]["messages"]
    assert "VENDORS.md" in messages[0]["content"]
    assert "1. Who owns this pipeline?" in messages[1]["content"]
    assert result.analysis.additional_answers == ["The on-call owner is the orders team."]


def test_analyze_without_llm_says_why() -> None:
    failed, lines = failed_run()
    result = asyncio.run(analyze(failed, build_evidence(failed, lines), FailureInsightsSettings(), None,
                                 "No LLM configured: ..."))
    assert result.status == "fallback" and result.reason == "No LLM configured: ..."


def test_extract_json_tolerates_fences_and_prose() -> None:
    assert extract_json('Here you go:\n```json\n{"a": 1}\n```') == {"a": 1}
    assert extract_json('The answer is {"a": {"b": 2}} hope it helps') == {"a": {"b": 2}}
    with pytest.raises(ValueError):
        extract_json("no json here")


def test_a_500_outage_costs_at_most_one_extra_probe(fake_llm: FakeLLM) -> None:
    """A 500 could be llama.cpp refusing json_schema, so json_object is probed once, without retries."""
    fake_llm.default = "500"
    with pytest.raises(LLMUnavailable, match="HTTP 500"):
        _ask(_creds(fake_llm, max_retries=2))
    assert len(fake_llm.completions()) == 4
