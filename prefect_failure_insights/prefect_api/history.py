"""What happened after earlier similar failures, read from Prefect: the resolution history.

For each earlier failure (its run id and when it failed), in order:

1. its run is Completed now: a **retry** fixed it, failure-insights' own (an AwaitingRetry state
   carrying `RETRY_STATE_MARK` in its history) or someone's (the UI's Retry, a flow's retries);
2. else the first run of its deployment that started after the failure and completed: the
   **next run** fixed it, and what differed between the two runs is named (deployment and flow
   version, the names of the parameters and job variables that changed, the work queue; never a
   parameter's value, which may be a secret);
3. else it is still **open**; **unknown** when its run is gone from the server (retention).

Four API calls at most per earlier failure; `SIMILAR_LINKS` (3) of them per summary.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterDeploymentId,
    FlowRunFilterStartTime,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.client.schemas.sorting import FlowRunSort
from prefect.exceptions import ObjectNotFound

from prefect_failure_insights.models import Resolution, SimilarRun
from prefect_failure_insights.prefect_api.runs import automatic_retries

#: At most this many changed parameter or job-variable names are named.
CHANGED_NAMES = 5


def _changed(before: Mapping | None, after: Mapping | None) -> list[str]:
    before, after = dict(before or {}), dict(after or {})
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


def changes(failed: FlowRun, completed: FlowRun) -> list[str]:
    """What differs between the failed run and the deployment's run that completed after it, in words."""
    out = []
    for label, a, b in (("deployment version", failed.deployment_version, completed.deployment_version),
                        ("flow version", failed.flow_version, completed.flow_version),
                        ("work queue", failed.work_queue_name, completed.work_queue_name)):
        if a != b and b is not None:
            out.append(f"{label} {a or '(none)'} → {b}")
    for label, a, b in (("parameters", failed.parameters, completed.parameters),
                        ("job variables", failed.job_variables, completed.job_variables)):
        names = _changed(a, b)
        if names:
            more = f" and {len(names) - CHANGED_NAMES} more" if len(names) > CHANGED_NAMES else ""
            out.append(f"{label} changed: {', '.join(names[:CHANGED_NAMES])}{more}")
    return out


async def next_completed_run(client: PrefectClient, failed: FlowRun, after: datetime) -> FlowRun | None:
    """The first run of ``failed``'s deployment that started after ``after`` and completed."""
    if failed.deployment_id is None:
        return None
    found = await client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            deployment_id=FlowRunFilterDeploymentId(any_=[failed.deployment_id]),
            start_time=FlowRunFilterStartTime(after_=after),
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.COMPLETED]))),
        sort=FlowRunSort.START_TIME_ASC, limit=1)
    return next((r for r in found if r.id != failed.id), None)


async def resolution(client: PrefectClient, earlier: SimilarRun, correction: str | None = None) -> Resolution:
    """What happened after the earlier failure ``earlier``."""
    base = {"flow_run_id": earlier.flow_run_id, "failed_at": earlier.failed_at, "correction": correction}
    try:
        run = await client.read_flow_run(UUID(earlier.flow_run_id))
    except (ObjectNotFound, ValueError):
        return Resolution(outcome="unknown", **base)
    if run.state is not None and run.state.type == StateType.COMPLETED:
        states = await client.read_flow_run_states(run.id)
        return Resolution(outcome="retry", automatic=automatic_retries(states) > 0,
                          resolved_at=run.end_time or run.state.timestamp, resolved_by_run_id=str(run.id), **base)
    after = earlier.failed_at or run.end_time or run.expected_start_time
    completed = await next_completed_run(client, run, after) if after is not None else None
    if completed is None:
        return Resolution(outcome="open", **base)
    return Resolution(outcome="next_run", resolved_at=completed.end_time, resolved_by_run_id=str(completed.id),
                      changes=changes(run, completed), **base)


async def resolution_history(client: PrefectClient, earlier: list[SimilarRun],
                             corrections: Mapping[str, str] | None = None) -> list[Resolution]:
    """What happened after each earlier failure, newest failure first. ``corrections``: the team's
    correction of a run's category, by run id."""
    found = [await resolution(client, e, (corrections or {}).get(e.flow_run_id)) for e in earlier]
    return sorted(found, key=lambda r: r.failed_at.timestamp() if r.failed_at else 0.0, reverse=True)
