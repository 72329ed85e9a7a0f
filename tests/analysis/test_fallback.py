"""The deterministic analysis: the failed task, the error and a category, without an LLM."""

from __future__ import annotations

from prefect_failure_insights.analysis.fallback import deterministic_analysis
from prefect_failure_insights.analysis.matching import classify
from prefect_failure_insights.evidence.builder import build_evidence
from prefect_failure_insights.models import Category, FailedRun, FlowRunInfo, LogLine
from prefect_failure_insights.testing.samples import failed_run


def test_fallback_names_the_task_the_error_and_a_category() -> None:
    failed, lines = failed_run()
    analysis = deterministic_analysis(build_evidence(failed, lines), failed)
    assert analysis.failed_task == "extract_orders-3f1"
    assert "503 Service Unavailable" in analysis.what_happened
    assert "L" in analysis.what_happened
    assert analysis.category is Category.THIRD_PARTY_SYSTEM
    assert any("retries" in step for step in analysis.how_to_fix)


def test_fallback_for_an_oom_crash() -> None:
    run = FlowRunInfo(id="r", name="r", flow_name="big-join", state="Crashed", state_type="CRASHED")
    lines = [LogLine(lineno=1, timestamp="2026-11-20T02:00:00+00:00", level=40,
                     message="Container 'prefect-job' terminated: OOMKilled (exit code 137)")]
    failed = FailedRun(run=run)
    analysis = deterministic_analysis(build_evidence(failed, lines), failed)
    assert analysis.category is Category.WORKFLOW_ENGINE
    assert "memory" in " ".join(analysis.how_to_fix).lower()


def test_fallback_with_nothing_to_go_on_is_unknown_but_still_a_summary() -> None:
    failed = FailedRun(run=FlowRunInfo(id="r", name="r", flow_name="f", state="Failed"))
    analysis = deterministic_analysis(build_evidence(failed, []), failed)
    assert analysis.category is Category.UNKNOWN
    assert analysis.how_to_fix


def test_rules_name_themselves() -> None:
    assert classify("requests.exceptions.HTTPError: 429 Client Error: Too Many Requests").classified_by == "rule:rate-limited"
    assert classify("ModuleNotFoundError: No module named 'acme'").category is Category.WORKFLOW_ENGINE
    assert classify("nothing recognisable").category is Category.UNKNOWN


def _failed(state: str = "Failed", message: str | None = None, tasks: list | None = None,
            run_count: int = 1) -> FailedRun:
    return FailedRun(run=FlowRunInfo(id="r", name="r", flow_name="f", state=state, state_type=state.upper(),
                                     state_message=message, run_count=run_count), task_runs=tasks or [])


def _log(n: int, message: str, level: int = 40, task: str | None = "pull-1") -> LogLine:
    return LogLine(lineno=n, timestamp="2026-11-20T02:00:00+00:00", level=level, message=message,
                   task_run_id=task, task_run_name=task)


def test_a_crash_states_its_reason() -> None:
    failed = _failed("Crashed", "Crash detected! Execution was interrupted by an unexpected exception: "
                                "TerminationSignal: SIGTERM received")
    analysis = deterministic_analysis(build_evidence(failed, []), failed)
    assert "The run crashed: Crash detected! Execution was interrupted" in analysis.what_happened
    assert analysis.category is Category.WORKFLOW_ENGINE


def test_retries_spent_on_a_permanent_error_are_called_out_with_retry_condition_fn() -> None:
    from prefect_failure_insights.models import TaskRunInfo

    task = TaskRunInfo(id="pull-1", name="pull-1", state="Failed", state_type="FAILED", run_count=3,
                       message="HTTPError: 401 Client Error: Unauthorized for url: https://api.example/v1")
    failed = _failed(tasks=[task])
    lines = [_log(1, "Task run failed with exception: HTTPError('401 Client Error: Unauthorized for url: "
                     "https://api.example/v1') - Retries are exhausted\nrequests.exceptions.HTTPError: 401 Client "
                     "Error: Unauthorized for url: https://api.example/v1")]
    analysis = deterministic_analysis(build_evidence(failed, lines), failed)
    assert analysis.how_to_fix[0].startswith("Retries did not help: task 'pull-1' was tried 3 times")
    assert "retry_condition_fn" in analysis.how_to_fix[0]


def test_retries_on_a_transient_error_are_not_called_out() -> None:
    from prefect_failure_insights.models import TaskRunInfo

    task = TaskRunInfo(id="pull-1", name="pull-1", state="Failed", state_type="FAILED", run_count=3,
                       message="HTTPError: 503 Server Error: Service Unavailable")
    failed = _failed(tasks=[task])
    lines = [_log(1, "requests.exceptions.HTTPError: 503 Server Error: Service Unavailable for url: https://x/y")]
    analysis = deterministic_analysis(build_evidence(failed, lines), failed)
    assert not any("Retries did not help" in step for step in analysis.how_to_fix)


def test_the_most_informative_line_is_quoted() -> None:
    from prefect_failure_insights.analysis.fallback import informative_line

    assert informative_line('HTTPError: 400 Bad Request. Response: {"error": {"message": "Field \'amount\' must be '
                            'a positive number"}}') == "Field 'amount' must be a positive number"
    assert informative_line("UniqueViolation: duplicate key value\nDETAIL:  Key (id)=(7) already exists.") == \
        "Key (id)=(7) already exists"
    assert informative_line("KeyError: 'customer_id'. Available columns: order_id, amount, created_at") == \
        "Available columns: order_id, amount, created_at"
    assert informative_line("ValueError: bad") is None


def test_the_matched_cause_gives_its_name_explanation_fix_and_docs() -> None:
    failed = _failed("Crashed")
    lines = [_log(1, "Container 'prefect-job' terminated: OOMKilled (exit code 137)", task=None)]
    analysis = deterministic_analysis(build_evidence(failed, lines), failed)
    assert "Out of memory: " in analysis.root_cause  # (after "Best guess (...)" when the model is unsure)
    assert any(step.startswith("Documentation: https://kubernetes.io/") for step in analysis.how_to_fix)
    assert analysis.transience.value == "INTERMITTENT"


def test_the_fix_names_the_facts_and_no_filler_step() -> None:
    """Issue 26: a renamed CSV column was called a code bug with generic steps, and "Open the failed
    run's logs at the root error line" / "Details: the run's logs around L115" were steps 3 and 4."""
    from prefect_failure_insights.models import TaskRunInfo

    task = TaskRunInfo(id="load-1", name="load_orders-1", state="Failed", state_type="FAILED",
                       message="KeyError: 'customer_id'")
    failed = _failed(tasks=[task])
    lines = [_log(1, "Columns received: cust_id, order_id, amount", level=20, task="load-1"),
             _log(2, "Task run failed with exception: KeyError('customer_id') - Retries are exhausted\n"
                     "Traceback (most recent call last):\n  File \"/opt/flows/orders.py\", line 12, in load_orders\n"
                     "    df['customer_id']\nKeyError: 'customer_id'", task="load-1")]
    analysis = deterministic_analysis(build_evidence(failed, lines), failed)
    fix = "\n".join(analysis.how_to_fix)
    assert "'customer_id'" in fix and "'cust_id'" in fix
    assert not any(s.startswith(("Open the failed run's logs", "Details: the run's logs")) for s in analysis.how_to_fix)
    assert analysis.failed_task == "load-1"


def test_an_error_raised_inside_prefect_says_upgrade_or_report() -> None:
    """Issue 26: a Prefect engine bug (every frame in prefect/) was "a bug in the pipeline's code:
    open the last frame in your code", while the evidence hid that very frame."""
    failed = _failed("Crashed", "Execution was interrupted by an unexpected exception: UnboundLocalError")
    lines = [_log(1, "Crash detected! Execution was interrupted by an unexpected exception: UnboundLocalError: local "
                     "variable 'result' referenced before assignment\nTraceback (most recent call last):\n  File "
                     "\"/usr/local/lib/python3.10/site-packages/prefect/engine.py\", line 1580, in orchestrate_flow_run"
                     "\n    return result\nUnboundLocalError: local variable 'result' referenced before assignment",
                  task=None)]
    evidence = build_evidence(failed, lines)
    analysis = deterministic_analysis(evidence, failed)
    assert "prefect/engine.py" in evidence.text  # the frame is kept in the evidence
    assert "inside prefect" in analysis.root_cause
    assert any(s.startswith("Upgrade prefect") and "engine.py:1580" in s for s in analysis.how_to_fix)
    assert not any("your code" in s and "Open" in s for s in analysis.how_to_fix)


def test_a_crash_names_its_reason_and_the_task_it_stopped() -> None:
    from prefect_failure_insights.models import TaskRunInfo

    task = TaskRunInfo(id="join-1", name="big_join-1", state="Running", state_type="RUNNING")
    failed = FailedRun(run=FlowRunInfo(id="r", name="r", flow_name="f", state="Crashed", state_type="CRASHED",
                                       state_message="Flow run infrastructure exited with non-zero status code 137."),
                       task_runs=[task])
    lines = [_log(1, "Pod prefect-job-x failed. Container 'flow' terminated. Exit Code: 137. Reason: OOMKilled",
                  task=None)]
    analysis = deterministic_analysis(build_evidence(failed, lines), failed)
    assert "OOMKilled" in analysis.what_happened and "137" in "\n".join(analysis.how_to_fix)
