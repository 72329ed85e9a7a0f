"""Run bundles: the documented format, nested or flattened, .gz, and clear errors."""

from __future__ import annotations

import asyncio
import gzip
import json
from pathlib import Path

import pytest
from prefect_failure_insights.blocks import FailureInsightsSettings

from prefect_failure_insights.bundles.format import load_bundle, write_bundle
from prefect_failure_insights.bundles.offline import bundle_evidence, summarize_bundle
from prefect_failure_insights.exceptions import BundleError
from prefect_failure_insights.models import Category

TRACEBACK = (
    "Task run failed with exception: ValueError(\"column 'amount' has 17 nulls\") - Retries are exhausted\n"
    "Traceback (most recent call last):\n  File \"/opt/etl/validate.py\", line 12, in validate_rows\n"
    "    raise ValueError(msg)\nValueError: column 'amount' has 17 nulls"
)


def _flat() -> dict:
    return {
        "flow_run_id": "root-1", "flow_run_name": "brave-otter", "flow_name": "orders", "deployment": "orders/prod",
        "tags": ["prod"], "work_pool": "k8s", "state": "Failed",
        "state_message": "Flow run encountered an exception: ValueError: column 'amount' has 17 nulls",
        "task_runs": [{"name": "validate_rows-1a2", "state": "Failed", "message": "Task run encountered an exception"},
                      {"name": "load-3b4", "state": "Completed", "message": None}],
        "logs": [
            {"timestamp": "2026-11-20T02:00:00+00:00", "level": "INFO", "name": "prefect.flow_runs",
             "message": "Connecting to postgresql://etl:BundleS3cret@db/x", "task_run_name": None},
            {"timestamp": "2026-11-20T02:00:01+00:00", "level": "ERROR", "name": "prefect.task_runs",
             "message": TRACEBACK, "task_run_name": "validate_rows-1a2"},
            {"timestamp": "2026-11-20T02:00:02+00:00", "level": "INFO", "name": "prefect.flow_runs",
             "message": "Finished in state Failed('Flow run encountered an exception')", "task_run_name": None},
        ],
        "something_from_a_newer_version": {"ignored": True},
    }


def _nested() -> dict:
    data = _flat()
    child_logs = data.pop("logs")[1:2]
    data["logs"] = [{"timestamp": "2026-11-20T02:00:03+00:00", "level": 40, "message":
                     "Encountered exception during execution: ValueError(\"column 'amount' has 17 nulls\")"}]
    data["task_runs"] = []
    data["subflows"] = [{"flow_run_id": "child-1", "flow_run_name": "calm-heron", "flow_name": "validate",
                         "state": "Failed", "state_message": "Flow run encountered an exception",
                         "task_runs": [{"name": "validate_rows-1a2", "state": "Failed"}], "logs": child_logs}]
    return data


def _write(tmp_path: Path, data: dict, name: str = "run.json") -> Path:
    path = tmp_path / name
    raw = json.dumps(data).encode()
    path.write_bytes(gzip.compress(raw) if name.endswith(".gz") else raw)
    return path


@pytest.mark.parametrize("name", ["run.json", "run.json.gz"])
def test_flat_bundle_gives_the_evidence_of_the_failed_task(tmp_path: Path, name: str) -> None:
    bundle = load_bundle(_write(tmp_path, _flat(), name))
    ev = bundle_evidence(bundle)
    assert ev.root_error_line == 2 and ev.failed_task == "validate_rows-1a2"
    assert "BundleS3cret" not in ev.text and ev.redactions == {"url_password": 1}


def test_nested_subflows_are_flattened_and_merged_in_time_order(tmp_path: Path) -> None:
    bundle = load_bundle(_write(tmp_path, _nested()))
    failed = bundle.failed_run()
    assert [s.name for s in failed.subflows] == ["calm-heron"]
    lines = bundle.log_lines()
    assert [ln.lineno for ln in lines] == [1, 2] and lines[0].task_run_name == "validate_rows-1a2"
    ev = bundle_evidence(bundle)
    assert ev.root_error_line == 1  # the subflow's task, not the parent's re-raise
    assert "calm-heron/validate_rows-1a2" in ev.text


def test_offline_summary_without_an_llm_is_the_marked_fallback(tmp_path: Path) -> None:
    bundle = load_bundle(_write(tmp_path, _flat()))
    summary = asyncio.run(summarize_bundle(bundle, FailureInsightsSettings(), None, no_llm_reason="No LLM configured."))
    assert summary.status == "fallback" and summary.reason == "No LLM configured."
    # "17 nulls" names the cause, but such texts are the data's fault only ~60 % of the time on
    # the labelled corpus: below the calibrated threshold, a lead rather than a category.
    assert summary.analysis.category in (Category.INPUT_DATA_QUALITY, Category.UNKNOWN)
    assert "constraint violated by the data" in summary.analysis.root_cause.lower()
    assert summary.analysis.failed_task == "validate_rows-1a2"


def test_write_then_load_round_trips(tmp_path: Path) -> None:
    bundle = load_bundle(_write(tmp_path, _nested()))
    again = load_bundle(write_bundle(bundle, tmp_path / "copy.json.gz"))
    assert bundle_evidence(again).text == bundle_evidence(bundle).text
    assert not list(tmp_path.glob(".*.partial"))


@pytest.mark.parametrize("content,fragment", [
    (b"not json at all", "not valid JSON"),
    (b"[1, 2, 3]", "not an object"),
    (json.dumps({"flow_run_id": "x", "state": "Completed"}).encode(), "failed or crashed"),
    (json.dumps({"flow_run_id": "x", "state": "Done", "state_type": "COMPLETED"}).encode(), "failed or crashed"),
    (json.dumps({"state": "Failed"}).encode(), "flow_run_id"),
    (json.dumps({**_flat(), "logs": [{"level": "LOUD", "message": "x"}]}).encode(), "unknown level"),
    (b"\x1f\x8b\x08 truncated gzip", "not valid JSON"),
    (json.dumps(_nested()).replace('"level": "ERROR"', '"level": "LOUD"').encode(), r"subflows\.0\.logs\.0\.level"),
    (json.dumps(_flat())[:-40].encode(), "not valid JSON"),
    (b"", "not valid JSON"),
])
def test_malformed_files_give_one_clear_error(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(BundleError, match=fragment):
        load_bundle(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="Cannot read bundle"):
        load_bundle(tmp_path / "nope.json")


def test_log_lines_are_spooled_not_held_and_read_again_on_demand(tmp_path: Path) -> None:
    data = _flat()
    data["logs"] = data["logs"] * 1000
    bundle = load_bundle(_write(tmp_path, data, "big.json.gz"))
    assert bundle.logs == [] and bundle.log_count == 3000  # in the spool, not in the model
    lines = bundle.log_lines()
    assert len(lines) == 3000 and sum(1 for _ in lines) == 3000 and sum(1 for _ in lines) == 3000
    assert all("BundleS3cret" not in ln.message for ln in lines)  # redacted as they were read


@pytest.mark.parametrize("state,state_type,expected", [
    ("TimedOut", None, "FAILED"), ("ContractViolated", "FAILED", "FAILED"), ("Crashed", None, "CRASHED"),
    ("Evicted", "CRASHED", "CRASHED"),
])
def test_a_failure_is_a_state_type_whatever_its_name(tmp_path: Path, state: str, state_type: str | None,
                                                      expected: str) -> None:
    """Prefect names a timed-out run's Failed state `TimedOut`; a bundle of one is a failed run."""
    content = {**_flat(), "state": state, **({"state_type": state_type} if state_type else {})}
    path = tmp_path / "run.json"
    path.write_text(json.dumps(content))
    bundle = load_bundle(path)
    assert bundle.failed_run().run.state_type == expected and bundle.failed_run().run.state == state
