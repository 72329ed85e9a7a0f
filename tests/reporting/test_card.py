"""The artifact and the terminal text: the three answers, the fallback marked as such, secret-free."""

from __future__ import annotations

import re

from prefect_failure_insights.blocks import FailureInsightsSettings

from prefect_failure_insights.analysis.answer import analyze
from prefect_failure_insights.analysis.compose import compose_summary
from prefect_failure_insights.evidence.builder import build_evidence
from prefect_failure_insights.models import Summary
from prefect_failure_insights.defaults import WRAP_WIDTH
from prefect_failure_insights.reporting.card import (
    artifact_description,
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
    assert "Deterministic analysis, no LLM" in md and "No LLM configured" in md
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
    # One traceback: the excerpt names the root error's line instead of showing it again.
    assert md.count("Traceback (most recent call last)") == 1
    assert f"L{summary.evidence.root_error_line} (the root error, shown above)" in md


def test_the_answer_comes_first() -> None:
    """Title, one line of facts, what happened, how to fix it, why: before any evidence or note."""
    md = render_markdown(_fallback_summary())
    lines = md.split("\n")
    assert lines[0].startswith("## ") and "failed" in lines[0]
    assert lines[2].startswith("**THIRD\\_PARTY\\_SYSTEM**") and "confidence" in lines[2] and "task `extract_orders`" in lines[2]
    order = [md.index(h) for h in ("## What happened", "## How to fix it", "## Why it happened", "## Evidence")]
    assert order == sorted(order) and lines.index("### What happened") <= 4
    # The no-LLM note is one line at the end, saying how to add an LLM; nothing about capped confidence.
    assert md.index("Deterministic analysis, no LLM") > md.index("## Evidence")
    assert "llm-credentials" in md.split("\n")[-3] and "capped" not in md
    # Citations are compact references, each cited line quoted once below the answer.
    assert "cites L" not in md and "(quoted above)" not in md
    root = _fallback_summary().evidence.root_error_line
    assert f"L{root}" in md[md.index("## What happened"):md.index("## How to fix it")]
    assert md.count(f"- L{root}: ") == 1
    assert f"(L{root})" not in md[md.index("## How to fix it"):md.index("## Cited lines")]  # said once, above


def test_long_evidence_lines_are_wrapped_not_cut() -> None:
    """A fenced block in the Prefect UI clips at the card's edge: every character must still be there."""
    summary = _fallback_summary()
    long = "Processed " + " ".join(f"field_{i}=value_{i}" for i in range(60)) + " END_OF_LINE" + "x" * 300
    text = summary.evidence.text + f"\nL9999 02:00:01 INFO {long}"
    summary = summary.model_copy(update={"evidence": summary.evidence.model_copy(update={"text": text})})
    md = render_markdown(summary)
    fenced = [ln for block in md.split("```")[1::2] for ln in block.split("\n")]
    assert max(len(ln) for ln in fenced) <= WRAP_WIDTH
    joined = "".join(ln.removeprefix("  ↪ ") for ln in fenced)
    assert "".join(long.split()) in "".join(joined.split())


def test_the_artifacts_tab_description_leads_with_the_task_and_error() -> None:
    description = artifact_description(_fallback_summary())
    assert description.startswith("extract") and "503" in description and "THIRD_PARTY_SYSTEM" in description
    assert len(description) <= 500 and "(no LLM)" in description


def _decided(verdict: str, rule: str, reason: str, *, attempt: int = 1, run_count: int = 1) -> Summary:
    from prefect_failure_insights.models import RetryDecision

    summary = _fallback_summary()
    decision = RetryDecision(decision=verdict, rule=rule, reason=reason, transience="PERMANENT", attempt=attempt,
                             retries=1 if verdict == "retried" else 0, max_retries=2)
    return summary.model_copy(update={"retry": decision,
                                      "run": summary.run.model_copy(update={"run_count": run_count})})


def test_the_card_says_whether_the_failure_was_retried_and_why() -> None:
    """Issue 29: every failure the retry automation sees says on its card whether it was retried,
    and why or why not (the rule, the transience, the count), on the card and in the terminal."""
    retried = _decided("retried", "infra-evicted", "crashed: evicted by the infrastructure (rule infra-evicted)")
    card = render_markdown(retried)
    assert "**Retried automatically** by failure-insights (1 of 2): crashed: evicted by the infrastructure " \
           "(rule infra-evicted)" in card
    assert "Retried automatically (1 of 2): crashed: evicted" in render_text(retried)
    permanent = _decided("not_retried", "not-transient", "its failure is PERMANENT, not TRANSIENT: a retry would "
                         "fail the same way (rule not-transient)")
    card = render_markdown(permanent)
    assert "**Not retried automatically:** its failure is PERMANENT, not TRANSIENT" in card and \
           "(rule not-transient)." in card
    assert "Not retried automatically: its failure is PERMANENT" in render_text(permanent)
    assert "automatically" not in render_markdown(_fallback_summary())  # no decision, no retries: no line


def test_a_decision_on_an_earlier_failure_is_not_shown_as_this_ones() -> None:
    """The run failed again after its retry: the card of the new failure says it was retried before,
    not that this failure was (its own decision comes with its own summary event)."""
    again = _decided("retried", "transient", "its failure is TRANSIENT, THIRD_PARTY_SYSTEM (rule transient)",
                     attempt=1, run_count=2)
    again = again.model_copy(update={"run": again.run.model_copy(update={"auto_retries": 1})})
    card = render_markdown(again)
    assert "(1 of 2)" not in card and "Retried automatically by failure-insights 1 time(s) before this failure" in card
    assert "automatically" not in render_text(again)
