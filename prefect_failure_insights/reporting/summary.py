"""Rendering a summary: the markdown artifact, the terminal text and the artifact key."""

from __future__ import annotations

import re

from prefect_failure_insights.defaults import (
    EVIDENCE_LINES_IN_ARTIFACT,
    SUMMARY_ARTIFACT_PREFIX,
)
from prefect_failure_insights.models import Summary


def run_url(flow_run_id: str) -> str | None:
    """The failed run's page in the Prefect UI, when the UI address is known."""
    from prefect.settings import get_current_settings

    base = get_current_settings().ui_url
    return f"{str(base).rstrip('/')}/runs/flow-run/{flow_run_id}" if base else None


def artifact_key(flow_name: str) -> str:
    """An artifact key in Prefect's alphabet (``[a-z0-9-]``) derived from the flow name.

    All summaries of one flow form one artifact collection, newest first.

    Example:
        >>> artifact_key("ETL: Daily_Orders")
        'failure-summary-etl-daily-orders'
    """
    slug = re.sub(r"[^a-z0-9]+", "-", flow_name.lower()).strip("-")[:60].strip("-")
    return f"{SUMMARY_ARTIFACT_PREFIX}-{slug or 'flow'}"


def _fence(text: str) -> str:
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}text\n{text}\n{fence}"


def status_line(summary: Summary) -> str:
    """How the analysis was made, in one line."""
    seen, usage = summary.recurrence, summary.usage
    if seen.cache_hit:
        first = f"first seen {seen.first_seen:%Y-%m-%d %H:%M} UTC, " if seen.first_seen else ""
        count = f"{seen.occurrences} occurrences" if seen.occurrences else "seen before"
        return (f"Same failure as run `{seen.same_as_run_id}` ({first}{count}): the analysis by "
                f"`{usage.model}` is reused, no LLM call.")
    if summary.status == "llm":
        cost = f", est. ${usage.cost_usd:.4f}" if usage.cost_usd is not None else ""
        return f"Analysis by LLM `{usage.model}` (prompt {usage.prompt_version}; {usage.tokens:,} tokens{cost})."
    return f"**Deterministic analysis** (no LLM answer): {summary.reason or 'no LLM configured'}"


def render_markdown(summary: Summary, url: str | None = None) -> str:
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
    run, ev = summary.run, summary.evidence
    evidence_lines = ev.text.split("\n")
    shown = "\n".join(evidence_lines[:EVIDENCE_LINES_IN_ARTIFACT])
    if len(evidence_lines) > EVIDENCE_LINES_IN_ARTIFACT:
        shown += f"\n... {len(evidence_lines) - EVIDENCE_LINES_IN_ARTIFACT} more lines of evidence in the database row"
    run_ref = f"[{run.name}]({url})" if url else f"`{run.name}`"
    meta = [f"Run {run_ref} of flow `{run.flow_name}`", f"state {run.state}"]
    if run.deployment:
        meta.append(f"deployment `{run.deployment}`")
    if run.work_pool:
        meta.append(f"work pool `{run.work_pool}`")
    if a.tags:
        meta.append("tags: " + ", ".join(f"`{t}`" for t in a.tags))
    out += [
        "",
        "## Evidence",
        f"Root error at L{ev.root_error_line}." if ev.root_error_line else "No root error line found.",
        f"{ev.redaction_count} secret(s) redacted before analysis; about {ev.tokens} tokens of evidence.",
        "",
        _fence(shown),
        "",
        "---",
        " · ".join(meta),
    ]
    if summary.delivery.regenerated:
        when = f" at {summary.delivery.updated_at:%Y-%m-%d %H:%M:%S} UTC" if summary.delivery.updated_at else ""
        out.append(f"Regenerated{when}: this supersedes the earlier summary of this run.")
    out.append("Made by prefect-failure-insights.")
    return "\n".join(out)


def render_text(summary: Summary) -> str:
    """A plain-text version for the terminal (`failure-insights show`)."""
    a = summary.analysis
    lines = [
        a.title,
        f"run: {summary.run.name} ({summary.run.id}), flow {summary.run.flow_name}, {summary.run.state}",
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


def artifact_description(summary: Summary) -> str:
    """The artifact's one-line description (at most 500 characters)."""
    a = summary.analysis
    text = f"{a.category.value}: {a.title}" + ("" if summary.status == "llm" else " (deterministic analysis)")
    return text[:500]
