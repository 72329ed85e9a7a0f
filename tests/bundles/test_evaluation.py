"""`failure-insights eval --runs`: labelled failed runs, scored (issue 26)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from prefect_failure_insights.blocks import FailureInsightsSettings
from prefect_failure_insights.bundles.evaluation import evaluate_runs, load_cases, render, report

BUNDLE = {
    "flow_run_id": "11111111-1111-1111-1111-111111111111", "flow_run_name": "brave-otter", "flow_name": "orders",
    "state": "Failed", "state_message": "Flow run encountered an exception: KeyError: 'customer_id'",
    "task_runs": [{"name": "load_orders-0", "state": "Failed", "message": "KeyError: 'customer_id'"}],
    "logs": [
        {"timestamp": "2026-12-04T10:00:00+00:00", "level": "INFO", "name": "prefect.task_runs",
         "message": "Columns received: cust_id, order_id", "task_run_name": "load_orders-0"},
        {"timestamp": "2026-12-04T10:00:01+00:00", "level": "ERROR", "name": "prefect.task_runs",
         "message": "Task run failed with exception: KeyError('customer_id') - Retries are exhausted\nTraceback (most "
                    "recent call last):\n  File \"/opt/flows/orders.py\", line 9, in load_orders\n    df['customer_id']"
                    "\nKeyError: 'customer_id'", "task_run_name": "load_orders-0"},
    ],
}


def test_cases_are_summarized_and_scored(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    case = {"id": "c1", "label": "INPUT_DATA_QUALITY", "failed_task": "load_orders", "facts": ["customer_id", "cust_id"],
            "split": "dev", "bundle": BUNDLE}
    path.write_text(json.dumps(case) + "\n" + json.dumps({**case, "id": "c2", "split": "frozen"}) + "\n")
    cases = load_cases(path, "dev")
    assert [c.id for c in cases] == ["c1"]
    scores = asyncio.run(evaluate_runs(cases, tmp_path, FailureInsightsSettings(), llm=None))
    (one,) = scores
    assert one.task_named and one.root_line_cited and one.specific_fix and one.filler_steps == 0
    assert one.citations_held and one.tokens == 0 and one.status == "fallback"
    result = report(scores, "none")
    assert result["failed_task"] == {"right": 1, "of": 1, "share": 1.0}
    assert "Specific fix:        1/1 (100.0%)" in render(result)


def test_with_a_model_it_reports_the_model_tokens_and_latency(tmp_path: Path, fake_llm) -> None:
    """The same evaluation against an OpenAI-compatible endpoint: what choosing a model costs."""
    from prefect_failure_insights.blocks import LLMCredentials

    path = tmp_path / "cases.jsonl"
    path.write_text(json.dumps({"id": "c1", "label": "INPUT_DATA_QUALITY", "failed_task": "load_orders",
                                "facts": ["customer_id"], "bundle": BUNDLE}) + "\n")
    llm = LLMCredentials(base_url=fake_llm.url, model="fake-model", max_retries=0, timeout=5)
    scores = asyncio.run(evaluate_runs(load_cases(path), tmp_path, FailureInsightsSettings(llm_deadline_seconds=10),
                                       llm=llm))
    result = report(scores, "fake-model")
    assert scores[0].status == "llm" and result["tokens"] > 0 and result["latency_ms_median"] is not None
    assert "Model: fake-model" in render(result)
