"""The retry guard, in its order: own flows, deployment runs, still failed, TRANSIENT, category, count."""

from __future__ import annotations

from datetime import datetime, timezone
from uuid import uuid4

import pytest
from prefect.client.schemas.objects import FlowRun, State, StateType

from prefect_failure_insights.defaults import RETRY_STATE_MARK
from prefect_failure_insights.prefect_api.retries import refusal
from prefect_failure_insights.prefect_api.runs import automatic_retries

CATS = ("THIRD_PARTY_SYSTEM",)


def _run(state: StateType = StateType.FAILED, deployment: bool = True) -> FlowRun:
    return FlowRun(id=uuid4(), flow_id=uuid4(), name="brave-otter", deployment_id=uuid4() if deployment else None,
                   state=State(type=state, name=state.value.title()))


def _ours(n: int) -> list[State]:
    return [State(type=StateType.SCHEDULED, name="AwaitingRetry", message=f"{RETRY_STATE_MARK} {i + 1} of 3: x",
                  timestamp=datetime.now(timezone.utc)) for i in range(n)]


def test_a_failed_transient_vendor_failure_of_a_deployment_is_retried() -> None:
    assert refusal(_run(), "etl", [], max_retries=1, transience="TRANSIENT", category="THIRD_PARTY_SYSTEM",
                   categories=CATS) is None
    assert refusal(_run(StateType.CRASHED), "etl", [], max_retries=1, transience="TRANSIENT",
                   category="THIRD_PARTY_SYSTEM", categories=CATS) is None


@pytest.mark.parametrize(("run", "flow", "states", "transience", "category", "why"), [
    (_run(), "summarize-failure", [], "TRANSIENT", "THIRD_PARTY_SYSTEM", "plugin's own flows"),
    (_run(), "retry-transient-failure", [], "TRANSIENT", "THIRD_PARTY_SYSTEM", "plugin's own flows"),
    (_run(deployment=False), "etl", [], "TRANSIENT", "THIRD_PARTY_SYSTEM", "not a deployment's run"),
    (_run(StateType.SCHEDULED), "etl", [], "TRANSIENT", "THIRD_PARTY_SYSTEM", "retried or resolved meanwhile"),
    (_run(StateType.COMPLETED), "etl", [], "TRANSIENT", "THIRD_PARTY_SYSTEM", "retried or resolved meanwhile"),
    (_run(), "etl", [], "PERMANENT", "THIRD_PARTY_SYSTEM", "not TRANSIENT"),
    (_run(), "etl", [], "INTERMITTENT", "THIRD_PARTY_SYSTEM", "not TRANSIENT"),
    (_run(), "etl", [], "TRANSIENT", "INPUT_DATA_QUALITY", "not one retried"),
    (_run(), "etl", _ours(1), "TRANSIENT", "THIRD_PARTY_SYSTEM", "1 of 1 automatic retry used"),
])
def test_the_guard_refuses_with_its_reason(run, flow, states, transience, category, why) -> None:
    reason = refusal(run, flow, states, max_retries=1, transience=transience, category=category, categories=CATS)
    assert reason is not None and why in reason


def test_only_our_own_retries_count() -> None:
    others = [State(type=StateType.SCHEDULED, name="AwaitingRetry", message="Retry from the UI"),
              State(type=StateType.SCHEDULED, name="AwaitingRetry", message=None),  # a flow's own retries
              State(type=StateType.FAILED, name="Failed", message=f"{RETRY_STATE_MARK} 1 of 1")]
    assert automatic_retries(others) == 0 and automatic_retries([*others, *_ours(2)]) == 2
    assert refusal(_run(), "etl", [*others, *_ours(2)], max_retries=3, transience="TRANSIENT",
                   category="THIRD_PARTY_SYSTEM", categories=CATS) is None
