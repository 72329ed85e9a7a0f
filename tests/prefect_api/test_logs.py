"""A run's logs are read only through the door: every line redacted as it is read."""

from __future__ import annotations

import csv

import pytest

from prefect_failure_insights.prefect_api.logs import RunLogs
from prefect_failure_insights.redaction import Redactor


def test_log_lines_can_only_be_read_redacted(tmp_path) -> None:
    path = tmp_path / "run.csv"
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows([
            ("2026-11-20T02:00:00+00:00", 20, "", "connecting to postgresql://etl:Pl4nted-pw@db:5432/x", ""),
            ("2026-11-20T02:00:01+00:00", 40, "t1", "partner refused key plainvalue-no-pattern-4471", ""),
        ])
    logs = RunLogs({"run": path}, None, "test", read_ms=0.0, line_count=2)
    lines = list(logs.lines(Redactor(literals=["plainvalue-no-pattern-4471"])))
    assert [ln.lineno for ln in lines] == [1, 2]
    text = " ".join(ln.message for ln in lines)
    assert "Pl4nted-pw" not in text and "plainvalue-no-pattern-4471" not in text
    assert "[REDACTED:url_password]" in text and "[REDACTED:secret_value]" in text
    with pytest.raises(TypeError):
        iter(logs)  # no raw iteration


def test_the_plugins_own_record_on_a_run_is_not_read_as_the_runs_log(tmp_path) -> None:
    from prefect_failure_insights.defaults import SUMMARY_RECORD_PREFIX

    path = tmp_path / "run.csv"
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows([
            ("2026-11-20T02:00:00+00:00", 40, "t1", "boom", ""),
            ("2026-11-20T02:00:01+00:00", 20, "", "Finished in state Failed('boom')", "prefect.flow_runs"),
            ("2026-11-20T02:00:09+00:00", 20, "", f"{SUMMARY_RECORD_PREFIX}x failed: see the Artifacts tab", ""),
        ])
    lines = list(RunLogs({"run": path}, None, "test", read_ms=0.0, line_count=3).lines(Redactor()))
    assert [ln.message for ln in lines] == ["boom", "Finished in state Failed('boom')"]


def test_a_message_over_prefects_limit_is_cut_where_it_is_spooled(tmp_path) -> None:
    """Issue 25: one 100 MB line cost 5 GB in redaction; a message is cut to Prefect's own 1 MB
    limit before anything looks at it, keeping its start and end and saying what was cut."""
    from prefect_failure_insights.defaults import LOG_MESSAGE_MAX_CHARS
    from prefect_failure_insights.prefect_api.logs import _row

    huge = "Task run failed with exception: ValueError: " + "payload\\n" * 2_000_000 + "the end"
    path = tmp_path / "run.csv"
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerow(_row("2026-11-20T02:00:00+00:00", 40, None, huge, None))
    [line] = list(RunLogs({"run": path}, None, "test", read_ms=0.0, line_count=1).lines(Redactor()))
    assert len(line.message) <= LOG_MESSAGE_MAX_CHARS
    assert line.message.startswith("Task run failed with exception: ValueError") and line.message.endswith("the end")
    cut = len(huge) - len(line.message.replace(line.message[line.message.index(" [... "):
                                                             line.message.index(" cut] ") + 6], ""))
    assert f"[... {cut:,} characters cut]" in line.message
