"""Answer validation and the settings block's scope rules."""

from __future__ import annotations

import pytest
from prefect_failure_insights.blocks import FailureInsightsSettings, LLMCredentials
from pydantic import ValidationError

from prefect_failure_insights.models import (
    Category,
    FailureAnalysis,
    FlowRunInfo,
    parse_category,
)


def _answer(**kw) -> dict:
    base = {"title": "t", "what_happened": "w", "how_to_fix": ["f"], "root_cause": "r",
            "category": "THIRD_PARTY_SYSTEM", "confidence": 0.5}
    return {**base, **kw}


@pytest.mark.parametrize("spelling,expected", [
    ("third-party system", Category.THIRD_PARTY_SYSTEM),
    ("Input_Data_Quality", Category.INPUT_DATA_QUALITY),
    ("infrastructure", Category.WORKFLOW_ENGINE),
    ("unknown", Category.UNKNOWN),
])
def test_category_spellings_are_mapped(spelling: str, expected: Category) -> None:
    assert parse_category(spelling) is expected


def test_category_outside_the_taxonomy_is_rejected() -> None:
    with pytest.raises(ValidationError, match="COSMIC"):
        FailureAnalysis.model_validate(_answer(category="COSMIC_RAYS"))


def test_answer_normalisation() -> None:
    a = FailureAnalysis.model_validate(_answer(confidence=85, how_to_fix="1. Retry\n2. Page the vendor",
                                               title="x" * 300, tags=None))
    assert a.confidence == 0.85
    assert a.how_to_fix == ["Retry", "Page the vendor"]
    assert len(a.title) == 120 and a.tags == []
    with pytest.raises(ValidationError):
        FailureAnalysis.model_validate(_answer(how_to_fix=[]))


def _run(**kw) -> FlowRunInfo:
    base = {"id": "r", "name": "n", "flow_name": "etl-orders", "state": "Failed",
            "deployment": "etl-orders/prod", "work_pool": "k8s", "tags": ["prod", "team-a"]}
    return FlowRunInfo(**{**base, **kw})


def test_scope_defaults_to_everything() -> None:
    assert FailureInsightsSettings().skip_reason(_run()) is None


@pytest.mark.parametrize("settings,in_scope", [
    ({"include_tags": ["prod"]}, True),
    ({"include_tags": ["staging"]}, False),
    ({"exclude_tags": ["team-*"]}, False),
    ({"include_flows": ["etl-*"]}, True),
    ({"exclude_flows": ["etl-orders"]}, False),
    ({"include_deployments": ["prod"]}, True),
    ({"include_deployments": ["etl-orders/prod"]}, True),
    ({"exclude_deployments": ["etl-orders/prod"]}, False),
    ({"include_work_pools": ["ecs"]}, False),
    ({"include_tags": ["prod"], "include_work_pools": ["ecs"]}, False),
    ({"enabled": False}, False),
])
def test_scope_rules(settings: dict, in_scope: bool) -> None:
    reason = FailureInsightsSettings(**settings).skip_reason(_run())
    assert (reason is None) is in_scope, reason


def test_llm_credentials_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    assert LLMCredentials.from_env() is None
    monkeypatch.setenv("FAILURE_INSIGHTS_LLM_URL", "http://127.0.0.1:11434/v1")
    monkeypatch.setenv("FAILURE_INSIGHTS_LLM_MODEL", "llama3.1:8b")
    creds = LLMCredentials.from_env()
    assert creds.base_url == "http://127.0.0.1:11434/v1" and creds.model == "llama3.1:8b"
    assert creds.api_key is None
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-abcdefghijklmnopqrstuvwxyz")
    assert "abcdefghij" not in repr(LLMCredentials.from_env())
