"""Evidence: the root error is found, secrets are gone, the budget holds."""

from __future__ import annotations

from prefect_failure_insights.models import FailedRun, FlowRunInfo, LogLine
from prefect_failure_insights.tasks.evidence import (
    build_evidence,
    clean_traceback,
    estimate_tokens,
    find_root_error,
    parse_exception,
    template,
)
from prefect_failure_insights.testing.samples import RUN_ID, failed_run


def _line(n: int, message: str, level: int = 20, task: str | None = None) -> LogLine:
    return LogLine(lineno=n, timestamp=f"2026-11-20T02:00:{n % 60:02d}+00:00", level=level,
                   message=message, flow_run_id=RUN_ID, task_run_id=task, task_run_name=task)


def _crashed() -> FailedRun:
    return FailedRun(run=FlowRunInfo(id=RUN_ID, name="r", flow_name="f", state="Crashed", state_type="CRASHED"))


def test_root_error_is_the_failed_tasks_last_attempt_not_the_flow_reraise() -> None:
    failed, lines = failed_run(retries=2)
    ev = build_evidence(failed, lines)
    root = lines[ev.root_error_line - 1]
    assert root.level == 40 and root.task_run_id is not None
    assert "Retries are exhausted" in root.message
    assert ev.failed_task == "extract_orders-3f1"
    assert ev.exception_type == "httpx.HTTPStatusError"
    assert "503 Service Unavailable" in ev.exception_message


def test_planted_secrets_never_reach_the_evidence() -> None:
    failed, lines = failed_run(secrets=True)
    ev = build_evidence(failed, lines)
    assert "Sup3rS3cret!" not in ev.text
    assert "sk-proj-AbCdEfGh" not in ev.text
    # Each secret is counted once, although lines may be rendered more than once.
    assert ev.redactions == {"url_password": 1, "openai_key": 1}


def test_budget_holds_on_a_huge_log_and_keeps_the_early_root_error() -> None:
    failed, lines = failed_run(noise_before=50, noise_after=0)
    # 20,000 misleading lines after the failure, including a later, different error.
    n = len(lines)
    extra = [_line(n + i, f"WARNING retrying connection {i} to cache-{i % 7}.internal", level=30)
             for i in range(1, 20_000)]
    extra.append(_line(n + 20_000, "KeyError: 'cleanup_marker'", level=40))
    ev = build_evidence(failed, lines + extra, budget_tokens=2000)
    assert ev.tokens <= 2000
    assert ev.root_error_line is not None and ev.root_error_line in ev.kept_lines
    assert "503 Service Unavailable" in ev.text
    # Repeated warnings are collapsed into one template with a count, not kept 20,000 times.
    assert len(ev.kept_lines) < 200


def test_crashed_run_without_traceback_uses_the_infrastructure_signal() -> None:
    lines = [
        _line(1, "Beginning flow run 'r' for flow 'f'"),
        _line(2, "Processing batch 1"),
        _line(3, "Job 'r-abc': Container 'prefect-job' was terminated: OOMKilled (exit code 137)", level=40),
        _line(4, "Reported flow run 'x' as crashed: Flow run infrastructure exited with non-zero status code 137.", 40),
    ]
    root = find_root_error(lines, _crashed())
    assert root.line is not None and root.line.lineno == 3


def test_consequences_are_not_chosen_as_the_root_error() -> None:
    lines = [
        _line(1, "Beginning flow run"),
        _line(2, "Upstream task run 'a' did not reach a 'COMPLETED' state", level=40),
        _line(3, "ValueError: column 'amount' has 17 nulls", level=40),
        _line(4, "Finished in state Failed('Flow run encountered an exception')", level=40),
    ]
    assert find_root_error(lines).line.lineno == 3


def test_earliest_failed_task_wins_over_later_victims() -> None:
    lines = [
        _line(1, "Task run failed with exception: ValueError('bad schema') - Retries are exhausted", 40, "a"),
        _line(2, "Task run failed with exception: RuntimeError('no input') - Retries are exhausted", 40, "b"),
    ]
    assert find_root_error(lines).line.lineno == 1


def test_clean_traceback_drops_framework_frames_and_carets() -> None:
    from prefect_failure_insights.testing.samples import VENDOR_TRACEBACK

    cleaned = clean_traceback(VENDOR_TRACEBACK)
    assert "prefect/task_engine.py" not in cleaned
    assert "^^^" not in cleaned
    assert '/opt/pipelines/orders.py", line 41' in cleaned
    assert "[2 framework frames omitted]" in cleaned
    assert cleaned.rstrip().endswith("Status/503")


def test_template_masks_variable_parts() -> None:
    assert template("retry 3 of 5 for 3c8501c2-4f21-449b-a62b-d72965b53ccf") == template(
        "retry 4 of 5 for 00000000-4f21-449b-a62b-d72965b53ccf"
    )


def test_parse_exception_forms() -> None:
    assert parse_exception("Task run failed with exception: ValueError('bad row 7') - Retries are exhausted") == (
        "ValueError", "bad row 7")
    assert parse_exception("Traceback (most recent call last):\n  File \"x\", line 1\nKeyError: 'seq_0'") == (
        "KeyError", "'seq_0'")
    assert parse_exception("all good") == (None, None)


def test_empty_logs_still_give_evidence() -> None:
    failed, _ = failed_run()
    ev = build_evidence(failed, [])
    assert ev.root_error_line is None
    assert "nightly-orders" in ev.text
    assert ev.tokens == estimate_tokens(ev.text)
