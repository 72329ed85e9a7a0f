"""Classification: corrections, rules, cache, LLM few-shot; on a real database and a real HTTP test LLM."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone

import pytest
from prefect_failure_insights.blocks import FailureInsightsSettings, LLMCredentials
from prefect_failure_insights.blocks.settings import ClassificationRule
from sqlalchemy import func, select

from prefect_failure_insights.analysis.classifier import Classifier, similar
from prefect_failure_insights.analysis.evaluation import evaluate
from prefect_failure_insights.analysis.fingerprint import error_signature, fingerprint
from prefect_failure_insights.analysis.suggest import pattern_for
from prefect_failure_insights.analysis.taxonomy import Taxonomy
from prefect_failure_insights.models import Correction, ErrorItem
from prefect_failure_insights.store.ledger import daily_usage
from prefect_failure_insights.store.tables import classifications
from prefect_failure_insights.testing.fake_llm import FakeLLM

ODD = "ledger.ReconcileError: reconciliation drift of 12 entries between ledger shards"
VENDOR = "httpx.HTTPStatusError: Server error '503 Service Unavailable' for url 'https://api.x.io/v1/a?page=3'"


def _llm(fake: FakeLLM) -> LLMCredentials:
    return LLMCredentials(base_url=fake.url, model="fake-model", max_retries=0, timeout=3)


def _classify(items, **kwargs):
    classifier = Classifier(kwargs.pop("settings", FailureInsightsSettings(llm_deadline_seconds=5)), **kwargs)
    return asyncio.run(classifier.classify(items)), classifier


def test_the_classification_first_then_llm_once_per_signature(database, fake_llm: FakeLLM) -> None:
    """The model answers a confident error itself; an unsure one goes to the LLM, once per signature."""
    items = [ErrorItem(id=str(i), error_text=ODD.replace("12", str(i))) for i in range(50)]
    items.append(ErrorItem(id="v", error_text=VENDOR))
    results, classifier = _classify(items, llm=_llm(fake_llm), database=database)
    assert len(fake_llm.completions()) == 1  # 50 errors, one signature, one call
    assert {r.classified_by for r in results[:50]} == {"llm"}
    assert results[-1].classified_by.startswith("model:") and results[-1].category == "THIRD_PARTY_SYSTEM"
    assert not results[-1].low_confidence
    assert [r.id for r in results] == [i.id for i in items]  # same order as the input
    assert classifier.usage.llm_calls == 1 and classifier.usage.prompt_tokens > 0
    sent = fake_llm.completions()[0]
    assert sent["response_format"]["json_schema"]["name"] == "failure_classification"

    again, _ = _classify(items[:3], llm=_llm(fake_llm), database=database)  # another batch: the cache answers
    assert {r.classified_by for r in again} == {"cache"} and len(fake_llm.completions()) == 1


def test_a_correction_overrides_rules_and_is_a_few_shot_example(database, fake_llm: FakeLLM) -> None:
    sig = error_signature(VENDOR)
    fix = Correction(fingerprint=fingerprint(sig), signature=sig, error_text=VENDOR, category="WORKFLOW_ENGINE",
                     corrected_by="dana")
    odd = Correction(fingerprint="x" * 32, signature=error_signature(ODD), error_text=ODD,
                     category="INPUT_DATA_QUALITY")
    items = [ErrorItem(id="v", error_text=VENDOR.replace("page=3", "page=9")),
             ErrorItem(id="o", error_text="reconciliation drift detected in shard 7")]
    results, _ = _classify(items, llm=_llm(fake_llm), database=database, corrections=[fix, odd])
    assert results[0].classified_by == "correction" and results[0].category == "WORKFLOW_ENGINE"
    assert "dana" in results[0].reasoning
    messages = fake_llm.completions()[0]["messages"]
    assert messages[1]["content"].startswith("<error-") and "reconciliation drift of 12" in messages[1]["content"]
    assert json.loads(messages[2]["content"])["category"] == "INPUT_DATA_QUALITY"
    assert similar([fix, odd], "drift in the ledger shards")[0] is odd


def test_llm_down_keeps_the_unsure_answer_flagged_and_stops_asking(database, fake_llm: FakeLLM) -> None:
    """Issue 26: low confidence is a flag on the answer, not UNKNOWN; the LLM's failure is said."""
    fake_llm.default = "503"
    items = [ErrorItem(id=str(i), error_text=f"weird failure number {chr(97 + i)}{chr(97 + i)}") for i in range(6)]
    results, classifier = _classify(items, llm=_llm(fake_llm), database=database,
                                    settings=FailureInsightsSettings(max_concurrent_llm_calls=1,
                                                                     llm_deadline_seconds=5))
    assert all(r.low_confidence for r in results)
    assert all("LLM" in r.reasoning for r in results)
    assert classifier.usage.llm_stopped and len(fake_llm.completions()) == 1  # no retries: max_retries=0


def test_an_invented_category_is_repaired_once_then_given_up(database, fake_llm: FakeLLM) -> None:
    fake_llm.script("unknown_category")  # COSMIC_RAYS, then a valid answer to the repair request
    results, _ = _classify([ErrorItem(id="1", error_text=ODD)], llm=_llm(fake_llm), database=database)
    assert results[0].classified_by == "llm" and results[0].category != "UNKNOWN"
    assert "COSMIC_RAYS" in fake_llm.completions()[-1]["messages"][-1]["content"]  # the repair quotes it

    fake_llm.default = "unknown_category"
    weird = ErrorItem(id="2", error_text="strange: the flux capacitor is out of phase")
    results, classifier = _classify([weird], llm=_llm(fake_llm), database=database)
    assert results[0].low_confidence and results[0].classified_by != "llm"
    assert "unusable" in results[0].reasoning
    assert classifier.usage.llm_calls == 1 and classifier.usage.prompt_tokens > 0  # still costs tokens
    with database.engine.connect() as conn:
        spent = conn.execute(select(func.sum(classifications.c.prompt_tokens))
                             .where(classifications.c.category == "UNKNOWN")).scalar()
    assert spent == classifier.usage.prompt_tokens  # the daily budget counts it

    fake_llm.default = "ok"  # the unusable answer did not take the cache slot of a later good one
    _classify([weird], llm=_llm(fake_llm), database=database)
    results, _ = _classify([weird], llm=_llm(fake_llm), database=database)
    assert results[0].classified_by == "cache"


def test_extra_categories_and_rules_from_the_settings() -> None:
    settings = FailureInsightsSettings(
        extra_categories={"SECURITY": "access was denied by our own policies"},
        extra_rules=[ClassificationRule(name="vault-denied", category="security", pattern=r"vault.*permission denied")],
    )
    results, _ = _classify([ErrorItem(id="1", error_text="Vault: permission denied for path secret/etl")],
                           settings=settings)
    assert (results[0].category, results[0].classified_by) == ("SECURITY", "rule:vault-denied")
    assert Taxonomy(settings.extra_categories).parse("third-party system") == "THIRD_PARTY_SYSTEM"
    with pytest.raises(ValueError):
        Taxonomy().parse("COSMIC_RAYS")
    with pytest.raises(ValueError):
        ClassificationRule(name="x", category="SECURITY", pattern="(unclosed")


def test_the_request_names_the_taxonomy_as_an_enum(fake_llm: FakeLLM) -> None:
    """Grammar-constrained servers (llama.cpp) can then write only a category that exists."""
    settings = FailureInsightsSettings(llm_deadline_seconds=5, extra_categories={"SECURITY": "our own policies"})
    _classify([ErrorItem(id="1", error_text=ODD)], settings=settings, llm=_llm(fake_llm))
    fmt = fake_llm.completions()[0]["response_format"]  # json_schema, or json_object + schema
    schema = fmt["json_schema"]["schema"] if "json_schema" in fmt else fmt["schema"]
    assert schema["properties"]["category"]["enum"] == [
        "INPUT_DATA_QUALITY", "THIRD_PARTY_SYSTEM", "WORKFLOW_ENGINE", "SECURITY", "UNKNOWN"]


def test_evaluation_figures() -> None:
    result = evaluate(["A", "A", "B", "B"], ["A", "UNKNOWN", "B", "A"], ["rule:x", "none", "rule:y", "llm"])
    assert result["accuracy"] == 0.5 and result["unknown_rate"] == 0.25
    assert result["answered_precision"] == round(2 / 3, 4) and result["rule_coverage"] == 0.5
    assert result["per_category"]["A"] == {"precision": 0.5, "recall": 0.5, "support": 2}
    assert result["confusion"]["B"]["A"] == 1


def test_suggested_patterns_match_what_they_came_from() -> None:
    import re

    sig = error_signature("reconciliation drift of 12 entries in /data/x.csv at 2026-01-01T00:00:00Z")
    assert re.search(pattern_for(sig), "reconciliation drift of 999 entries in /tmp/y.csv at 2027-02-02T01:01:01Z")


def test_batch_llm_calls_count_against_the_daily_budget(database, fake_llm: FakeLLM) -> None:
    settings = FailureInsightsSettings(daily_token_budget=1, llm_deadline_seconds=5)
    first, _ = _classify([ErrorItem(id="1", error_text="strange thing one")], settings=settings,
                         llm=_llm(fake_llm), database=database)
    assert first[0].classified_by == "llm"
    tokens, _ = daily_usage(database.engine, datetime(2000, 1, 1, tzinfo=timezone.utc))
    assert tokens > 1
    second, classifier = _classify([ErrorItem(id="2", error_text="another odd event")], settings=settings,
                                   llm=_llm(fake_llm), database=database)
    assert second[0].low_confidence and "daily LLM token budget" in second[0].reasoning
    assert len(fake_llm.completions()) == 1 and classifier.usage.llm_stopped
