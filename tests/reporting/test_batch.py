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
    assert "(no tag)" in text and "| a | 3 | 75.0% |" in text
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
