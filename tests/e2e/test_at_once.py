"""A summary starts at the failure event itself; the automation's run for it is dropped.

Measured, the server's run-deployment action sometimes took 2.5-6 s to create the summarizer
run (its own client's 2 s backoff on a busy SQLite server's 503); `serve` starts the run
from the event instead (`serve.at_once`).
"""

from __future__ import annotations

from datetime import datetime, timezone
from uuid import uuid4

import pytest
from prefect.events.schemas.events import Event

from prefect_failure_insights.automations.failure_trigger import AUTOMATION_NAME
from prefect_failure_insights.defaults import SUMMARIZER_DEPLOYMENT
from prefect_failure_insights.serve.at_once import FailureEvents

from .conftest import wait_for

pytestmark = pytest.mark.e2e


@pytest.mark.core
def test_each_failure_has_one_summarizer_run_started_at_its_event(e2e) -> None:
    started = datetime.now(timezone.utc)
    failures = [e2e.run_pipeline("vendor") for _ in range(2)]
    engine = e2e.sqlite_engine()
    for run_id in failures:
        e2e.wait_for_row(engine, run_id)
    # The automation has acted on both failures (its runs were created, then dropped by serve).
    wait_for(lambda: len(e2e.automation_actions(AUTOMATION_NAME, started)) >= len(failures), 60)

    def one_each() -> dict | None:
        found = {run_id: e2e.summarizer_runs(run_id) for run_id in failures}
        done = all(len(runs) == 1 and runs[0].state and runs[0].state.is_final() for runs in found.values())
        return found if done else None

    runs = wait_for(one_each, 60)
    assert all(found[0].state.is_completed() for found in runs.values()), runs
    # Usually the start at once wins (the failure event precedes the automation run's event).
    keys = [found[0].idempotency_key for found in runs.values()]
    assert any(k.startswith("failure-insights: at once for event") for k in keys), keys


def _event(name: str, flow: str, state_type: str) -> Event:
    run_id = uuid4()
    return Event(event=name, resource={"prefect.resource.id": f"prefect.flow-run.{run_id}",
                                       "prefect.state-name": name.rsplit(".", 1)[1], "prefect.state-type": state_type},
                 related=[{"prefect.resource.id": f"prefect.flow.{uuid4()}", "prefect.resource.role": "flow",
                           "prefect.resource.name": flow}])


def test_the_installed_automation_decides_which_failures_start_at_once(e2e) -> None:
    class Summarizer:
        deployment_id = None

    async def covered(client, *events: Event) -> list[bool]:
        Summarizer.deployment_id = (await client.read_deployment_by_name(SUMMARIZER_DEPLOYMENT)).id
        watcher = FailureEvents(Summarizer())
        return [await watcher.covered(client, event) == event.resource.id.removeprefix("prefect.flow-run.")
                for event in events]

    events = [_event("prefect.flow-run.Failed", "etl", "FAILED"), _event("prefect.flow-run.Crashed", "etl", "CRASHED"),
              _event("prefect.flow-run.TimedOut", "etl", "FAILED"),
              _event("prefect.flow-run.ContractViolated", "etl", "FAILED"),
              _event("prefect.flow-run.Completed", "etl", "COMPLETED"),
              _event("prefect.flow-run.Failed", "summarize-failure", "FAILED")]
    assert e2e.call(covered, *events) == [True, True, True, True, False, False]

    async def set_enabled(client, enabled: bool) -> None:
        (automation,) = await client.read_automations_by_name(AUTOMATION_NAME)
        await (client.resume_automation if enabled else client.pause_automation)(automation.id)

    e2e.call(set_enabled, False)
    try:  # disabled in the UI: no summary starts at once either
        assert e2e.call(covered, events[0]) == [False]
    finally:
        e2e.call(set_enabled, True)
    wait_for(lambda: e2e.call(covered, events[0]) == [True], 10)


def test_an_automation_run_another_replica_has_claimed_is_not_dropped(e2e) -> None:
    """Two `serve` replicas: one claims the automation's run (Pending) while the other, which started
    the summary at once, drops its duplicate: the drop leaves it alone (deleted under the first
    replica's feet, the run hung that replica's executor)."""
    from prefect.states import Pending
    from prefect.utilities.engine import propose_state

    from prefect_failure_insights.flows.on_failure_summary import summarize_failure
    from prefect_failure_insights.serve.executor import InProcessExecutor

    async def race(client):
        deployment = await client.read_deployment_by_name(SUMMARIZER_DEPLOYMENT)
        executor = InProcessExecutor(summarize_failure, deployment.id, at_once=True)
        claimed, free = [await client.create_flow_run_from_deployment(deployment.id, parameters={
            "flow_run_id": str(uuid4())}, state=_scheduled_later()) for _ in range(2)]
        await propose_state(client, Pending(), flow_run_id=claimed.id)  # the other replica's claim
        dropped = [await executor._drop(client, claimed), await executor._drop(client, free)]
        still = (await client.read_flow_run(claimed.id)).state_name
        await client.delete_flow_run(claimed.id)
        return dropped, still

    dropped, still = e2e.call(race)
    assert dropped == [False, True] and still == "Pending"


def _scheduled_later():
    """Scheduled an hour from now: `serve`'s own executor leaves it alone meanwhile."""
    from datetime import timedelta

    from prefect.states import Scheduled

    return Scheduled(scheduled_time=datetime.now(timezone.utc) + timedelta(hours=1))
