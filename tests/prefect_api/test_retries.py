"""The retry guard, in its order: own flows, deployment runs, still failed, a stored summary of this
failure, TRANSIENT and the category or a crash of the infrastructure, count; the limits enforced
whatever the parameters say (issue 25); and a decision naming its rule for every failure (issue 29)."""

from __future__ import annotations

from datetime import datetime, timezone
from uuid import uuid4

import pytest
from prefect.client.schemas.objects import FlowRun, State, StateType

from prefect_failure_insights.defaults import RETRY_MAX_RETRIES_LIMIT, RETRY_STATE_MARK
from prefect_failure_insights.models import Category, RetryDecision, RetryPolicy, Summary, Transience
from prefect_failure_insights.prefect_api.retries import decide, limits, retry_note
from prefect_failure_insights.prefect_api.runs import automatic_retries

CATS = ("THIRD_PARTY_SYSTEM",)
SIGTERM = "Execution was aborted by a termination signal."  # prefect/states.py:220


def _run(state: StateType = StateType.FAILED, deployment: bool = True, run_count: int = 1,
         message: str | None = None, name: str | None = None) -> FlowRun:
    return FlowRun(id=uuid4(), flow_id=uuid4(), name="brave-otter", deployment_id=uuid4() if deployment else None,
                   state=State(type=state, name=name or state.value.title(), message=message), run_count=run_count)


def refusal(run, flow, states, *, summary, max_retries, categories, crashed=False, oom=False) -> str | None:
    """Why the guard refuses, or None when it retries."""
    decision = decide(run, flow, states, summary=summary, policy=RetryPolicy(
        max_retries=max_retries, delay_s=0, categories=tuple(categories), crashed=crashed, oom=oom))
    assert decision.reason and f"(rule {decision.rule})" in decision.reason  # every decision names its rule
    return None if decision.retried else decision.reason


def _summary(transience: str = "TRANSIENT", category: str = "THIRD_PARTY_SYSTEM", status: str = "llm",
             run_count: int = 1, evidence_text: str | None = None) -> Summary:
    from prefect_failure_insights.testing.samples import failed_run
    from prefect_failure_insights.analysis.compose import compose_summary
    from prefect_failure_insights.analysis.answer import fallback
    from prefect_failure_insights.evidence.builder import build_evidence

    failed, lines = failed_run()
    evidence = build_evidence(failed, lines)
    summary = compose_summary(failed, evidence, fallback(failed, evidence, "no LLM"))
    analysis = summary.analysis.model_copy(update={"transience": Transience(transience),
                                                   "category": Category(category)})
    update = {"analysis": analysis, "status": status, "run": summary.run.model_copy(update={"run_count": run_count})}
    if evidence_text is not None:
        update["evidence"] = summary.evidence.model_copy(update={"text": evidence_text})
    return summary.model_copy(update=update)


def _ours(n: int) -> list[State]:
    return [State(type=StateType.SCHEDULED, name="AwaitingRetry", message=f"{RETRY_STATE_MARK} {i + 1} of 3: x",
                  timestamp=datetime.now(timezone.utc)) for i in range(n)]


def test_a_failed_transient_vendor_failure_of_a_deployment_is_retried() -> None:
    assert refusal(_run(), "etl", [], summary=_summary(), max_retries=1, categories=CATS) is None
    assert refusal(_run(StateType.CRASHED), "etl", [], summary=_summary(), max_retries=1, categories=CATS) is None


@pytest.mark.parametrize(("run", "flow", "states", "summary", "why"), [
    (_run(), "summarize-failure", [], _summary(), "plugin's own flows"),
    (_run(), "retry-transient-failure", [], _summary(), "plugin's own flows"),
    (_run(deployment=False), "etl", [], _summary(), "not a deployment's run"),
    (_run(StateType.SCHEDULED), "etl", [], _summary(), "retried or resolved meanwhile"),
    (_run(StateType.COMPLETED), "etl", [], _summary(), "retried or resolved meanwhile"),
    (_run(), "etl", [], None, "no stored summary"),
    (_run(), "etl", [], _summary(status="provisional"), "still provisional"),
    (_run(run_count=2), "etl", [], _summary(run_count=1), "of an earlier attempt"),
    (_run(), "etl", [], _summary("PERMANENT"), "not TRANSIENT"),
    (_run(), "etl", [], _summary("INTERMITTENT"), "not TRANSIENT"),
    (_run(), "etl", [], _summary(category="INPUT_DATA_QUALITY"), "not one retried"),
    (_run(), "etl", _ours(1), _summary(), "1 of 1 automatic retry used"),
])
def test_the_guard_refuses_with_its_reason(run, flow, states, summary, why) -> None:
    reason = refusal(run, flow, states, summary=summary, max_retries=1, categories=CATS)
    assert reason is not None and why in reason


def test_a_forged_event_names_a_run_and_nothing_more() -> None:
    """A forged summary event (any API client can emit one) names a run with no stored summary, or
    one whose stored summary says PERMANENT: the flow decides from the store, and refuses."""
    assert "no stored summary" in refusal(_run(), "etl", [], summary=None, max_retries=3, categories=CATS)
    assert "not TRANSIENT" in refusal(_run(), "etl", [], summary=_summary("PERMANENT"), max_retries=3,
                                      categories=CATS)


def test_the_limits_are_enforced_whatever_the_parameters_say() -> None:
    """max_retries above the limit was only refused at `retry install`; a run of the deployment with
    max_retries=1000 now gets the limit."""
    assert limits(1000, 10**9) == (RETRY_MAX_RETRIES_LIMIT, 86400.0)
    assert limits(-5, -1) == (0, 0.0)
    states = _ours(RETRY_MAX_RETRIES_LIMIT)
    assert "used already" in refusal(_run(), "etl", states, summary=_summary(), max_retries=1000, categories=CATS)


def test_only_our_own_retries_count() -> None:
    others = [State(type=StateType.SCHEDULED, name="AwaitingRetry", message="Retry from the UI"),
              State(type=StateType.SCHEDULED, name="AwaitingRetry", message=None),  # a flow's own retries
              State(type=StateType.FAILED, name="Failed", message=f"{RETRY_STATE_MARK} 1 of 1")]
    assert automatic_retries(others) == 0 and automatic_retries([*others, *_ours(2)]) == 2
    assert refusal(_run(), "etl", [*others, *_ours(2)], summary=_summary(), max_retries=3, categories=CATS) is None


# -- crashed runs (issue 29) ------------------------------------------------------------------

def _crash(message: str = SIGTERM, name: str = "Crashed") -> FlowRun:
    return _run(StateType.CRASHED, message=message, name=name)


def test_a_run_its_infrastructure_crashed_is_retried_with_crashed_on() -> None:
    unknown = _summary("UNKNOWN", "WORKFLOW_ENGINE")
    decision = decide(_crash(), "etl", [], summary=unknown,
                      policy=RetryPolicy(max_retries=1, delay_s=0, categories=CATS, crashed=True))
    assert decision.retried and decision.rule == "infra-sigterm" and decision.retries == 1
    assert decision.reason == "crashed: terminated by its infrastructure (SIGTERM) (rule infra-sigterm)"
    assert decision.transience == "UNKNOWN" and decision.attempt == 1 and decision.max_retries == 1
    # Decided by the state's type, whatever a user or Prefect named it.
    assert refusal(_crash(name="Preempted"), "etl", [], summary=unknown, max_retries=1, categories=CATS,
                   crashed=True) is None


def test_the_evidence_names_the_cause_when_the_state_message_does_not() -> None:
    """A Kubernetes eviction: the state says only that the process exited; the observer's log line says why."""
    evicted = _summary("UNKNOWN", "WORKFLOW_ENGINE", evidence_text="L7 Pod was evicted: The pod was evicted from its node.")
    decision = decide(_crash("Flow run infrastructure exited with non-zero status code -1."), "etl", [],
                      summary=evicted, policy=RetryPolicy(max_retries=1, delay_s=0, categories=CATS, crashed=True))
    assert decision.retried and decision.reason == "crashed: evicted by the infrastructure (rule infra-evicted)"


@pytest.mark.parametrize(("message", "crashed", "oom", "why"), [
    (SIGTERM, False, False, "retried only with `retry install --crashed`"),
    ("Flow run process exited with non-zero status code -9.", True, False, "only with `retry install --crashed --oom`"),
    ("Container 'prefect-job' was killed due to out-of-memory (OOMKilled)", True, False, "--crashed --oom"),
    ("Flow run process exited after a cancellation request, but the runner could not durably persist a Cancelled "
     "terminal state.", True, True, "never retried automatically"),
    ("Execution was interrupted by an unexpected exception: KeyError: 'x'", True, True, "no crash rule matched"),
])
def test_crashes_are_refused_with_the_rule_that_says_why(message: str, crashed: bool, oom: bool, why: str) -> None:
    reason = refusal(_crash(message), "etl", [], summary=_summary("UNKNOWN", "WORKFLOW_ENGINE"), max_retries=1,
                     categories=CATS, crashed=crashed, oom=oom)
    assert reason is not None and why in reason, reason


def test_out_of_memory_crashes_are_retried_with_oom() -> None:
    assert refusal(_crash("Flow run process exited with non-zero status code -9."), "etl", [],
                   summary=_summary("UNKNOWN"), max_retries=1, categories=CATS, crashed=True, oom=True) is None


def test_crashed_retries_keep_every_other_step_of_the_guard() -> None:
    unknown = _summary("UNKNOWN")
    for run, flow, states, summary, why in [
        (_crash(), "summarize-failure", [], unknown, "plugin's own flows"),
        (_run(StateType.CRASHED, deployment=False, message=SIGTERM), "etl", [], unknown, "not a deployment's run"),
        (_run(StateType.SCHEDULED, message=SIGTERM), "etl", [], unknown, "retried or resolved meanwhile"),
        (_crash(), "etl", [], None, "no stored summary"),
        (_crash(), "etl", [], _summary("UNKNOWN", status="provisional"), "still provisional"),
        (_crash(), "etl", _ours(1), unknown, "1 of 1 automatic retry used"),
    ]:
        reason = refusal(run, flow, states, summary=summary, max_retries=1, categories=CATS, crashed=True, oom=True)
        assert reason is not None and why in reason, (why, reason)


def test_a_failed_run_is_never_retried_for_its_crash_words() -> None:
    """The crash rules are for CRASHED runs only: a Failed run whose logs mention SIGTERM is decided by its transience."""
    reason = refusal(_run(message=SIGTERM), "etl", [], summary=_summary("PERMANENT", evidence_text="L1 got SIGTERM"),
                     max_retries=1, categories=CATS, crashed=True, oom=True)
    assert reason is not None and "its failure is PERMANENT, not TRANSIENT" in reason and "(rule not-transient)" in reason


def test_the_retry_note_in_the_state_history_starts_with_the_mark_and_the_count() -> None:
    decision = RetryDecision(decision="retried", rule="infra-sigterm", reason="crashed: x (rule infra-sigterm)",
                             retries=1, max_retries=2, attempt=1)
    note = retry_note(decision, "Vendor down")
    assert note.startswith(f"{RETRY_STATE_MARK} 1 of 2: crashed: x (rule infra-sigterm)") and len(note) <= 1000
    assert automatic_retries([State(type=StateType.SCHEDULED, name="AwaitingRetry", message=note)]) == 1
