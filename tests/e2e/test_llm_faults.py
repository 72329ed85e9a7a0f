"""Fault injection, end to end: a failing pipeline, the served summarizer, a misbehaving LLM.

Every fault must end in an artifact on the failed run and a row in the database
(LLM answer or deterministic fallback, with the reason), a Completed summarizer, and a
bounded number of requests to the LLM: no crash, no loop. The `default` LLM block of
the e2e system has ``timeout=3`` and ``max_retries=1``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from prefect_failure_insights.reporting import markdown as md
from prefect_failure_insights.blocks import LLMCredentials

from prefect_failure_insights.models import Category
from prefect_failure_insights.testing.prefect_server import free_port

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Fault:
    name: str
    script: tuple[str, ...] = ()  # behaviours for the first requests
    default: str = "ok"  # then this one, for every request after
    status: str = "fallback"
    reason: str | None = None  # in the row's reason
    requests: int = 2  # requests the test server saw for the run


FAULTS = [
    # Each 500 is first read as a refusal of json_schema (llama.cpp answers that way), so a
    # 500 outage costs one probe request more: json_schema, then json_object twice (one retry).
    Fault("http-500", default="500", reason="HTTP 500", requests=3),
    Fault("rate-limited-then-ok", script=("429",), status="llm", requests=2),
    Fault("slow-past-timeout", default="slow", reason="did not answer within 3s"),
    Fault("truncated-json", default="truncated", reason="cut off at the token limit"),
    Fault("wrong-schema", default="wrong_schema", reason="does not match the schema"),
    Fault("empty-choices", default="empty_choices", reason="no choices"),
    Fault("broken-body", default="broken_response", reason="unreadable response"),
    Fault("invalid-json-once-then-repaired", script=("invalid_json",), status="llm"),
    Fault("unknown-category-then-repaired", script=("unknown_category",), status="llm"),
    Fault("unknown-category-always", default="unknown_category", reason="COSMIC_RAYS"),
]


def _requests_for(e2e, run_id: str) -> list[dict]:
    return [r for r in e2e.fake.requests if run_id in json.dumps(r["body"])]


def _assert_delivered(e2e, run_id: str, status: str):
    summary = e2e.wait_for_row(e2e.sqlite_engine(), run_id)
    assert summary.status == status, summary.reason
    assert summary.analysis.category in set(Category)  # never an invented category
    artifacts = e2e.summary_artifacts(run_id)
    assert len(artifacts) == 1
    if status == "fallback":
        assert "Deterministic analysis" in artifacts[0].data and md.text(summary.reason) in artifacts[0].data
    runs = e2e.wait_for_summarizers_done(run_id)
    assert [r.state.type.value for r in runs] == ["COMPLETED"]
    return summary


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_every_llm_fault_ends_in_a_delivered_summary(e2e, fault: Fault) -> None:
    e2e.fake.retry_after = "1"
    e2e.fake.slow_seconds = 5.0
    e2e.fake.default = fault.default
    e2e.fake.script(*fault.script)
    run_id = e2e.run_pipeline("vendor")

    summary = _assert_delivered(e2e, run_id, fault.status)
    if fault.reason:
        assert fault.reason in summary.reason
    seen = _requests_for(e2e, run_id)
    assert len(seen) == fault.requests
    if fault.status == "llm":
        assert summary.usage.prompt_tokens and summary.usage.completion_tokens and summary.usage.model == "fake-model"
        assert summary.usage.latency_ms > 0 and summary.usage.prompt_version
    if fault.name == "rate-limited-then-ok":  # Retry-After: 1 was honoured
        assert seen[1]["at"] - seen[0]["at"] >= 0.95


def test_connection_refused_ends_in_a_fallback_summary(e2e) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    e2e.save_block(LLMCredentials(base_url=dead, model="fake-model", timeout=3, max_retries=1), "default")
    try:
        run_id = e2e.run_pipeline("vendor")
        summary = _assert_delivered(e2e, run_id, "fallback")
        assert "could not connect" in summary.reason and "is it running?" in summary.reason
    finally:
        e2e.save_block(LLMCredentials(base_url=e2e.fake.url, model="fake-model", timeout=3, max_retries=1),
                       "default")


def test_a_rejected_key_is_not_retried_and_says_so(e2e) -> None:
    e2e.fake.default = "401"
    run_id = e2e.run_pipeline("vendor")
    summary = _assert_delivered(e2e, run_id, "fallback")
    assert "rejected the API key" in summary.reason
    assert len(_requests_for(e2e, run_id)) == 1
