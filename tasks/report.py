"""The batch report: totals, categories, breakdowns, recurring patterns, trends; and exports.

Pure functions of the classified error rows (dicts with the `batch_errors` columns), so
the same rows always give the same report.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

CSV_COLUMNS = [
    ("Error ID", "error_id"), ("Run ID", "flow_run_id"), ("Run", "flow_run_name"), ("Flow", "flow_name"),
    ("Deployment", "deployment"), ("Work Pool", "work_pool"), ("Tags", "tags"), ("Failed Task", "failed_task"),
    ("Failed At", "failed_at"), ("Exception Type", "exception_type"), ("Error Text", "error_text"),
    ("Category", "category"), ("Confidence", "confidence"), ("Classified By", "classified_by"),
    ("Reasoning", "reasoning"), ("Signature", "signature"),
]
TOP = 10


def _pct(n: int, total: int) -> str:
    return f"{100 * n / total:.1f}%" if total else "0.0%"


def _cell(value: Any, limit: int = 120) -> str:
    text = "" if value is None else str(value)
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if isinstance(value, datetime) else _cell(value)


def breakdown(rows: list[dict], key: str) -> list[tuple[str, int, Counter]]:
    """(value, errors, categories) by a dimension, largest first; tags count once per tag."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for row in rows:
        values = (row.get("tags") or ["(no tag)"]) if key == "tags" else [row.get(key) or "(none)"]
        for value in values:
            counts[value][row["category"]] += 1
    return sorted(((v, sum(c.values()), c) for v, c in counts.items()), key=lambda t: (-t[1], t[0]))


def patterns(rows: list[dict]) -> list[dict]:
    """Recurring error signatures with counts, first and last seen, category, runs."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        groups[row.get("signature") or row["error_text"]].append(row)
    out = []
    for sig, members in groups.items():
        seen = [m["failed_at"] for m in members if m.get("failed_at")]
        out.append({"signature": sig, "count": len(members), "category": members[0]["category"],
                    "first_seen": min(seen) if seen else None, "last_seen": max(seen) if seen else None,
                    "runs": len({m["flow_run_id"] for m in members}),
                    "flows": sorted({m["flow_name"] for m in members})})
    return sorted(out, key=lambda p: (-p["count"], p["signature"]))


def summary(rows: list[dict]) -> dict[str, Any]:
    """The figures of a batch, for the JSON export and for trends."""
    categories = Counter(r["category"] for r in rows)
    return {
        "errors": len(rows),
        "runs": len({r["flow_run_id"] for r in rows}),
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


def markdown(rows: list[dict], metrics: dict[str, Any], title: str, previous: list[dict] | None = None) -> str:
    """The report artifact. Only figures of the rows: what one execution spent (time, LLM
    tokens) is in the batch's metrics row, so re-running a window reproduces the report."""
    total = len(rows)
    prev = summary(previous) if previous is not None else None
    categories = Counter(r["category"] for r in rows)
    out = [f"# {title}", ""]
    out.append(f"**{total} errors** in **{len({r['flow_run_id'] for r in rows})} failed runs**"
               f"{_trend(total, prev['errors'] if prev else None)}.")
    by = metrics.get("classified_by", {})
    out.append("Classified by correction: {c}, rules: {r}, LLM: {l}, cache: {k}; unknown: {u}.".format(
        c=by.get("correction", 0), r=by.get("rule", 0), l=by.get("llm", 0), k=by.get("cache", 0),
        u=categories.get("UNKNOWN", 0)))
    if metrics.get("llm_note"):
        out.append(f"LLM note: {metrics['llm_note']}")
    if metrics.get("capped"):
        out.append(f"**Capped:** only the newest {metrics['runs_queried']} failed runs of the window were read "
                   "(`max_runs`).")
    for note in metrics.get("failed_partitions", []):
        out.append(f"**Partition failed:** {note}")
    out += ["", "## Categories", "", "| Category | Errors | Share | Trend |", "| --- | ---: | ---: | --- |"]
    for name, n in categories.most_common():
        before = prev["categories"].get(name, 0) if prev else None
        out.append(f"| {name} | {n} | {_pct(n, total)} | {_trend(n, before).strip(' ()') if prev else ''} |")
    for label, key in (("Flow", "flow_name"), ("Deployment", "deployment"), ("Work pool", "work_pool"),
                       ("Tag", "tags")):
        out += ["", f"## By {label.lower()}", "", f"| {label} | Errors | Share | Categories |",
                "| --- | ---: | ---: | --- |"]
        for value, n, cats in breakdown(rows, key)[:TOP]:
            split = ", ".join(f"{c} {k}" for c, k in cats.most_common())
            out.append(f"| {_cell(value, 60)} | {n} | {_pct(n, total)} | {split} |")
    out += ["", "## Top failing pipelines", "", "| Flow / deployment | Failed runs | Errors |", "| --- | ---: | ---: |"]
    pipes: dict[str, set] = defaultdict(set)
    pipe_errors: Counter = Counter()
    for row in rows:
        name = row.get("deployment") or row["flow_name"]
        pipes[name].add(row["flow_run_id"])
        pipe_errors[name] += 1
    for name in sorted(pipes, key=lambda p: (-len(pipes[p]), p))[:TOP]:
        out.append(f"| {_cell(name, 60)} | {len(pipes[name])} | {pipe_errors[name]} |")
    out += ["", "## Top recurring errors", "", "| Error pattern | Count | Category | First seen | Last seen |",
            "| --- | ---: | --- | --- | --- |"]
    for p in patterns(rows)[:TOP]:
        out.append(f"| `{_cell(p['signature'], 100)}` | {p['count']} | {p['category']} | "
                   f"{_when(p['first_seen'])} | {_when(p['last_seen'])} |")
    out += ["", "## Errors", "", "| Failed at | Flow | Task | Error | Category | By | Confidence |",
            "| --- | --- | --- | --- | --- | --- | ---: |"]
    for row in sorted(rows, key=lambda r: (str(r.get("failed_at")), r["error_id"]), reverse=True)[:200]:
        out.append(f"| {_when(row.get('failed_at'))} | {_cell(row['flow_name'], 40)} | "
                   f"{_cell(row.get('failed_task'), 40)} | {_cell(row['error_text'], 100)} | {row['category']} | "
                   f"{row['classified_by']} | {row['confidence']:.2f} |")
    if total > 200:
        out.append(f"\n…and {total - 200} more: export with `failure-insights insights --format csv`.")
    out += ["", "<details><summary>Reasoning per error</summary>", ""]
    for row in rows[:200]:
        out.append(f"- `{row['error_id']}` {row['category']} ({row['classified_by']}, "
                   f"{row['confidence']:.2f}): {_cell(row.get('reasoning'), 300)}")
    out += ["", "</details>"]
    return "\n".join(out) + "\n"


def table(rows: list[dict]) -> list[dict[str, Any]]:
    """The table artifact: one row per error."""
    return [{label: _cell(r.get(key), 300) if key != "confidence" else r.get(key) for label, key in CSV_COLUMNS
             if key not in ("reasoning", "signature")} for r in rows]


def to_csv(rows: Iterable[dict]) -> str:
    """The export people correct in a spreadsheet: every column plus an empty "Corrected Category"."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([label for label, _ in CSV_COLUMNS] + ["Corrected Category", "Corrected By"])
    for r in rows:
        values = []
        for _, key in CSV_COLUMNS:
            value = r.get(key)
            if key == "tags":
                value = ",".join(value or [])
            elif isinstance(value, datetime):
                value = value.isoformat()
            values.append("" if value is None else value)
        writer.writerow(values + ["", ""])
    return buffer.getvalue()


def to_json(rows: list[dict], metrics: dict[str, Any], previous: list[dict] | None = None) -> str:
    data = {"metrics": metrics, "summary": summary(rows),
            "previous": summary(previous) if previous is not None else None,
            "patterns": patterns(rows)[:50], "errors": rows}
    return json.dumps(data, indent=2, default=str)
