"""Evidence: the root error is found, secrets are gone, the budget is a hard limit."""

from __future__ import annotations

import re

import pytest

from prefect_failure_insights.evidence.builder import EvidenceBuilder, build_evidence
from prefect_failure_insights.evidence.signals import (
    clean_traceback,
    estimate_tokens,
    parse_exception,
    template,
)
from prefect_failure_insights.models import (
    Baseline,
    FailedRun,
    FlowRunInfo,
    LogLine,
    TaskRunInfo,
)
from prefect_failure_insights.testing.samples import (
    RUN_ID,
    VENDOR_TRACEBACK,
    failed_run,
)


def _line(n: int, message: str, level: int = 20, task: str | None = None) -> LogLine:
    return LogLine(lineno=n, timestamp=f"2026-11-20T02:{n // 60 % 60:02d}:{n % 60:02d}+00:00", level=level,
                   message=message, flow_run_id=RUN_ID, task_run_id=task, task_run_name=task)


def _run(state: str = "Failed", message: str | None = None, tasks: list[TaskRunInfo] | None = None) -> FailedRun:
    return FailedRun(run=FlowRunInfo(id=RUN_ID, name="r", flow_name="f", state=state, state_type=state.upper(),
                                     state_message=message), task_runs=tasks or [])


def _root(failed: FailedRun, lines: list[LogLine]) -> int | None:
    return build_evidence(failed, lines).root_error_line


def test_root_error_is_the_failed_tasks_last_attempt_not_the_flow_reraise() -> None:
    failed, lines = failed_run(retries=2)
    ev = build_evidence(failed, lines)
    root = lines[ev.root_error_line - 1]
    assert root.level == 40 and root.task_run_id is not None
    assert "Retries are exhausted" in root.message
    assert ev.failed_task == "extract_orders-3f1"
    assert ev.exception_type == "httpx.HTTPStatusError"
    assert "503 Service Unavailable" in ev.exception_message


def test_planted_secrets_never_reach_the_evidence_and_are_counted_once() -> None:
    failed, lines = failed_run(secrets=True)
    # A secret on the root error line itself, too.
    root = next(ln for ln in lines if "Retries are exhausted" in ln.message)
    root.message = root.message.replace("orders?page=7", "orders?page=7&api_key=RootLineSecret123")
    ev = build_evidence(failed, lines)
    assert "Sup3rS3cret!" not in ev.text and "sk-proj-AbCdEfGh" not in ev.text
    assert "RootLineSecret123" not in ev.text and "RootLineSecret123" not in (ev.root_error or "")
    assert "RootLineSecret123" not in (ev.exception_message or "")
    assert ev.redactions == dict(
        (k, len(re.findall(rf"\[REDACTED:{k}\]", ev.text))) for k in ev.redactions
    )
    assert ev.redaction_count == len(re.findall(r"\[REDACTED:", ev.text))


@pytest.mark.parametrize("budget", [1000, 2000, 6000])
def test_budget_is_a_hard_limit_on_adversarial_input(budget: int) -> None:
    """Regression: a huge root message, a huge state message and many distinct errors overflowed it."""
    huge = "x" * 300_000
    failed = _run(message="Flow run encountered an exception: ValueError: " + "y" * 6000,
                  tasks=[TaskRunInfo(id=f"t{i}", name=f"task-{i}", state="Failed", state_type="FAILED",
                                     message="z" * 5000) for i in range(30)])
    lines = [_line(1, f"Task run failed with exception: ValueError('{huge}') - Retries are exhausted", 40, "t0")]
    lines += [_line(n, f"ERROR distinct failure kind {chr(65 + n % 26)}{n * 7919:x} in module_{n}", 40)
              for n in range(2, 50_000)]
    ev = build_evidence(failed, lines, budget_tokens=budget)
    assert ev.tokens <= budget
    assert ev.root_error_line == 1 and 1 in ev.kept_lines


def test_early_root_error_survives_a_flood_of_later_misleading_errors() -> None:
    failed, lines = failed_run(noise_before=50, noise_after=0)
    n = len(lines)
    extra = [_line(n + i, f"WARNING retrying connection {i} to cache-{i % 7}.internal", level=30)
             for i in range(1, 20_000)]
    extra.append(_line(n + 20_000, "KeyError: 'cleanup_marker'", level=40))
    ev = build_evidence(failed, lines + extra, budget_tokens=2000)
    assert ev.tokens <= 2000
    assert "503 Service Unavailable" in ev.text
    assert ev.root_error_line in ev.kept_lines and ev.root_error_line < n


def test_the_exception_the_run_failed_with_beats_a_tolerated_task_failure() -> None:
    """Regression: a task failure the flow tolerated was chosen over the flow's real KeyError."""
    lines = [
        _line(1, "Task run failed with exception: TimeoutError('slow') - Retries are exhausted", 40, "a"),
        _line(2, "fetched 12 rows"),
        _line(3, "Encountered exception during execution: KeyError('amount')\n" + VENDOR_TRACEBACK.replace(
            "httpx.HTTPStatusError: Server error", "KeyError: 'amount'"), 40),
    ]
    failed = _run(message="Flow run encountered an exception: KeyError: 'amount'")
    assert _root(failed, lines) == 3


def test_flow_exception_ranks_above_an_earlier_plain_error_line() -> None:
    lines = [_line(1, "ERROR could not refresh dashboard cache", 40),
             _line(2, "Encountered exception during execution: RuntimeError('boom')", 40)]
    assert _root(_run(), lines) == 2


def test_crashed_run_without_traceback_uses_the_infrastructure_signal() -> None:
    lines = [
        _line(1, "Beginning flow run 'r' for flow 'f'"),
        _line(2, "ERROR retrying metrics push", 40),
        _line(3, "Job 'r-abc': Container 'prefect-job' was terminated: OOMKilled (exit code 137)", 40),
        _line(4, "Reported flow run 'x' as crashed: Flow run infrastructure exited with non-zero status code 137.", 40),
    ]
    assert _root(_run("Crashed"), lines) == 3


def test_consequences_are_not_chosen_as_the_root_error() -> None:
    lines = [
        _line(1, "Beginning flow run"),
        _line(2, "Upstream task run 'a' did not reach a 'COMPLETED' state", level=40),
        _line(3, "ValueError: column 'amount' has 17 nulls", level=40),
        _line(4, "Finished in state Failed('Flow run encountered an exception')", level=40),
    ]
    assert _root(_run(), lines) == 3


def test_earliest_failed_task_wins_over_later_victims() -> None:
    lines = [
        _line(1, "Task run failed with exception: ValueError('bad schema') - Retries are exhausted", 40, "a"),
        _line(2, "Task run failed with exception: RuntimeError('no input') - Retries are exhausted", 40, "b"),
    ]
    assert _root(_run(), lines) == 1


def test_errors_new_since_the_last_good_run_are_shown_first() -> None:
    noise = [_line(n, f"ERROR known flaky warning-as-error {n % 3}", 40) for n in range(1, 400)]
    new = [_line(400, "ERROR schema drift: column 'region' missing from source", 40)]
    root = [_line(401, "Encountered exception during execution: RuntimeError('load failed')", 40)]
    baseline = Baseline(flow_run_id="g", flow_run_name="good-run",
                        differences=["deployment version: v12 -> v13"],
                        templates=[template("ERROR known flaky warning-as-error 1")])
    ev = build_evidence(_run(), noise + new + root, budget_tokens=600, baseline=baseline)
    assert "schema drift" in ev.text and "not in the last successful run" in ev.text
    assert "deployment version: v12 -> v13" in ev.text


def test_bounded_state_for_a_long_log() -> None:
    builder = EvidenceBuilder(_run())
    for n in range(1, 200_001):
        builder.add(_line(n, f"INFO step {n} ok"))
    assert len(builder.tail) <= 200 and len(builder.head) <= 5 and not builder.templates
    assert builder.finish().total_lines == 200_000


def test_clean_traceback_drops_framework_frames_and_carets() -> None:
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
    assert parse_exception("Flow run encountered an exception: KeyError: 'amount'")[0] == "KeyError"
    assert parse_exception("all good") == (None, None)


def test_empty_logs_still_give_evidence() -> None:
    failed, _ = failed_run()
    ev = build_evidence(failed, [])
    assert ev.root_error_line is None
    assert "nightly-orders" in ev.text
    assert ev.tokens == estimate_tokens(ev.text)


def test_differences_from_the_last_good_run_name_parameters_but_never_show_their_values() -> None:
    from datetime import datetime, timezone
    from uuid import uuid4

    from prefect.client.schemas.objects import FlowRun

    from prefect_failure_insights.prefect_api.baseline import differences

    now = datetime.now(timezone.utc)
    common = dict(flow_id=uuid4(), deployment_id=uuid4(), start_time=now)
    good = FlowRun(**common, name="good", deployment_version="v12", work_pool_name="k8s",
                   parameters={"day": "2026-11-19", "dsn_password": "old-pw", "limit": 10},
                   job_variables={"image": "etl:1.4", "env": {"TOKEN": "a"}})
    bad = FlowRun(**common, name="bad", deployment_version="v13", work_pool_name="k8s",
                  parameters={"day": "2026-11-20", "dsn_password": "new-pw", "limit": 10},
                  job_variables={"image": "etl:1.5", "env": {"TOKEN": "b"}})
    lines = differences(good, bad)
    assert "deployment version: v12 -> v13" in lines
    assert "parameters with other values: day, dsn_password" in lines
    assert "job variable image: 'etl:1.4' -> 'etl:1.5'" in lines
    assert "job variable env changed" in lines
    assert not any("pw" in ln or "TOKEN" in ln for ln in lines)


def test_repeated_templates_are_collapsed_in_the_tail_and_the_traceback_survives() -> None:
    """20,000 near-identical INFO lines then a traceback: one example line with a count, and
    the root error with its whole traceback in the evidence."""
    lines = [_line(n, f"scanned partition {n} of 20000 ({n * 7 % 900} rows)", task="scan") for n in range(1, 20_001)]
    tb = "\n".join(["Traceback (most recent call last):", *(f'  File "/app/step{i}.py", line {i}, in f{i}\n    x()'
                                                            for i in range(12)),
                    "ValueError: partition 20000 has no header row"])
    lines.append(_line(20_001, f"Task run failed with exception: ValueError('partition 20000 has no header row') - "
                               f"Retries are exhausted\n{tb}", level=40, task="scan"))
    ev = build_evidence(_run(), lines)
    assert ev.root_error_line == 20_001
    for part in tb.split("\n"):
        assert part.strip() in ev.text
    scanned = [ln for ln in ev.text.split("\n") if "scanned partition" in ln]
    assert len(scanned) <= 3, scanned
    assert re.search(r"\(x\d+ similar lines, L\d+-L\d+\)", ev.text)


def test_budget_left_gives_back_what_was_cut_before_anything_is_cut() -> None:
    """A long infrastructure line and a multi-line error message are kept whole while budget remains."""
    eviction = ("Pod 'etl-7f9c' was evicted: The node was low on resource: memory. Threshold quantity: 100Mi, "
                "available: 92Mi. Container etl was using 14Gi, request is 2Gi, has larger consumption of memory. "
                + "x" * 200 + " END-OF-REASON")
    multi = "Source failed:\n" + "\n".join(f"  tail line {i}" for i in range(30)) + "\n  429 Too Many Requests END"
    lines = [_line(1, "starting"), _line(2, eviction, level=30), _line(3, multi, level=40, task="sync"),
             _line(4, "Finished in state Failed('boom')", level=40, task="sync")]
    ev = build_evidence(_run(), lines, budget_tokens=3000)
    assert "END-OF-REASON" in ev.text
    assert "429 Too Many Requests END" in ev.text and "tail line 15" in ev.text


def test_context_before_the_root_error_skips_repeats_and_reaches_further_back() -> None:
    lines = [_line(1, "connected to warehouse acme_wh", task="load")]
    lines += [_line(n, f"retrying statement {n}", task="load") for n in range(2, 40)]
    lines.append(_line(40, "Task run failed with exception: RuntimeError('load failed') - Retries are exhausted\n"
                           "RuntimeError: load failed", level=40, task="load"))
    ev = build_evidence(_run(), lines)
    assert "connected to warehouse acme_wh" in ev.text
    assert len([ln for ln in ev.text.split("\n") if "retrying statement" in ln]) <= 2


def test_cited_block_gives_a_line_with_its_continuation() -> None:
    from prefect_failure_insights.models.evidence import cited_block

    text = "L1 00:00 INFO a\nL7 00:01 ERROR boom\n        Traceback\n        ValueError: x\nL9 00:02 INFO b"
    assert cited_block(text, 7) == "L7 00:01 ERROR boom\n        Traceback\n        ValueError: x"
    assert cited_block(text, 8) is None


def test_other_tools_error_markers_at_info_are_errors() -> None:
    """Issue 26: a shell task streaming Maven, dbt, psql or Spark output logs at INFO; their own
    markers count as errors (colours removed), plain INFO lines and zero counts do not."""
    from prefect_failure_insights.evidence.signals import is_error

    for line in ("[ERROR] Failed to execute goal org.apache.maven.plugins:maven-surefire-plugin:2.22.2:test",
                 "\x1b[1;31mERROR\x1b[m] /src/Main.java:[155,27] error: incompatible types",
                 "ERROR:  relation \"orders\" does not exist", "12:00:01  1 of 3 FAILED test not_null_orders_id",
                 "12:00:01  Failure in test not_null_orders_id", "Caused by: java.lang.OutOfMemoryError: Java heap space",
                 "Database Error in model orders (models/orders.sql)", "[INFO] BUILD FAILURE"):
        assert is_error(20, line), line
    for line in ("Completed with 0 errors", "Done. PASS=3 WARN=0 ERROR=0 SKIP=0", "0 errors", "INFO Loaded 12 rows"):
        assert not is_error(20, line), line


def test_a_traceback_raised_inside_prefect_keeps_its_frames() -> None:
    from prefect_failure_insights.evidence.signals import clean_traceback

    only_prefect = ("Traceback (most recent call last):\n  File \"/usr/lib/python3.11/site-packages/prefect/"
                    "task_engine.py\", line 812, in call_task_fn\n    result = fn()\nAssertionError")
    assert "task_engine.py" in clean_traceback(only_prefect)
    mixed = ("Traceback (most recent call last):\n  File \"/usr/lib/python3.11/site-packages/prefect/task_engine.py\","
             " line 812, in call_task_fn\n    result = fn()\n  File \"/opt/flows/etl.py\", line 3, in load\n"
             "    x()\nValueError: bad")
    assert "task_engine.py" not in clean_traceback(mixed) and "etl.py" in clean_traceback(mixed)
