"""Rendering a summary: the markdown artifact, the terminal text and the artifact key."""

from __future__ import annotations

import re

from prefect_failure_insights.defaults import (
    EVIDENCE_LINES_IN_ARTIFACT,
    SUMMARY_ARTIFACT_PREFIX,
)
from prefect_failure_insights.models import Summary
from prefect_failure_insights.reporting import markdown as md


def _ui(path: str) -> str | None:
    """``path`` in the Prefect UI, when the UI address is known."""
    from prefect.settings import get_current_settings

    base = get_current_settings().ui_url
    return f"{str(base).rstrip('/')}/{path}" if base else None


def run_url(flow_run_id: str) -> str | None:
    """The failed run's page in the Prefect UI, when the UI address is known."""
    return _ui(f"runs/flow-run/{flow_run_id}")


def artifact_url(artifact_id: str | None) -> str | None:
    """An artifact's page in the Prefect UI (the run page's Artifacts tab cannot be linked to)."""
    return _ui(f"artifacts/artifact/{artifact_id}") if artifact_id else None


def artifact_key(flow_name: str) -> str:
    """An artifact key in Prefect's alphabet (``[a-z0-9-]``) derived from the flow name.

    All summaries of one flow form one artifact collection, newest first.

    Example:
        >>> artifact_key("ETL: Daily_Orders")
        'failure-summary-etl-daily-orders'
    """
    slug = re.sub(r"[^a-z0-9]+", "-", flow_name.lower()).strip("-")[:60].strip("-")
    return f"{SUMMARY_ARTIFACT_PREFIX}-{slug or 'flow'}"


def status_line(summary: Summary) -> str:
    """How the analysis was made, in one line of markdown (every value from a run or an LLM escaped)."""
    seen, usage = summary.recurrence, summary.usage
    if seen.cache_hit:
        first = f"first seen {seen.first_seen:%Y-%m-%d %H:%M} UTC, " if seen.first_seen else ""
        count = f"{seen.occurrences} occurrences" if seen.occurrences else "seen before"
        return (f"Same failure as run {md.code(seen.same_as_run_id)} ({first}{count}): the analysis by "
                f"{md.code(usage.model)} is reused, no LLM call.")
    if summary.status == "provisional":
        return (f"**Provisional**: the deterministic analysis of what was stored when the summarizer started. "
                f"{md.text(summary.reason or '')} If this note stays for more than a few minutes, the final step "
                "failed: run `failure-insights summarize` on this run.")
    if summary.status == "llm":
        cost = f", est. ${usage.cost_usd:.4f}" if usage.cost_usd is not None else ""
        note = f" Note: {md.text(summary.reason)}." if summary.reason else ""
        return (f"Analysis by LLM {md.code(usage.model)} (prompt {md.text(usage.prompt_version)}; "
                f"{usage.tokens:,} tokens{cost}).{note}")
    return f"**Deterministic analysis** (no LLM answer): {md.text(summary.reason or 'no LLM configured')}"


def render_markdown(summary: Summary, url: str | None = None) -> str:
    """The markdown artifact shown on the failed run's page.

    Every text from the run or the LLM is escaped (`reporting.markdown`): it renders as text,
    never as HTML, an image, a link or a new section. The only link is to the run's page.
    """
    a = summary.analysis
    facts = [f"**Category:** {md.text(a.category.value)}", f"**Confidence:** {a.confidence:.0%}",
             f"**Transience:** {md.text(a.transience.value)}"]
    if a.failed_task:
        facts.append(f"**Failed task:** {md.code(a.failed_task)}")
    out = [
        f"# Failure summary: {md.text(a.title)}",
        "",
        " · ".join(facts),
        "",
        f"> {status_line(summary)}",
        "",
        "## What happened",
        md.block(a.what_happened),
        "",
        "## How to fix it",
        *[f"{i}. {md.text(step)}" for i, step in enumerate(a.how_to_fix, start=1)],
        "",
        "## Why it happened",
        md.block(a.root_cause),
    ]
    if a.additional_answers:
        out += ["", "## Answers to your questions", *[f"- {md.text(ans)}" for ans in a.additional_answers]]
    run, ev = summary.run, summary.evidence
    # Priority order: the root error with its traceback first, then the excerpt in log order.
    root = ev.cited(ev.root_error_line) if ev.root_error_line else None
    evidence_lines = ev.text.split("\n")
    shown = "\n".join(evidence_lines[:EVIDENCE_LINES_IN_ARTIFACT])
    if len(evidence_lines) > EVIDENCE_LINES_IN_ARTIFACT:
        shown += f"\n... {len(evidence_lines) - EVIDENCE_LINES_IN_ARTIFACT} more lines of evidence in the database row"
    run_ref = md.link(run.name, url) if url else md.code(run.name)
    meta = [f"Run {run_ref} of flow {md.code(run.flow_name)}", f"state {md.text(run.state)}"]
    if run.deployment:
        meta.append(f"deployment {md.code(run.deployment)}")
    if run.work_pool:
        meta.append(f"work pool {md.code(run.work_pool)}")
    if a.tags:
        meta.append("tags: " + ", ".join(md.code(t) for t in a.tags))
    out += [
        "",
        "## Evidence",
        f"Root error at L{ev.root_error_line}:" if ev.root_error_line else "No root error line found.",
        *([md.fence(root), ""] if root else []),
        f"The log excerpt, in log order ({ev.redaction_count} secret(s) redacted before analysis; about "
        f"{ev.tokens} tokens of evidence):",
        "",
        md.fence(shown),
        "",
        "---",
        " · ".join(meta),
    ]
    if run.auto_retries:
        out.append(f"Retried automatically by failure-insights {run.auto_retries} time(s): a transient failure "
                   "(see the run's state history).")
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
        f"category: {a.category.value} (confidence {a.confidence:.0%}), {a.transience.value.lower()}"
        + (f", failed task: {a.failed_task}" if a.failed_task else ""),
        _plain_status(summary),
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
    """The artifact's one-line description (at most 500 characters), escaped like the artifact."""
    a = summary.analysis
    suffix = "" if summary.status == "llm" else " (deterministic analysis)"
    return (md.text(f"{a.category.value}: {a.title}")[: 500 - len(suffix)] + suffix).rstrip("\\")


def _plain_status(summary: Summary) -> str:
    """`status_line` for a terminal: the same facts, no markdown."""
    seen, usage = summary.recurrence, summary.usage
    if seen.cache_hit:
        return f"Same failure as run {seen.same_as_run_id}: the analysis by {usage.model} is reused, no LLM call."
    if summary.status == "llm":
        note = f" Note: {summary.reason}." if summary.reason else ""
        return f"Analysis by LLM {usage.model} (prompt {usage.prompt_version}; {usage.tokens:,} tokens).{note}"
    return f"Deterministic analysis (no LLM answer): {summary.reason or 'no LLM configured'}"
