"""The summarizer's own flow runs, as the reconciler sees them: which failure each one is
for, which are still active, marking a dead one Crashed, and starting a new one."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterExpectedStartTime,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.exceptions import ObjectNotFound
from prefect.states import Crashed

from prefect_failure_insights.defaults import PLUGIN_TAG, SUMMARIZER_DEPLOYMENT, SUMMARIZER_FLOW
from prefect_failure_insights.exceptions import ConfigurationError
from prefect_failure_insights.prefect_api.paging import read_all

ACTIVE = (StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING, StateType.PAUSED, StateType.CANCELLING)
#: The tag on summarizer runs the reconciler started.
RECONCILED_TAG = "reconciled"


def failure_of(run: FlowRun) -> str | None:
    """The failed flow run a summarizer run is for (its ``flow_run_id`` parameter)."""
    value = (run.parameters or {}).get("flow_run_id")
    return str(value) if value else None


async def summarizer_runs(client: PrefectClient, since: datetime) -> list[FlowRun]:
    """Every summarizer run that is still active, and every one expected to start since ``since``."""
    flows = FlowFilter(name=FlowFilterName(any_=[SUMMARIZER_FLOW]))
    active = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=list(ACTIVE))))
    recent = FlowRunFilter(expected_start_time=FlowRunFilterExpectedStartTime(after_=since))
    out: dict[UUID, FlowRun] = {}
    for run_filter in (active, recent):
        for run in await read_all(lambda offset, size, f=run_filter: client.read_flow_runs(
                flow_filter=flows, flow_run_filter=f, limit=size, offset=offset)):
            out[run.id] = run
    return list(out.values())


async def mark_crashed(client: PrefectClient, run: FlowRun, message: str) -> bool:
    """Set a dead summarizer run Crashed (it cannot do so itself); False when it ended meanwhile."""
    try:
        fresh = await client.read_flow_run(run.id)
    except ObjectNotFound:
        return False
    if fresh.state is not None and fresh.state.is_final():
        return False
    await client.set_flow_run_state(run.id, Crashed(message=message), force=True)
    return True


async def summarizer_deployment(client: PrefectClient) -> UUID:
    """The summarizer deployment's id; ConfigurationError when it is not registered."""
    try:
        return (await client.read_deployment_by_name(SUMMARIZER_DEPLOYMENT)).id
    except ObjectNotFound:
        raise ConfigurationError(
            f"No deployment {SUMMARIZER_DEPLOYMENT} on {client.api_url}: start `failure-insights serve`, "
            "or deploy prefect.yaml (`prefect deploy --all`), then reconcile again."
        ) from None


async def start_summarizer(client: PrefectClient, deployment_id: UUID, failed_run_id: str, *, attempt: int) -> FlowRun:
    """A new run of the summarizer deployment for ``failed_run_id``. The idempotency key makes two
    reconcilers (``serve`` and a scheduled one) that decide the same at once start one run, not two."""
    return await client.create_flow_run_from_deployment(
        deployment_id, parameters={"flow_run_id": failed_run_id}, tags=[PLUGIN_TAG, RECONCILED_TAG],
        idempotency_key=f"failure-insights-reconcile-{failed_run_id}-{attempt}")
