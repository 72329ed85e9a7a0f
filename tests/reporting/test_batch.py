"""The batch report and its exports: pure functions of the rows."""

from __future__ import annotations

from prefect_failure_insights.models import BatchMetrics
from prefect_failure_insights.reporting.batch import patterns, render_report

ODD = "ledger.ReconcileError: reconciliation drift of 12 entries between ledger shards"
VENDOR = "httpx.HTTPStatusError: Server error '503 Service Unavailable' for url 'https://api.x.io/v1/a?page=3'"


def test_report_is_a_pure_function_of_the_rows(make_row) -> None:
    rows = [make_row(i, ODD.replace("12", str(i)), category="INPUT_DATA_QUALITY") for i in range(3)]
    rows.append(make_row(9, VENDOR, category="THIRD_PARTY_SYSTEM", flow_name="orders", tags=[]))
    metrics = BatchMetrics(classified_by={"rule": 4}, runs_queried=4)
    text = render_report(rows, metrics, "T", previous=rows[:2])
    assert text == render_report(rows, metrics, "T", previous=rows[:2])
    assert "| INPUT_DATA_QUALITY | 3 | 75.0% | +1 vs previous window |" in text
    assert "(no tag)" in text and "| 3 | 75.0% | a |" in text
    top = patterns(rows)[0]
    assert top["count"] == 3 and top["runs"] == 3


def test_planted_markup_in_rows_renders_as_text(make_row) -> None:
    from prefect_failure_insights.testing.markup import HOSTILE, live_elements, structure

    def report(text: str) -> str:
        rows = [make_row(i, f"{text} {i}", flow_name=text, tags=[text], failed_task=text, reasoning=text,
                         classified_by="llm") for i in range(2)]
        return render_report(rows, BatchMetrics(llm_note=text, failed_partitions=[text]), text)

    hostile = report(HOSTILE + " a|b")
    assert live_elements(hostile, own_html=["<details><summary>Reasoning per error</summary>", "</details>"]) == []
    assert structure(hostile) == structure(report("plain words"))


def test_every_flow_is_counted_and_patterns_are_whole() -> None:
    """Measured in the UI: "By flow" showed 10 of 11 flows silently; patterns were cut at ~80 characters."""
    from datetime import datetime, timezone

    from prefect_failure_insights.models import BatchMetrics, ClassifiedError
    from prefect_failure_insights.reporting.batch import TOP, render_report

    pattern = "Connection refused by warehouse.internal:5432 while loading the nightly orders table " * 3
    rows = [ClassifiedError.model_validate({
        "error": {"error_id": f"r{i}:t", "error_text": pattern.strip(), "failed_task": "load-02c",
                  "run": {"id": f"r{i}", "name": f"run-{i}", "flow_name": f"flow-{i:02d}", "state": "Failed",
                          "end_time": datetime(2026, 12, 1, tzinfo=timezone.utc)}},
        "classification": {"id": f"r{i}:t", "signature": "sig", "fingerprint": "fp",
                           "category": "THIRD_PARTY_SYSTEM", "confidence": 0.9, "classified_by": "rule",
                           "reasoning": "refused"}}) for i in range(TOP + 3)]
    text = render_report(rows, BatchMetrics(), "T")
    assert "…and 3 more flows (3 errors)." in text
    assert pattern.strip()[:250] in text.replace("\\", "")
    assert "**flow-00 / run-0, task load**" in text  # reasoning by run and task, not ids
