"""No secret reaches an output, whatever the format and wherever it enters.

The corpus (`tests/fixtures/secrets/`, provenance in its PROVENANCE.md) was built from the
documented formats of public scanner rule sets (gitleaks, trufflehog, detect-secrets) and
vendor docs, values generated, each in a line shaped as a real library or tool prints it;
the look-alikes are text that must survive. Each secret is planted in every place text
enters from a run, through the same door the live flow uses (the models' `Redacted`
fields, bundle loading), and every output is checked: the evidence (what the LLM gets),
the prompt, the summary (the row), the artifact, the terminal text, the batch rows,
report and CSV, and the bundle written back.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from prefect_failure_insights.analysis.classifier import Classifier, classify_errors
from prefect_failure_insights.blocks import FailureInsightsSettings
from prefect_failure_insights.bundles.format import Bundle
from prefect_failure_insights.bundles.offline import bundle_evidence, summarize_bundle
from prefect_failure_insights.evidence.errors import errors_of
from prefect_failure_insights.llm.prompts import summary_messages
from prefect_failure_insights.models import BatchMetrics, FailureAnalysis
from prefect_failure_insights.redaction import Redactor
from prefect_failure_insights.reporting.batch import render_report, to_csv
from prefect_failure_insights.reporting.card import render_markdown, render_text
from prefect_failure_insights.store.mapping import to_row
from prefect_failure_insights.store.tables import summaries

FIXTURES = Path(__file__).parents[1] / "fixtures" / "secrets"
SECRETS = [json.loads(line) for line in (FIXTURES / "secrets.jsonl").read_text().splitlines() if line.strip()]
LOOKALIKES = [json.loads(line) for line in (FIXTURES / "lookalikes.jsonl").read_text().splitlines() if line.strip()]
# The AWS documentation's example key: gitleaks allow-lists it, removing it is harmless (see PROVENANCE.md).
SOFT = {"n056"}

TRACEBACK = 'Traceback (most recent call last):\n  File "/app/flows/etl.py", line 41, in load\n    run()\n'


def _bundle(line: str, placement: str) -> dict:
    """A failed run with ``line`` planted at ``placement`` (everything else ordinary)."""
    task = {"name": "load_orders-3b4", "state": "Failed", "id": "t1",
            "message": "Task run encountered an exception RuntimeError: load failed"}
    logs = [{"timestamp": "2026-11-20T02:00:00+00:00", "level": "INFO", "message": "Starting load",
             "task_run_id": "t1"},
            {"timestamp": "2026-11-20T02:00:01+00:00", "level": "ERROR", "task_run_id": "t1",
             "message": "Task run failed with exception: RuntimeError('load failed')"}]
    data = {"flow_run_id": "11111111-2222-4333-8444-555555555555", "flow_run_name": "brave-otter",
            "flow_name": "orders-load", "deployment": "orders-load/prod", "work_pool": "k8s", "tags": ["prod"],
            "state": "Failed", "state_message": "Flow run encountered an exception: RuntimeError: load failed",
            "task_runs": [task], "logs": logs}
    if placement == "log line":
        logs.insert(1, {**logs[0], "message": line})
    elif placement == "traceback":
        logs[1]["message"] = f"Task run failed with exception: RuntimeError\n{TRACEBACK}RuntimeError: {line}"
    elif placement == "exception repr":  # Prefect writes the exception's repr: quotes and newlines escaped
        logs[1]["message"] = f"Task run failed with exception: RuntimeError({line!r}) - Retries are exhausted"
    elif placement == "task state message":
        task["message"] = f"Task run encountered an exception RuntimeError: {line}"
    elif placement == "flow state message":
        data["state_message"] = f"Flow run encountered an exception: RuntimeError: {line}"
    elif placement == "task run name":
        task["name"] = line
        logs[1]["task_run_name"] = line
    elif placement in ("flow run name", "deployment", "work pool"):
        data[{"flow run name": "flow_run_name", "deployment": "deployment", "work pool": "work_pool"}[placement]] = line
    elif placement == "tag":
        data["tags"] = ["prod", line]
    elif placement == "subflow":
        data["subflows"] = [{"flow_run_id": "s1", "flow_run_name": line, "flow_name": "child", "state": "Failed",
                             "state_message": f"Flow run encountered an exception: {line}"}]
    elif placement == "last good run":
        data["baseline"] = {"flow_run_id": "g1", "flow_run_name": line, "differences": [line], "templates": [line]}
    elif placement == "other system's log":
        data["sections"] = [{"title": "Airbyte job 7", "source": "airbyte", "header": [line],
                             "lines": [{"lineno": 1, "timestamp": "", "level": 40, "message": line}]}]
    return data


PLACEMENTS = ["log line", "traceback", "exception repr", "task state message", "flow state message",
              "task run name", "flow run name", "deployment", "work pool", "tag", "subflow", "last good run",
              "other system's log"]


def _outputs(bundle: Bundle) -> dict[str, str]:
    """Every output the plugin makes of a failed run, as text."""
    settings = FailureInsightsSettings()
    failed = bundle.failed_run()
    evidence = bundle_evidence(bundle)
    summary = asyncio.run(summarize_bundle(bundle, settings, None, no_llm_reason="No LLM configured."))
    rows = asyncio.run(classify_errors(errors_of(failed, bundle.log_lines()), Classifier(settings)))
    return {
        "evidence": evidence.model_dump_json(),
        "prompt": json.dumps(summary_messages(evidence, failed)),
        "summary": summary.model_dump_json(),
        "row": json.dumps(to_row(summary, summaries), default=str),
        "artifact": render_markdown(summary, "http://127.0.0.1:4200/runs/flow-run/x"),
        "text": render_text(summary),
        "batch rows": json.dumps([r.model_dump(mode="json") for r in rows]),
        "batch report": render_report(rows, BatchMetrics().counted(rows), "T"),
        "batch csv": to_csv(rows),
        "bundle": bundle.model_dump_json(),
    }


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_no_secret_format_reaches_any_output_from_any_placement(placement: str) -> None:
    leaks = []
    for entry in SECRETS:
        bundle = Bundle.model_validate(_bundle(entry["line"], placement))  # the door: text enters redacted
        for output, text in _outputs(bundle).items():
            leaks += [f"{entry['id']} {entry['format']} -> {output}" for s in entry["secrets"] if s in text]
    assert not leaks, f"{len(leaks)} leaks, e.g. {leaks[:5]}"


def test_look_alikes_survive() -> None:
    damaged = [e["id"] for e in LOOKALIKES
               if e["id"] not in SOFT and any(k not in Redactor().redact(e["line"]) for k in e["keep"])]
    assert len(damaged) <= 0.05 * len(LOOKALIKES), damaged
    assert not damaged, damaged


def test_a_model_cannot_hold_a_raw_secret() -> None:
    """The models' text fields redact what they are given: an LLM echoing a secret included."""
    for entry in SECRETS:
        answer = FailureAnalysis(title=entry["line"], what_happened=entry["line"], how_to_fix=[entry["line"]],
                                 root_cause=entry["line"], category="UNKNOWN", confidence=0.5)
        dumped = answer.model_dump_json()
        assert not [s for s in entry["secrets"] if s in dumped], entry["id"]


def test_exact_secret_values_reach_no_output() -> None:
    """A Secret block's value, which no pattern knows, is removed where the text is read."""
    value = "plainvalue-no-pattern-4471"
    redactor = Redactor(literals=[value])
    assert value not in redactor.redact(f"calling the partner API with key {value}")
