"""The deterministic analysis: the failed task, the error and a category, without an LLM."""

from __future__ import annotations

from prefect_failure_insights.analysis.fallback import deterministic_analysis
from prefect_failure_insights.analysis.rules import classify
from prefect_failure_insights.evidence.builder import build_evidence
from prefect_failure_insights.models import Category, FailedRun, FlowRunInfo, LogLine
from prefect_failure_insights.testing.samples import failed_run


def test_fallback_names_the_task_the_error_and_a_category() -> None:
    failed, lines = failed_run()
    analysis = deterministic_analysis(build_evidence(failed, lines), failed)
    assert analysis.failed_task == "extract_orders-3f1"
    assert "503 Service Unavailable" in analysis.what_happened
    assert "L" in analysis.what_happened
    assert analysis.category is Category.THIRD_PARTY_SYSTEM
    assert any("retries" in step for step in analysis.how_to_fix)


def test_fallback_for_an_oom_crash() -> None:
    run = FlowRunInfo(id="r", name="r", flow_name="big-join", state="Crashed", state_type="CRASHED")
    lines = [LogLine(lineno=1, timestamp="2026-11-20T02:00:00+00:00", level=40,
                     message="Container 'prefect-job' terminated: OOMKilled (exit code 137)")]
    failed = FailedRun(run=run)
    analysis = deterministic_analysis(build_evidence(failed, lines), failed)
    assert analysis.category is Category.WORKFLOW_ENGINE
    assert "memory" in " ".join(analysis.how_to_fix).lower()


def test_fallback_with_nothing_to_go_on_is_unknown_but_still_a_summary() -> None:
    failed = FailedRun(run=FlowRunInfo(id="r", name="r", flow_name="f", state="Failed"))
    analysis = deterministic_analysis(build_evidence(failed, []), failed)
    assert analysis.category is Category.UNKNOWN
    assert analysis.how_to_fix


def test_rules_name_themselves() -> None:
    assert classify("requests.exceptions.HTTPError: 429 Client Error: Too Many Requests").classified_by == "rule:rate-limited"
    assert classify("ModuleNotFoundError: No module named 'acme'").category is Category.WORKFLOW_ENGINE
    assert classify("nothing recognisable").category is Category.UNKNOWN
