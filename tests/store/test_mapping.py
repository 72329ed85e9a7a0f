"""Models to rows and back, through the one mapping: a summary and a batch row round-trip whole."""

from __future__ import annotations

from datetime import datetime, timezone

from prefect_failure_insights.models import (
    Delivery,
    EvidenceRef,
    FailureAnalysis,
    FlowRunInfo,
    LLMUsage,
    Recurrence,
    Summary,
)
from prefect_failure_insights.store.mapping import from_row, to_row
from prefect_failure_insights.store.tables import batch_errors, summaries

WHEN = datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)


def test_a_summary_round_trips_through_its_row() -> None:
    summary = Summary(
        run=FlowRunInfo(id="r", name="n", flow_name="f", deployment="f/prod", deployment_id="d", work_pool="p",
                        tags=["a"], state="Crashed", state_type="CRASHED", state_message="m", start_time=WHEN,
                        end_time=WHEN, run_count=2, parent_task_run_id="t"),
        analysis=FailureAnalysis(title="t", what_happened="w", how_to_fix=["f"], root_cause="r",
                                 category="WORKFLOW_ENGINE", confidence=0.5, tags=["x"]),
        status="llm", reason="because",
        usage=LLMUsage(model="m", prompt_tokens=1, completion_tokens=2, latency_ms=3.0, cost_usd=0.1,
                       prompt_version="v"),
        recurrence=Recurrence(fingerprint="fp", signature="sig", cache_hit=True, same_as_run_id="r0",
                              first_seen=WHEN, occurrences=3),
        evidence=EvidenceRef(text="L1 x", tokens=4, root_error_line=1, redaction_count=2),
        delivery=Delivery(summarizer_flow_run_id="s", artifact_id="a", created_at=WHEN, updated_at=WHEN,
                          regenerated_count=1),
    )
    row = to_row(summary, summaries)
    assert row["title"] == "t" and row["category"] == "WORKFLOW_ENGINE"  # copies for SQL users
    assert from_row(row, summaries, Summary) == summary


def test_a_batch_row_round_trips(make_row) -> None:
    row = make_row(1, "KeyError: 'x'", "KeyError", category="WORKFLOW_ENGINE", end_time=WHEN)
    values = to_row(row, batch_errors)
    assert values["error_id"] == row.error.error_id and values["flow_name"] == "ledger-close"
    assert from_row(values, batch_errors, type(row)) == row
