"""The artifact and the terminal text: the three answers, the fallback marked as such, secret-free."""

from __future__ import annotations

import re

from prefect_failure_insights.blocks import FailureInsightsSettings

from prefect_failure_insights.analysis.answer import analyze
from prefect_failure_insights.analysis.compose import compose_summary
from prefect_failure_insights.evidence.builder import build_evidence
from prefect_failure_insights.models import Summary
from prefect_failure_insights.reporting.card import (
    artifact_key,
    render_markdown,
    render_text,
)
from prefect_failure_insights.testing.samples import failed_run


def _fallback_summary() -> Summary:
    import asyncio

    failed, lines = failed_run(secrets=True)
    evidence = build_evidence(failed, lines)
    result = asyncio.run(analyze(failed, evidence, FailureInsightsSettings(), llm=None,
                                 no_llm_reason="No LLM configured: create an llm-credentials block"))
    return compose_summary(failed, evidence, result)


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
    assert "(<http://127.0.0.1:4200/runs/flow-run/x>)" in md


def test_text_rendering_is_plain() -> None:
    text = render_text(_fallback_summary())
    assert "What happened:" in text and "**" not in text


def test_the_artifact_shows_the_root_error_with_its_traceback_first() -> None:
    summary = _fallback_summary()
    md = render_markdown(summary)
    root = summary.evidence.cited(summary.evidence.root_error_line)
    assert root and "Traceback" in root
    evidence = md[md.index("## Evidence"):]
    assert evidence.index(root.split("\n")[-1]) < evidence.index("The log excerpt, in log order")
    assert "**Transience:**" in md
