"""Rendering a summary: the markdown artifact, the terminal text and the artifact key."""

from __future__ import annotations

import re

from prefect_failure_insights.defaults import (
    CITED_LINE_CHARS,
    EVIDENCE_LINES_IN_ARTIFACT,
    SUMMARY_ARTIFACT_PREFIX,
)
from prefect_failure_insights.models import Citation, Summary
from prefect_failure_insights.redaction import inert
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
                "failed: run `failure-insights summary create` on this run.")
    if summary.status == "llm":
        cost = f", est. ${usage.cost_usd:.4f}" if usage.cost_usd is not None else ""
        note = f" Note: {md.text(summary.reason)}." if summary.reason else ""
        return (f"Analysis by LLM {md.code(usage.model)} (prompt {md.text(usage.prompt_version)}; "
                f"{usage.tokens:,} tokens{cost}).{note}")
    return f"**Deterministic analysis** (no LLM answer): {md.text(summary.reason or 'no LLM configured')}"


def _cited_lines(summary: Summary, claim: str, cites: list[Citation], shown: set[int]) -> list[str]:
    """Under a claim: each line it cites, quoted short with its number (once per artifact: later
    claims citing it again only name it), and whether the citation held."""
    if not summary.verification.checked:
        return []
    prefix = summary.evidence.line_prefix
    check = next((c for c in summary.verification.claims if c.claim == claim), None)
    out = []
    again = [f"{prefix}{c.line}" for c in cites if c.line in shown and summary.evidence.cited(c.line)]
    if again:
        out.append(f"   - cites {', '.join(again)} (quoted above)")
    for cite in cites:
        block = summary.evidence.cited(cite.line)
        if block is None or cite.line in shown:
            continue
        shown.add(cite.line)
        first = re.sub(rf"^{re.escape(prefix)}\d+ \S+ \S+ (?:\[[^\]]*\] )?", "", block.split("\n", 1)[0])
        shown = first if len(first) <= CITED_LINE_CHARS else first[:CITED_LINE_CHARS - 1] + "…"
        out.append(f"   - {prefix}{cite.line}: {md.code(shown)}")
    if check is not None and not check.verified:
        out.append(f"   - **Unverified:** {md.text('; '.join(check.problems))}")
    return out


def verification_line(summary: Summary) -> str | None:
    """How the citations held, in one line of markdown (None for summaries made before they were checked)."""
    v, a = summary.verification, summary.analysis
    if not v.checked:
        return None
    held = sum(c.verified for c in v.claims)
    capped = (f" Confidence capped at {a.confidence:.0%} (the answer said {v.confidence_capped_from:.0%}): its root "
              "cause cites no evidence line that checks out." if v.confidence_capped_from is not None else "")
    why = f" Confidence {a.confidence:.0%}: {md.text(a.confidence_reason)}." if a.confidence_reason else ""
    return (f"**Evidence status:** {md.text(a.evidence_status)} · **Citations checked:** {held} of {len(v.claims)} "
            f"claims cite evidence lines that were sent and say what is quoted.{why}{capped}")


def similar_line(summary: Summary) -> str | None:
    """"Similar to N earlier failures (flows ...; first seen ..., last seen ...)" with links, or None."""
    sim = summary.similar
    if not sim.count:
        return None
    flows = ", ".join(md.code(f) for f in sim.flows)
    when = "; ".join(x for x in (f"first seen {sim.first_seen:%Y-%m-%d %H:%M} UTC" if sim.first_seen else "",
                                 f"last seen {sim.last_seen:%Y-%m-%d %H:%M} UTC" if sim.last_seen else "") if x)
    links = []
    for other in sim.most_similar:
        url = artifact_url(other.artifact_id)
        label = md.link(other.title, url) if url else md.text(other.title)
        links.append(f"{label} ({md.code(other.flow_name)}, {other.similarity:.0%} similar)")
    return (f"**Similar to {sim.count} earlier failure(s)** (flows {flows}; {when})"
            + (": " + "; ".join(links) if links else "") + ".")


def render_markdown(summary: Summary, url: str | None = None) -> str:
    """The markdown artifact shown on the failed run's page.

    Every text from the run or the LLM is escaped (`reporting.markdown`): it renders as text,
    never as HTML, an image, a link or a new section. The only links are the plugin's own, to the Prefect
    UI: the run's page and similar failures' summaries.
    """
    a = summary.analysis
    facts = [f"**Category:** {md.text(a.category.value)}", f"**Confidence:** {a.confidence:.0%}",
             f"**Transience:** {md.text(a.transience.value)}"]
    if a.failed_task:
        facts.append(f"**Failed task:** {md.code(a.failed_task)}")
    shown: set[int] = set()
    out = [
        f"# Failure summary: {md.text(a.title)}",
        "",
        " · ".join(facts),
        "",
        f"> {status_line(summary)}",
        "",
        *([similar, ""] if (similar := similar_line(summary)) else []),
        "## What happened",
        md.block(a.what_happened),
        *_cited_lines(summary, "what happened", a.citations.what_happened, shown),
        "",
        "## How to fix it",
    ]
    for i, step in enumerate(a.how_to_fix, start=1):
        cites = a.citations.how_to_fix[i - 1] if i <= len(a.citations.how_to_fix) else []
        out += [f"{i}. {md.text(step)}", *_cited_lines(summary, f"fix {i}", cites, shown)]
    out += [
        "",
        "## Why it happened",
        md.block(a.root_cause),
        *_cited_lines(summary, "root cause", a.citations.root_cause, shown),
    ]
    checked = verification_line(summary)
    if checked:
        out += ["", checked]
    if a.open_questions:
        out += ["", "**Open questions:**", *[f"- {md.text(q)}" for q in a.open_questions]]
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
        f"Root error at {ev.line_prefix}{ev.root_error_line}:" if ev.root_error_line else "No root error line found.",
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
    """A plain-text version for the terminal (`failure-insights summary show`): made `inert`, so
    that no escape sequence from a run or a model reaches the terminal."""
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
    v = summary.verification
    if v.checked:
        held = sum(c.verified for c in v.claims)
        lines += [f"Evidence: {a.evidence_status}; citations checked: {held} of {len(v.claims)} claims hold"
                  + (f" (confidence capped from {v.confidence_capped_from:.0%})" if v.confidence_capped_from else ""),
                  *[f"  unverified {c.claim}: {'; '.join(c.problems)}" for c in v.unverified]]
    if a.open_questions:
        lines += ["Open questions:", *[f"  - {q}" for q in a.open_questions]]
    if summary.similar.count:
        lines.append(f"Similar to {summary.similar.count} earlier failure(s) in {', '.join(summary.similar.flows)}")
    return inert("\n".join(lines))


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
