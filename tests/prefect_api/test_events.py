"""The summary event: Prefect's roles for the failed run's resources, a small payload, nothing
secret, nothing that renders as markup in the message it becomes."""

from __future__ import annotations

import asyncio
import json
from uuid import uuid4

from prefect_failure_insights.blocks import FailureInsightsSettings

from prefect_failure_insights.analysis.answer import analyze
from prefect_failure_insights.analysis.compose import compose_summary
from prefect_failure_insights.evidence.builder import build_evidence
from prefect_failure_insights.models import Summary
from prefect_failure_insights.prefect_api.events import summary_event
from prefect_failure_insights.testing.samples import failed_run


def _summary() -> Summary:
    failed, lines = failed_run(secrets=True)
    evidence = build_evidence(failed, lines)
    result = asyncio.run(analyze(failed, evidence, FailureInsightsSettings(), llm=None, no_llm_reason="no LLM"))
    summary = compose_summary(failed, evidence, result)
    run = summary.run.model_copy(update={"flow_id": str(uuid4()), "deployment_id": str(uuid4()),
                                         "deployment": "nightly-orders/prod", "work_pool": "k8s",
                                         "work_pool_id": str(uuid4()), "tags": ["critical", "nightly"]})
    return summary.model_copy(update={"run": run})


def test_related_resources_use_prefects_roles_with_the_failed_run_first() -> None:
    summary = _summary()
    event = summary_event(summary, "created", summarizer_id="s-1")
    assert event.event == "failure-insights.summary.created"
    assert event.resource.id == f"failure-insights.summary.{summary.run.id}"
    roles = [(r.role, r.id) for r in event.related]
    assert roles[0] == ("flow-run", f"prefect.flow-run.{summary.run.id}")
    assert ("flow", f"prefect.flow.{summary.run.flow_id}") in roles
    assert ("deployment", f"prefect.deployment.{summary.run.deployment_id}") in roles
    assert ("work-pool", f"prefect.work-pool.{summary.run.work_pool_id}") in roles
    assert {("tag", "prefect.tag.critical"), ("tag", "prefect.tag.nightly")} <= set(roles)
    assert roles[-1] == ("summarizer", "prefect.flow-run.s-1")  # never a second "flow-run"
    assert [r for r in event.related if r.role == "deployment"][0].name == "prod"
    assert event.resource["failure-insights.final"] == "true"


def test_the_payload_is_small_and_secret_free_whatever_the_summary_holds() -> None:
    summary = _summary()
    huge = "x" * 50_000 + " password=Hunter2Hunter2 "
    analysis = summary.analysis.model_copy(update={"what_happened": huge, "how_to_fix": [huge] * 40})
    run = summary.run.model_copy(update={"name": "run token=ghp_" + "A" * 36, "tags": [f"t{i}" for i in range(300)]})
    event = summary_event(summary.model_copy(update={"analysis": analysis, "run": run}), "updated")
    text = event.model_dump_json()
    assert len(text) < 12_000, len(text)
    assert "Hunter2Hunter2" not in text and "ghp_" + "A" * 36 not in text
    assert len(event.payload["how_to_fix"]) == 5 and len(event.payload["what_happened"]) <= 600
    assert sum(r.role == "tag" for r in event.related) == 20
    assert "Sup3rS3cret" not in json.dumps(event.payload)


def test_markup_from_the_run_or_the_llm_cannot_render_in_the_message() -> None:
    summary = _summary()
    analysis = summary.analysis.model_copy(update={
        "title": "<script>alert(1)</script> @channel [x](https://attacker.example)",
        "how_to_fix": ["![img](https://attacker.example/p.png) <!here>"]})
    payload = summary_event(summary.model_copy(update={"analysis": analysis}), "updated").payload
    text = payload["title"] + " ".join(payload["how_to_fix"])
    for live in ("<script>", "@channel", "](https://", "![", "<!here>"):
        assert live not in text, live
    assert "&lt;script&gt;" in text and "`https://attacker.example`" in text


def test_a_state_name_of_the_runs_own_is_inert_in_the_event() -> None:
    """Issue 25: a flow may return ``Failed(name=...)``; the name reaches the event, the row and the
    notification, never a terminal escape."""
    from prefect_failure_insights.models import FlowRunInfo

    run = FlowRunInfo(id="r", name="n", flow_name="f", state="Failed\x1b]0;owned\x07\u202e")
    assert run.state == "Failed"
    summary = _summary()
    # model_copy does not validate: the event's own pass is what stands between them here
    hostile = summary.model_copy(update={"run": summary.run.model_copy(update={
        "state": "Failed\x1b[2J\u202e", "name": "run\x07\u200b"})})
    payload = summary_event(hostile, "created").payload
    assert payload["state"] == "Failed" and payload["flow_run_name"] == "run"


def test_a_retry_decision_has_its_own_event_on_the_summary_with_the_failed_run_related() -> None:
    """Issue 29: the decision is announced as failure-insights.retry.decided, never as a summary
    event (the retry automation listens to those: a decision must not start it again)."""
    from prefect_failure_insights.models import RetryDecision, RetryOutcome
    from prefect_failure_insights.prefect_api.events import decision_event

    summary = _summary()
    decision = RetryDecision(decision="not_retried", rule="not-transient", transience="PERMANENT", attempt=1,
                             retries=0, max_retries=1,
                             reason="its failure is PERMANENT, not TRANSIENT: a retry would fail the same way "
                                    "(rule not-transient)")
    event = decision_event(RetryOutcome(flow_run_id=summary.run.id, decision=decision, recorded="recorded"),
                           summary, retry_flow_run_id="r-1")
    assert event.event == "failure-insights.retry.decided" and not event.event.startswith("failure-insights.summary.")
    assert event.resource.id == f"failure-insights.summary.{summary.run.id}"
    assert event.resource["failure-insights.retry.decision"] == "not_retried"
    assert event.resource["failure-insights.retry.rule"] == "not-transient"
    roles = [(r.role, r.id) for r in event.related]
    assert roles[0] == ("flow-run", f"prefect.flow-run.{summary.run.id}") and ("retry-flow-run", "prefect.flow-run.r-1") in roles
    assert ("deployment", f"prefect.deployment.{summary.run.deployment_id}") in roles
    p = event.payload
    assert (p["decision"], p["retried"], p["rule"], p["transience"], p["attempt"], p["retries"], p["max_retries"]) == (
        "not_retried", False, "not-transient", "PERMANENT", 1, 0, 1)
    assert "PERMANENT, not TRANSIENT" in p["reason"] and len(json.dumps(p)) < 4000
    # Without a stored summary (a stray event), the failed run is still named.
    bare = decision_event(RetryOutcome(flow_run_id=summary.run.id, decision=decision, recorded="no_row"))
    assert [(r.role, r.id) for r in bare.related] == [("flow-run", f"prefect.flow-run.{summary.run.id}")]
