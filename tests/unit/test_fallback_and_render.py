"""The deterministic analysis and the artifact: useful, marked as such, secret-free."""

from __future__ import annotations

import re

from prefect_failure_insights.models import Category, FailedRun, FlowRunInfo, LogLine, Summary
from prefect_failure_insights.prompts import PROMPT_VERSION
from prefect_failure_insights.tasks.evidence import build_evidence
from prefect_failure_insights.tasks.fallback import deterministic_analysis
from prefect_failure_insights.tasks.render import artifact_key, render_markdown, render_text
from prefect_failure_insights.tasks.rules import classify
from prefect_failure_insights.testing.samples import failed_run


def _fallback_summary() -> Summary:
    failed, lines = failed_run(secrets=True)
    evidence = build_evidence(failed, lines)
    return Summary(
        flow_run_id=failed.run.id, flow_run_name=failed.run.name, flow_name=failed.run.flow_name,
        state="Failed", analysis=deterministic_analysis(evidence, failed), status="fallback",
        reason="No LLM configured: create an llm-credentials block", prompt_version=PROMPT_VERSION,
        evidence=evidence.text, evidence_tokens=evidence.tokens, root_error_line=evidence.root_error_line,
        redaction_count=evidence.redaction_count,
    )


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


def test_artifact_key_is_in_prefects_alphabet() -> None:
    for name in ["ETL: Daily_Orders", "über-flow", "---", "a" * 200]:
        key = artifact_key(name)
        assert re.fullmatch(r"[a-z0-9-]+", key), key
        assert len(key) <= 80


def test_markdown_answers_the_three_questions_and_marks_the_fallback() -> None:
    md = render_markdown(_fallback_summary(), "http://127.0.0.1:4200/runs/flow-run/x")
    for heading in ("## What happened", "## How to fix it", "## Why it happened", "## Evidence"):
        assert heading in md
    assert "**Deterministic analysis**" in md and "No LLM configured" in md
    assert "Sup3rS3cret!" not in md and "[REDACTED:url_password]" in md
    assert "(http://127.0.0.1:4200/runs/flow-run/x)" in md


def test_text_rendering_is_plain() -> None:
    text = render_text(_fallback_summary())
    assert "What happened:" in text and "**" not in text
