"""The batch report: totals, categories, breakdowns, recurring patterns, trends; and exports.

Pure functions of the classified error rows (`ClassifiedError`), so the same rows always
give the same report.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from prefect_failure_insights.models import BatchMetrics, BatchResult, ClassifiedError, failed_runs
from prefect_failure_insights.redaction import csv_cell, inert
from prefect_failure_insights.reporting import markdown as md
from prefect_failure_insights.reporting.card import plain_task

#: The export's columns: label, and the field of a `ClassifiedError` it shows.
CSV_COLUMNS = [
    ("Error ID", "error.error_id"), ("Run ID", "error.run.id"), ("Run", "error.run.name"),
    ("Flow", "error.run.flow_name"), ("Deployment", "error.run.deployment"), ("Work Pool", "error.run.work_pool"),
    ("Tags", "error.run.tags"), ("Failed Task", "error.failed_task"), ("Failed At", "error.run.end_time"),
    ("Exception Type", "error.exception_type"), ("Error Text", "error.error_text"),
    ("Category", "classification.category"), ("Confidence", "classification.confidence"),
    ("Classified By", "classification.classified_by"), ("Reasoning", "classification.reasoning"),
    ("Signature", "classification.signature"),
]
TOP = 10
#: The table artifact's columns, in order.
TABLE_COLUMNS = ("Failed At", "Category", "Confidence", "Flow", "Run", "Failed Task", "Error Text", "Classified By",
                 "Exception Type", "Deployment", "Work Pool", "Tags", "Run ID", "Error ID")


def value_of(row: ClassifiedError, path: str) -> Any:
    """A row's field by its dotted path (``error.run.flow_name``)."""
    value: Any = row
    for part in path.split("."):
        value = getattr(value, part)
    return value


#: Said once, where the count is shown: what "failed run" means (`models.failed_runs`).
FAILED_RUNS_NOTE = "A failed subflow counts with the run it belongs to."


#: Error texts and patterns in the report: whole up to this many characters (a cell wraps).
PATTERN_CHARS = 300


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _pct(n: int, total: int) -> str:
    return f"{100 * n / total:.1f}%" if total else "0.0%"


def _short(value: Any, limit: int) -> str:
    text = " ".join(("" if value is None else str(value)).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cell(value: Any, limit: int = 120) -> str:
    """A markdown table cell: cut to ``limit`` characters, escaped (text from runs and LLMs)."""
    return md.text(_short(value, limit))


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if isinstance(value, datetime) else _cell(value)


DIMENSIONS = {"flow_name": "error.run.flow_name", "deployment": "error.run.deployment",
              "work_pool": "error.run.work_pool", "tags": "error.run.tags"}


def breakdown(rows: list[ClassifiedError], key: str) -> list[tuple[str, int, Counter]]:
    """(value, errors, categories) by a dimension (``flow_name``, ``deployment``, ``work_pool``,
    ``tags``), largest first; tags count once per tag."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for row in rows:
        found = value_of(row, DIMENSIONS[key])
        values = (found or ["(no tag)"]) if key == "tags" else [found or "(none)"]
        for value in values:
            counts[value][row.category] += 1
    return sorted(((v, sum(c.values()), c) for v, c in counts.items()), key=lambda t: (-t[1], t[0]))


def patterns(rows: list[ClassifiedError]) -> list[dict]:
    """Recurring errors, similar ones together (their group's signature, see
    `analysis.similarity.group_similar`), with counts, first and last seen, category, runs."""
    groups: dict[str, list[ClassifiedError]] = defaultdict(list)
    for row in rows:
        groups[row.classification.group or row.classification.signature or row.error.error_text].append(row)
    out = []
    for sig, members in groups.items():
        seen = [m.error.run.end_time for m in members if m.error.run.end_time]
        out.append({"signature": sig, "count": len(members), "category": members[0].category,
                    "first_seen": min(seen) if seen else None, "last_seen": max(seen) if seen else None,
                    "runs": len({m.error.run.id for m in members}),
                    "flows": sorted({m.error.run.flow_name for m in members})})
    return sorted(out, key=lambda p: (-p["count"], p["signature"]))


def summary(rows: list[ClassifiedError]) -> dict[str, Any]:
    """The figures of a batch, for the JSON export and for trends."""
    categories = Counter(r.category for r in rows)
    return {
        "errors": len(rows),
        "runs": failed_runs(rows),
        "categories": dict(sorted(categories.items())),
        "by_flow": {v: n for v, n, _ in breakdown(rows, "flow_name")},
        "by_deployment": {v: n for v, n, _ in breakdown(rows, "deployment")},
        "by_work_pool": {v: n for v, n, _ in breakdown(rows, "work_pool")},
        "by_tag": {v: n for v, n, _ in breakdown(rows, "tags")},
    }


def _trend(now_n: int, before: int | None) -> str:
    if before is None:
        return ""
    delta = now_n - before
    return f" ({'+' if delta > 0 else ''}{delta} vs previous window)" if delta else " (= previous window)"


def render_report(rows: list[ClassifiedError], metrics: BatchMetrics, title: str,
                  *, previous: list[ClassifiedError] | None = None) -> str:
    """The report artifact (text from runs and LLMs escaped; categories are the taxonomy's own
    names, ``[A-Z0-9_]``). Only figures of the rows: what one execution spent (time, LLM
    tokens) is in the batch's metrics row, so re-running a window reproduces the report."""
    total = len(rows)
    prev = summary(previous) if previous is not None else None
    categories = Counter(r.category for r in rows)
    out = [f"# {md.text(title)}", ""]
    out.append(f"**{_count(total, 'error')}** in **{_count(failed_runs(rows), 'failed run')}**"
               f"{_trend(total, prev['errors'] if prev else None)}. {FAILED_RUNS_NOTE}")
    by = metrics.classified_by
    out.append("Classified by correction: {c}, rules: {r}, LLM: {l}, cache: {k}; unknown: {u}.".format(
        c=by.get("correction", 0), r=by.get("rule", 0), l=by.get("llm", 0), k=by.get("cache", 0),
        u=categories.get("UNKNOWN", 0)))
    if metrics.llm_note:
        out.append(f"LLM note: {md.text(metrics.llm_note)}")
    if metrics.capped:
        out.append(f"**Capped:** only the newest {metrics.runs_queried} failed runs of the window were read "
                   "(`max_runs`).")
    for note in metrics.failed_partitions:
        out.append(f"**Partition failed:** {md.text(note)}")
    # The trend column only when the previous window was reported: an empty column says nothing.
    trend = prev is not None
    out += ["", "## Categories", "", "| Category | Errors | Share |" + (" Trend |" if trend else ""),
            "| --- | ---: | ---: |" + (" --- |" if trend else "")]
    for name, n in categories.most_common():
        cells = f"| {name} | {n} | {_pct(n, total)} |"
        if prev is not None:
            cells += f" {_trend(n, prev['categories'].get(name, 0)).strip(' ()')} |"
        out.append(cells)
    # Columns: numbers and categories first, the one long text last (it wraps; nothing is clipped
    # at the card's edge in the Prefect UI, measured at 1400 px).
    for label, key in (("Flow", "flow_name"), ("Deployment", "deployment"), ("Work pool", "work_pool"),
                       ("Tag", "tags")):
        found = breakdown(rows, key)
        out += ["", f"## By {label.lower()}", "", f"| Errors | Share | {label} | Categories |",
                "| ---: | ---: | --- | --- |"]
        for value, n, cats in found[:TOP]:
            split = ", ".join(f"{c} {k}" for c, k in cats.most_common())
            out.append(f"| {n} | {_pct(n, total)} | {_cell(value, 80)} | {split} |")
        out += _and_more(found[TOP:], f"{label.lower()}s" if label != "Work pool" else "work pools")
    out += ["", "## Top failing pipelines", "", "| Failed runs | Errors | Flow / deployment |", "| ---: | ---: | --- |"]
    pipes: dict[str, set] = defaultdict(set)
    pipe_errors: Counter = Counter()
    for row in rows:
        name = row.error.run.deployment or row.error.run.flow_name
        pipes[name].add(row.error.run.id)
        pipe_errors[name] += 1
    ranked = sorted(pipes, key=lambda p: (-len(pipes[p]), p))
    for name in ranked[:TOP]:
        out.append(f"| {len(pipes[name])} | {pipe_errors[name]} | {_cell(name, 80)} |")
    out += _and_more([(name, pipe_errors[name], None) for name in ranked[TOP:]], "pipelines")
    # Long texts as list items, not table cells: the Prefect UI does not wrap a table's cells, it
    # clips the table at the card's edge (seen at 1400 px: "Category" and "Error" cut).
    out += ["", "## Top recurring errors", ""]
    for p in patterns(rows)[:TOP]:
        seen = _when(p["first_seen"]) if p["first_seen"] == p["last_seen"] else \
            f"{_when(p['first_seen'])} to {_when(p['last_seen'])}"
        flows = ", ".join(_cell(f, 60) for f in p["flows"][:3]) + (f" and {len(p['flows']) - 3} more"
                                                                   if len(p["flows"]) > 3 else "")
        out.append(f"1. **{p['count']}×** {p['category']} · {seen} · {flows}: {_cell(p['signature'], PATTERN_CHARS)}")
    out += ["", "## Errors", "", "Newest first."]
    for row in sorted(rows, key=lambda r: (str(r.error.run.end_time), r.error.error_id), reverse=True)[:200]:
        e, c = row.error, row.classification
        task = f", task {_cell(plain_task(e.failed_task), 60)}" if e.failed_task else ""
        out.append(f"- {_when(e.run.end_time)} · **{c.category}** ({_cell(c.classified_by)}, {c.confidence:.2f}) · "
                   f"{_cell(e.run.flow_name, 60)} / {_cell(e.run.name, 60)}{task}: {_cell(e.error_text, PATTERN_CHARS)}")
    if total > 200:
        out.append(f"\n…and {total - 200} more: export with `failure-insights batch run --format csv`.")
    out += ["", "<details><summary>Reasoning per error</summary>", ""]
    for row in rows[:200]:
        e, c = row.error, row.classification
        where = f"{_cell(e.run.flow_name, 60)} / {_cell(e.run.name, 60)}" + (
            f", task {_cell(plain_task(e.failed_task), 60)}" if e.failed_task else "")
        out.append(f"- **{where}**: {c.category} ({_cell(c.classified_by)}, {c.confidence:.2f}): "
                   f"{_cell(c.reasoning, 300)}")
    out += ["", "</details>"]
    return "\n".join(out) + "\n"


def _and_more(rest: list[tuple[str, int, Any]], noun: str) -> list[str]:
    """The line under a table cut at `TOP` rows: how many more, and their errors."""
    if not rest:
        return []
    return ["", f"…and {len(rest)} more {noun} ({_count(sum(n for _, n, _ in rest), 'error')})."]


def table(rows: list[ClassifiedError]) -> list[dict[str, Any]]:
    """The table artifact: one row per error."""
    # What a reader scans first, first: the UI clips a wide table at the card's edge.
    columns = dict(CSV_COLUMNS)
    shown = [(label, columns[label]) for label in TABLE_COLUMNS]
    return [{label: _short(value_of(r, path), 300) if label != "Confidence" else value_of(r, path)
             for label, path in shown} for r in rows]


def _csv_value(value: Any) -> Any:
    if isinstance(value, list):
        return ",".join(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return "" if value is None else value


def csv_table(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    """A CSV export safe to open in a spreadsheet: every text cell `inert`, and none starts a
    formula (`redaction.csv_cell`: ``=HYPERLINK(...)`` from a log stays text). `corrections
    import` reads such cells back as they were."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(list(header))
    for row in rows:
        writer.writerow([csv_cell(inert(v)) if isinstance(v, str) else v for v in row])
    return buffer.getvalue()


def to_csv(rows: Iterable[ClassifiedError]) -> str:
    """The export people correct in a spreadsheet: every column plus an empty "Corrected Category"."""
    return csv_table([label for label, _ in CSV_COLUMNS] + ["Corrected Category", "Corrected By"],
                     ([_csv_value(value_of(r, path)) for _, path in CSV_COLUMNS] + ["", ""] for r in rows))


def to_json(rows: list[ClassifiedError], metrics: dict[str, Any], previous: list[ClassifiedError] | None = None) -> str:
    data = {"metrics": metrics, "summary": summary(rows),
            "previous": summary(previous) if previous is not None else None,
            "patterns": patterns(rows)[:50], "errors": [r.model_dump(mode="json") for r in rows]}
    return json.dumps(data, indent=2, default=str)


def render_text(result: BatchResult, verbose: bool = False) -> str:
    """The batch for the terminal (`failure-insights batch run`)."""
    rows, m, w = result.rows, result.metrics, result.window
    by = m.classified_by
    lines = [
        f"Window {w.start:%Y-%m-%d %H:%M} - {w.end:%Y-%m-%d %H:%M} UTC, batch {result.batch_id}",
        f"{_count(failed_runs(rows), 'failed run')}, {_count(len(rows), 'error')} "
        f"({_count(m.runs_queried, 'run')} read, subflows counted with their parent); "
        f"classified by correction {by.get('correction', 0)}, "
        f"rules {by.get('rule', 0)}, cache {by.get('cache', 0)}, LLM {by.get('llm', 0)}; unknown {m.unknown}; "
        f"{m.duration_s:.1f} s",
    ]
    if m.llm_tokens:
        lines.append(f"LLM: {m.llm_calls} calls, {m.llm_tokens} tokens, est. ${m.llm_cost_usd:.4f}")
    lines.append("")
    total = len(rows) or 1
    for name, n in Counter(r.category for r in rows).most_common():
        lines.append(f"  {name:<20} {n:>5}  {100 * n / total:5.1f}%")
    lines += ["", "Top flows:"]
    lines += [f"  {v:<40} {n:>5}" for v, n, _ in breakdown(rows, "flow_name")[:10]]
    lines += ["", "Top recurring errors:"]
    lines += [f"  {p['count']:>4}x {p['category']:<19} {p['signature'][:90]}" for p in patterns(rows)[:10]]
    if verbose:
        lines += ["", "Errors:"]
        lines += [f"  {r.error.run.name:<30} {r.category:<19} {r.classification.classified_by:<22} "
                  f"{' '.join(r.error.error_text.split())[:80]}" for r in rows]
    return "\n".join(lines)
