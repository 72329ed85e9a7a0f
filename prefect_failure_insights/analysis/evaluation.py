"""Measuring classification against labelled error texts (`failure-insights eval`, the benchmark)."""

from __future__ import annotations

from collections import Counter
from typing import Any

UNKNOWN = "UNKNOWN"


def evaluate(labels: list[str], predictions: list[str], classified_by: list[str]) -> dict[str, Any]:
    """Accuracy, per-category precision and recall, the confusion matrix, UNKNOWN rate, rule coverage.

    ``answered_precision`` is the share right among the answers that are not UNKNOWN:
    what a user sees when a rule (or the LLM) does answer.
    """
    n = len(labels)
    right = sum(1 for y, p in zip(labels, predictions) if y == p)
    answered = [(y, p) for y, p in zip(labels, predictions) if p != UNKNOWN]
    categories = sorted(set(labels) | set(predictions))
    confusion = {y: {p: 0 for p in categories} for y in categories}
    for y, p in zip(labels, predictions):
        confusion[y][p] += 1
    per_category = {}
    for c in categories:
        tp = confusion[c][c]
        predicted = sum(confusion[y][c] for y in categories)
        actual = sum(confusion[c].values())
        per_category[c] = {
            "precision": round(tp / predicted, 4) if predicted else None,
            "recall": round(tp / actual, 4) if actual else None,
            "support": actual,
        }
    by = Counter(b.split(":")[0] for b in classified_by)
    return {
        "rows": n,
        "accuracy": round(right / n, 4) if n else None,
        "answered_precision": round(sum(1 for y, p in answered if y == p) / len(answered), 4) if answered else None,
        "unknown_rate": round(sum(1 for p in predictions if p == UNKNOWN) / n, 4) if n else None,
        "rule_coverage": round(by.get("rule", 0) / n, 4) if n else None,
        "classified_by": dict(sorted(by.items())),
        "per_category": per_category,
        "confusion": confusion,
    }


def render(result: dict[str, Any]) -> str:
    """The evaluation as text."""
    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.1f}%"

    lines = [
        f"Rows: {result['rows']}",
        f"Accuracy: {pct(result['accuracy'])}",
        f"Precision when not UNKNOWN: {pct(result['answered_precision'])}",
        f"UNKNOWN rate: {pct(result['unknown_rate'])}",
        f"Rule coverage: {pct(result['rule_coverage'])}",
        "Classified by: " + ", ".join(f"{k} {v}" for k, v in result["classified_by"].items()),
        "",
        f"{'category':<20} {'precision':>9} {'recall':>7} {'support':>7}",
    ]
    for c, m in result["per_category"].items():
        lines.append(f"{c:<20} {pct(m['precision']):>9} {pct(m['recall']):>7} {m['support']:>7}")
    cats = list(result["confusion"])
    short = {c: c[:10] for c in cats}
    lines += ["", "Confusion (rows: label, columns: predicted)",
              f"{'':<20} " + " ".join(f"{short[c]:>10}" for c in cats)]
    for y in cats:
        lines.append(f"{y:<20} " + " ".join(f"{result['confusion'][y][p]:>10}" for p in cats))
    return "\n".join(lines)
