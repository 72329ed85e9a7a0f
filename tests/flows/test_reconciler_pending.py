"""A summarizer run left Pending: dead after 60 s when `serve` executes it in-process (no work pool),
after 10 minutes when a worker may still be starting its infrastructure."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from uuid import uuid4

from prefect.client.schemas.objects import FlowRun
from prefect.states import Pending

from prefect_failure_insights.defaults import RECONCILE_PENDING_SECONDS, RECONCILE_PENDING_SERVED_SECONDS
from prefect_failure_insights.lifecycle.reconciler import is_dead

NOW = datetime(2026, 12, 5, 3, 0, tzinfo=timezone.utc)


def _pending_for(seconds: float, pool: str | None) -> FlowRun:
    state = Pending()
    state.timestamp = NOW - timedelta(seconds=seconds)
    return FlowRun(id=uuid4(), flow_id=uuid4(), name="r", state=state, state_type=state.type, work_pool_name=pool)


def test_a_served_run_left_pending_is_dead_after_a_minute_a_workers_after_ten() -> None:
    assert not is_dead(_pending_for(RECONCILE_PENDING_SERVED_SECONDS - 1, None), set(), NOW)
    assert is_dead(_pending_for(RECONCILE_PENDING_SERVED_SECONDS + 1, None), set(), NOW)
    assert not is_dead(_pending_for(RECONCILE_PENDING_SERVED_SECONDS + 1, "k8s"), set(), NOW)
    assert is_dead(_pending_for(RECONCILE_PENDING_SECONDS + 1, "k8s"), set(), NOW)
