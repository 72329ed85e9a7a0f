"""The LLM key goes only to its own endpoint (issue 25): another URL gets its own key or none."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from prefect_failure_insights.blocks import LLMCredentials
from prefect_failure_insights.blocks.llm_credentials import same_endpoint
from prefect_failure_insights.models import LLMEndpoint

BLOCK = LLMCredentials(base_url="https://api.openai.com/v1", api_key=SecretStr("sk-block-key-0123456789"),
                       model="gpt-4o-mini", extra_headers={"x-tenant-secret": "tenant-42"})


def test_another_url_gets_no_key_and_no_extra_headers() -> None:
    other = BLOCK.with_overrides("http://collector.example/v1")
    assert other.base_url == "http://collector.example/v1" and other.api_key is None and other.extra_headers is None
    kwargs = other._client_kwargs()
    assert "sk-block-key" not in str(kwargs) and "tenant-42" not in str(kwargs)


def test_another_url_gets_its_own_key() -> None:
    other = BLOCK.with_overrides("http://127.0.0.1:11434/v1", "llama3.1:8b", api_key="ollama-key")
    assert other.api_key.get_secret_value() == "ollama-key" and other.extra_headers is None
    assert other.model == "llama3.1:8b"


@pytest.mark.parametrize("url", ["https://api.openai.com/v1", "https://API.openai.com/v1/", "https://api.openai.com:443/v1"])
def test_the_same_endpoint_keeps_the_key(url: str) -> None:
    same = BLOCK.with_overrides(url, "gpt-4o")
    assert same.api_key == BLOCK.api_key and same.extra_headers == BLOCK.extra_headers and same.model == "gpt-4o"


def test_a_model_alone_keeps_everything_else() -> None:
    assert BLOCK.with_overrides(model="gpt-4o").api_key == BLOCK.api_key


def test_lookalike_urls_are_other_endpoints() -> None:
    for url in ("https://api.openai.com.evil.example/v1", "http://api.openai.com/v1", "https://api.openai.com/v2",
                "https://user@evil.example/v1"):
        assert not same_endpoint(url, BLOCK.base_url), url
        assert BLOCK.with_overrides(url).api_key is None


def test_the_deployed_flows_take_no_url() -> None:
    """Anyone allowed to run a deployment with custom parameters could point a URL parameter at a
    host of theirs and collect the block's key: the flows take none (an endpoint with its own key
    is for in-process callers only, and not in the UI's form)."""
    from prefect_failure_insights.flows.batch_insights import batch_insights
    from prefect_failure_insights.flows.on_failure_summary import summarize_failure

    for flow in (summarize_failure, batch_insights):
        properties = flow.parameters.properties
        assert not any("url" in name or "endpoint" in name for name in properties), properties


def test_an_endpoints_key_never_reaches_the_runs_stored_parameters() -> None:
    from prefect_failure_insights.flows.on_failure_summary import summarize_failure

    stored = summarize_failure.serialize_parameters(
        {"flow_run_id": "0b7c2c1e-0000-4000-8000-000000000000",
         "llm_endpoint": LLMEndpoint(url="http://127.0.0.1:8080/v1", api_key="endpoint-key-123")})
    assert "endpoint-key-123" not in str(stored)
