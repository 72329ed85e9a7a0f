"""Rendering a summary: the markdown artifact, the terminal text and the artifact key."""

from __future__ import annotations

import re

from prefect_failure_insights.defaults import (
    CITED_LINE_CHARS,
    EVIDENCE_LINES_IN_ARTIFACT,
    SUMMARY_ARTIFACT_PREFIX,
    WRAP_WIDTH,
)
from prefect_failure_insights.reporting.history import describe_history
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


def plain_task(name: str | None) -> str | None:
    """A task run's name without the 3-character suffix Prefect appends (``transform_orders-02c`` ->
    ``transform_orders``): the task is what a reader knows; the suffix only tells runs apart."""
    return re.sub(r"-[0-9a-f]{3}$", "", name) if name else name


def facts_line(summary: Summary) -> str:
    """Category, confidence, transience and the failed task, in one line of markdown."""
    a = summary.analysis
    facts = [f"**{md.text(a.category.value)}**", f"confidence {a.confidence:.0%}",
             md.text(a.transience.value.lower())]
    if a.failed_task:
        facts.append(f"task {md.code(plain_task(a.failed_task))}")
    return " · ".join(facts)


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
    return (f"Deterministic analysis, no LLM ({md.text(summary.reason or 'none configured')}). Add one: save an "
            "`llm-credentials` block named `default`, or set `OPENAI_API_KEY` for `failure-insights serve`.")


def logs_line(summary: Summary) -> str | None:
    """What a summary made before the run's last log records were stored says of that (None otherwise)."""
    if summary.evidence.logs_complete or summary.status == "provisional":
        return None
    return ("Logs incomplete: this summary was made before the run's last log records were stored (Prefect "
            "ships logs in batches, sometimes a minute late); it is made again, in place, when they are.")


def _refs(summary: Summary, claim: str, cites: list[Citation], quoted: dict[int, str], *, text: str = "",
          same_as: str = "") -> str:
    """A claim's citations as compact inline references (``(L12, L15)``), each cited line remembered
    to be quoted once below the answer; a citation that did not check out is said so. Not repeated
    when the claim's ``text`` names them already or they are ``same_as`` the claim before (a fix step
    resting on the same lines as what happened)."""
    if not summary.verification.checked:
        return ""
    prefix = summary.evidence.line_prefix
    refs = []
    for cite in cites:
        block = summary.evidence.cited(cite.line)
        if block is None:
            continue
        if cite.line not in quoted:
            first = re.sub(rf"^{re.escape(prefix)}\d+ \S+ \S+ (?:\[[^\]]*\] )?", "", block.split("\n", 1)[0])
            quoted[cite.line] = first if len(first) <= CITED_LINE_CHARS else first[:CITED_LINE_CHARS - 1] + "…"
        refs.append(f"{prefix}{cite.line}")
    check = next((c for c in summary.verification.claims if c.claim == claim), None)
    # Checked for a model's answer; the deterministic analysis cites only what it found.
    unverified = (f" *(unverified: {md.text('; '.join(check.problems))})*"
                  if check and not check.verified and summary.status == "llm" else "")
    shown = f" ({', '.join(refs)})" if refs else ""
    if refs and (shown == same_as or all(re.search(rf"\b{ref}\b", text) for ref in refs)):
        shown = ""
    return shown + unverified


def verification_line(summary: Summary) -> str | None:
    """How the citations held, in one line of markdown: only for an LLM's answer (the deterministic
    analysis cites its own root error line; there is nothing to check or cap)."""
    v, a = summary.verification, summary.analysis
    if not v.checked or summary.status != "llm":
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
    said = describe_history(sim.history)
    how = f" Found by wording and by embeddings ({md.code(sim.method.split(':', 1)[1])})." \
        if sim.method.startswith("lexical+embeddings:") else ""
    return (f"**Similar to {sim.count} earlier failure(s)** (flows {flows}; {when})"
            + (": " + "; ".join(links) if links else "") + "." + how
            + (f"\n\n**What ended them:** {md.text(said)}" if said else ""))


def retry_line(summary: Summary) -> str | None:
    """What the retry automation decided on this failure ("Retried automatically (1 of 2): ..." or
    "Not retried automatically: ..."), or, without a decision on it, how often the run was retried
    automatically before; None when neither applies."""
    d, run = summary.retry, summary.run
    if d.decision is not None and d.attempt == run.run_count:
        if d.retried:
            return (f"**Retried automatically** by failure-insights ({d.retries} of {d.max_retries}): "
                    f"{md.text(d.reason or '')} (see the run's state history).")
        return f"**Not retried automatically:** {md.text(d.reason or '')}."
    if run.auto_retries:
        return (f"Retried automatically by failure-insights {run.auto_retries} time(s) before this failure (see the "
                "run's state history).")
    return None


def wrap_lines(text: str, width: int = WRAP_WIDTH) -> str:
    """Every line at most ``width`` characters, a longer one continued on the next lines after ``↪``
    (nothing cut: a fenced block in the Prefect UI does not wrap, it clips at the card's edge)."""
    out = []
    for line in text.split("\n"):
        while len(line) > width:
            cut = line.rfind(" ", width // 2, width)
            cut = cut if cut > 0 else width
            out.append(line[:cut])
            line = "  ↪ " + line[cut:]
        out.append(line)
    return "\n".join(out)


def _same_traceback_named(text: str, root: str, at: str) -> str:
    """``text`` with every other traceback that ends in the root error's exception line (the flow
    re-raising the task's exception logs it again), or that the evidence cut before its exception
    line, named instead of shown."""
    def exception_line(block: list[str]) -> str | None:
        ends = [ln.strip() for ln in block if ln.startswith(" " * 8) and not ln.startswith(" " * 9)
                and not ln.strip().startswith(("Traceback", "For more information", "["))]
        return ends[-1] if ends else None

    root_lines = root.split("\n")
    wanted = exception_line(root_lines[1:])
    if wanted is None:
        return text
    out: list[str] = []
    block: list[str] = []

    def flush() -> None:
        # The same exception, or a traceback the evidence cut before its exception line.
        if block and block[0].strip().startswith("Traceback") and exception_line(block) in (wanted, None):
            out.append(f"        (the same traceback as {at}, shown above)")
        else:
            out.extend(block)
        block.clear()

    for line in text.split("\n"):
        if line.startswith(" " * 8):
            block.append(line)
            continue
        flush()
        out.append(line)
    flush()
    return "\n".join(out)


def _excerpt(summary: Summary, root: str | None) -> str:
    """The evidence excerpt in log order, the root error's block (shown above it) named only."""
    ev = summary.evidence
    text = ev.text
    if root:
        at = f"{ev.line_prefix}{ev.root_error_line}"
        text = text.replace(root, f"{at} (the root error, shown above)", 1)
        text = _same_traceback_named(text, root, at)
    lines = text.split("\n")
    shown = "\n".join(lines[:EVIDENCE_LINES_IN_ARTIFACT])
    if len(lines) > EVIDENCE_LINES_IN_ARTIFACT:
        shown += f"\n... {len(lines) - EVIDENCE_LINES_IN_ARTIFACT} more lines of evidence in the database row"
    return wrap_lines(shown)


def render_markdown(summary: Summary, url: str | None = None) -> str:
    """The markdown artifact shown on the failed run's page: the answer first (title, one line of
    facts, what happened, how to fix it, why), then the lines it cites, each quoted once, the root
    error, the log excerpt, and how the summary was made.

    Every text from the run or the LLM is escaped (`reporting.markdown`): it renders as text,
    never as HTML, an image, a link or a new section. The only links are the plugin's own, to the Prefect
    UI: the run's page and similar failures' summaries.
    """
    a = summary.analysis
    quoted: dict[int, str] = {}
    logs = logs_line(summary)
    notes = [line for line in (status_line(summary) if summary.status == "provisional" else None,
                               f"**{logs}**" if logs else None) if line]
    out = [
        f"## {md.text(a.title)}",
        "",
        facts_line(summary),
        "",
        *[x for note in notes for x in (f"> {note}", "")],
        "### What happened",
        md.block(a.what_happened) + _refs(summary, "what happened", a.citations.what_happened, quoted,
                                           text=a.what_happened),
        "",
        "### How to fix it",
    ]
    first = _refs(summary, "what happened", a.citations.what_happened, {})
    for i, step in enumerate(a.how_to_fix, start=1):
        cites = a.citations.how_to_fix[i - 1] if i <= len(a.citations.how_to_fix) else []
        out.append(f"{i}. {md.text(step)}{_refs(summary, f'fix {i}', cites, quoted, text=step, same_as=first)}")
    out += [
        "",
        "### Why it happened",
        md.block(a.root_cause) + _refs(summary, "root cause", a.citations.root_cause, quoted, text=a.root_cause,
                                       same_as=first),
    ]
    if a.additional_answers:
        out += ["", "### Answers to your questions", *[f"- {md.text(ans)}" for ans in a.additional_answers]]
    if a.open_questions:
        out += ["", "**Open questions:**", *[f"- {md.text(q)}" for q in a.open_questions]]
    if similar := similar_line(summary):
        out += ["", similar]
    run, ev = summary.run, summary.evidence
    prefix = ev.line_prefix
    if quoted:
        out += ["", "### Cited lines", *[f"- {prefix}{line}: {md.code(text)}" for line, text in sorted(quoted.items())]]
    if checked := verification_line(summary):
        out += ["", checked]
    root = ev.cited(ev.root_error_line) if ev.root_error_line else None
    out += ["", "### Evidence"]
    out += [f"Root error ({prefix}{ev.root_error_line}):", md.fence(wrap_lines(root)), ""] if root else \
        ["No root error line found.", ""]
    out += [
        f"The log excerpt, in log order ({ev.redaction_count} secret(s) redacted before analysis; about "
        f"{ev.tokens} tokens of evidence):",
        "",
        md.fence(_excerpt(summary, root)),
        "",
        "---",
    ]
    run_ref = md.link(run.name, url) if url else md.code(run.name)
    meta = [f"Run {run_ref} of flow {md.code(run.flow_name)}", f"state {md.text(run.state)}"]
    if run.deployment:
        meta.append(f"deployment {md.code(run.deployment)}")
    if run.work_pool:
        meta.append(f"work pool {md.code(run.work_pool)}")
    if a.tags:
        meta.append("tags: " + ", ".join(md.code(t) for t in a.tags))
    out += [" · ".join(meta), ""]
    if retried := retry_line(summary):
        out += [retried, ""]
    if summary.delivery.regenerated:
        when = f" at {summary.delivery.updated_at:%Y-%m-%d %H:%M:%S} UTC" if summary.delivery.updated_at else ""
        out += [f"Regenerated{when}: this supersedes the earlier summary of this run.", ""]
    if summary.status != "provisional":
        out += [status_line(summary), ""]
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
        + (f", failed task: {plain_task(a.failed_task)}" if a.failed_task else ""),
        _plain_status(summary),
        *([logs] if (logs := logs_line(summary)) else []),
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
    if v.checked and summary.status == "llm":  # a model's answer is checked; the deterministic one cites itself
        held = sum(c.verified for c in v.claims)
        lines += [f"Evidence: {a.evidence_status}; citations checked: {held} of {len(v.claims)} claims hold"
                  + (f" (confidence capped from {v.confidence_capped_from:.0%})" if v.confidence_capped_from else ""),
                  *[f"  unverified {c.claim}: {'; '.join(c.problems)}" for c in v.unverified]]
    if a.open_questions:
        lines += ["Open questions:", *[f"  - {q}" for q in a.open_questions]]
    if summary.similar.count:
        lines.append(f"Similar to {summary.similar.count} earlier failure(s) in {', '.join(summary.similar.flows)}")
        if said := describe_history(summary.similar.history):
            lines.append(f"What ended them: {said}")
    if (d := summary.retry).decision is not None and d.attempt == summary.run.run_count:
        lines.append(f"Retried automatically ({d.retries} of {d.max_retries}): {d.reason}" if d.retried
                     else f"Not retried automatically: {d.reason}")
    return inert("\n".join(lines))


def artifact_description(summary: Summary) -> str:
    """The artifact's one-line description (what the Artifacts tab lists, at most 500 characters):
    the task and the error first, then the category; escaped like the artifact."""
    a = summary.analysis
    task = plain_task(a.failed_task)
    lead = a.title if not task or task in a.title else f"{task}: {a.title}"
    suffix = f" · {a.category.value}" + ("" if summary.status == "llm" else " (no LLM)")
    return (md.text(lead)[: 500 - len(suffix)].rstrip("\\") + suffix)


def _plain_status(summary: Summary) -> str:
    """`status_line` for a terminal: the same facts, no markdown."""
    seen, usage = summary.recurrence, summary.usage
    if seen.cache_hit:
        return f"Same failure as run {seen.same_as_run_id}: the analysis by {usage.model} is reused, no LLM call."
    if summary.status == "llm":
        note = f" Note: {summary.reason}." if summary.reason else ""
        return f"Analysis by LLM {usage.model} (prompt {usage.prompt_version}; {usage.tokens:,} tokens).{note}"
    return f"Deterministic analysis (no LLM answer): {summary.reason or 'no LLM configured'}"
