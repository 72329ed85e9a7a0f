"""The retry guard, in its order: own flows, deployment runs, still failed, a stored summary of this
failure, TRANSIENT, category, count; and the limits enforced whatever the parameters say (issue 25)."""

from __future__ import annotations

from datetime import datetime, timezone
from uuid import uuid4

import pytest
from prefect.client.schemas.objects import FlowRun, State, StateType

from prefect_failure_insights.defaults import RETRY_MAX_RETRIES_LIMIT, RETRY_STATE_MARK
from prefect_failure_insights.models import Category, Summary, Transience
from prefect_failure_insights.prefect_api.retries import limits, refusal
from prefect_failure_insights.prefect_api.runs import automatic_retries

CATS = ("THIRD_PARTY_SYSTEM",)


def _run(state: StateType = StateType.FAILED, deployment: bool = True, run_count: int = 1) -> FlowRun:
    return FlowRun(id=uuid4(), flow_id=uuid4(), name="brave-otter", deployment_id=uuid4() if deployment else None,
                   state=State(type=state, name=state.value.title()), run_count=run_count)


def _summary(transience: str = "TRANSIENT", category: str = "THIRD_PARTY_SYSTEM", status: str = "llm",
             run_count: int = 1) -> Summary:
    from prefect_failure_insights.testing.samples import failed_run
    from prefect_failure_insights.analysis.compose import compose_summary
    from prefect_failure_insights.analysis.answer import fallback
    from prefect_failure_insights.evidence.builder import build_evidence

    failed, lines = failed_run()
    evidence = build_evidence(failed, lines)
    summary = compose_summary(failed, evidence, fallback(failed, evidence, "no LLM"))
    analysis = summary.analysis.model_copy(update={"transience": Transience(transience),
                                                   "category": Category(category)})
    return summary.model_copy(update={"analysis": analysis, "status": status,
                                      "run": summary.run.model_copy(update={"run_count": run_count})})


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
