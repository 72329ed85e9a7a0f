"""Rendering a summary: the markdown artifact, the terminal text and the artifact key."""

from __future__ import annotations

import re

from prefect_failure_insights.models import Summary

ARTIFACT_KEY_PREFIX = "failure-summary"
EVIDENCE_LINES_IN_ARTIFACT = 120


def artifact_key(flow_name: str) -> str:
    """An artifact key in Prefect's alphabet (``[a-z0-9-]``) derived from the flow name.

    All summaries of one flow form one artifact collection, newest first.

    Example:
        >>> artifact_key("ETL: Daily_Orders")
        'failure-summary-etl-daily-orders'
    """
    slug = re.sub(r"[^a-z0-9]+", "-", flow_name.lower()).strip("-")[:60].strip("-")
    return f"{ARTIFACT_KEY_PREFIX}-{slug or 'flow'}"


def _fence(text: str) -> str:
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}text\n{text}\n{fence}"


def status_line(summary: Summary) -> str:
    if summary.cache_hit:
        seen = f"first seen {summary.first_seen:%Y-%m-%d %H:%M} UTC, " if summary.first_seen else ""
        count = f"{summary.occurrences} occurrences" if summary.occurrences else "seen before"
        return (f"Same failure as run `{summary.same_as_run_id}` ({seen}{count}): the analysis by "
                f"`{summary.model}` is reused, no LLM call.")
    if summary.status == "llm":
        cost = f", est. ${summary.cost_usd:.4f}" if summary.cost_usd is not None else ""
        tokens = (summary.prompt_tokens or 0) + (summary.completion_tokens or 0)
        return f"Analysis by LLM `{summary.model}` (prompt {summary.prompt_version}; {tokens:,} tokens{cost})."
    return f"**Deterministic analysis** (no LLM answer): {summary.reason or 'no LLM configured'}"


def render_markdown(summary: Summary, run_url: str | None = None) -> str:
    """The markdown artifact shown on the failed run's page."""
    a = summary.analysis
    facts = [f"**Category:** {a.category.value}", f"**Confidence:** {a.confidence:.0%}"]
    if a.failed_task:
        facts.append(f"**Failed task:** `{a.failed_task}`")
    out = [
        f"# Failure summary: {a.title}",
        "",
        " · ".join(facts),
        "",
        f"> {status_line(summary)}",
        "",
        "## What happened",
        a.what_happened,
        "",
        "## How to fix it",
        *[f"{i}. {step}" for i, step in enumerate(a.how_to_fix, start=1)],
        "",
        "## Why it happened",
        a.root_cause,
    ]
    if a.additional_answers:
        out += ["", "## Answers to your questions", *[f"- {ans}" for ans in a.additional_answers]]
    evidence_lines = summary.evidence.split("\n")
    shown = "\n".join(evidence_lines[:EVIDENCE_LINES_IN_ARTIFACT])
    if len(evidence_lines) > EVIDENCE_LINES_IN_ARTIFACT:
        shown += f"\n... {len(evidence_lines) - EVIDENCE_LINES_IN_ARTIFACT} more lines of evidence in the database row"
    run_ref = f"[{summary.flow_run_name}]({run_url})" if run_url else f"`{summary.flow_run_name}`"
    meta = [
        f"Run {run_ref} of flow `{summary.flow_name}`",
        f"state {summary.state}",
    ]
    if summary.deployment:
        meta.append(f"deployment `{summary.deployment}`")
    if summary.work_pool:
        meta.append(f"work pool `{summary.work_pool}`")
    if a.tags:
        meta.append("tags: " + ", ".join(f"`{t}`" for t in a.tags))
    out += [
        "",
        "## Evidence",
        f"Root error at L{summary.root_error_line}." if summary.root_error_line else "No root error line found.",
        f"{summary.redaction_count} secret(s) redacted before analysis; "
        f"about {summary.evidence_tokens} tokens of evidence.",
        "",
        _fence(shown),
        "",
        "---",
        " · ".join(meta),
    ]
    if summary.regenerated:
        when = f" at {summary.updated_at:%Y-%m-%d %H:%M:%S} UTC" if summary.updated_at else ""
        out.append(f"Regenerated{when}: this supersedes the earlier summary of this run.")
    out.append("Made by prefect-failure-insights.")
    return "\n".join(out)


def render_text(summary: Summary) -> str:
    """A plain-text version for the terminal (`failure-insights show`)."""
    a = summary.analysis
    lines = [
        a.title,
        f"run: {summary.flow_run_name} ({summary.flow_run_id}), flow {summary.flow_name}, {summary.state}",
        f"category: {a.category.value} (confidence {a.confidence:.0%})"
        + (f", failed task: {a.failed_task}" if a.failed_task else ""),
        status_line(summary).replace("**", "").replace("`", ""),
        "",
        "What happened:",
        f"  {a.what_happened}",
        "How to fix it:",
        *[f"  {i}. {s}" for i, s in enumerate(a.how_to_fix, start=1)],
        "Why it happened:",
        f"  {a.root_cause}",
    ]
    if a.additional_answers:
        lines += ["Answers to your questions:", *[f"  - {x}" for x in a.additional_answers]]
    return "\n".join(lines)
