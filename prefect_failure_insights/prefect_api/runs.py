"""Reading a failed run through the Prefect client: the run, its root, subflows, task runs.

Names and state messages are redacted here, where they enter (run and task names are
often templated from parameters): by the models' `Redacted` fields for the patterns, and
by the workspace's `Redactor`, when one is given, for the values of its Secret blocks. The Prefect client retries transient API errors
itself (``PREFECT_CLIENT_MAX_RETRIES``), so nothing here retries on top of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterParentFlowRunId,
    TaskRunFilter,
    TaskRunFilterFlowRunId,
    TaskRunFilterState,
    TaskRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, State, StateType
from prefect.client.schemas.sorting import TaskRunSort
from prefect.exceptions import ObjectNotFound

from prefect_failure_insights.defaults import OWN_FLOWS, RETRY_STATE_MARK
from prefect_failure_insights.redaction import Redactor
from prefect_failure_insights.exceptions import RunNotFailed, RunNotFound
from prefect_failure_insights.models import FailedRun, FlowRunInfo, Target, TaskRunInfo
from prefect_failure_insights.prefect_api.paging import pages, read_all

FAILED_TYPES = [StateType.FAILED, StateType.CRASHED]
TERMINAL_TYPES = {StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED}
MAX_SUBFLOW_DEPTH = 20


_OWN = f"runs of {', '.join(OWN_FLOWS)} are never summarized (that would loop)"


def automatic_retries(states: Iterable[State]) -> int:
    """How many times failure-insights retried a run, from its state history: the AwaitingRetry
    states whose message carries `RETRY_STATE_MARK` (a flow's own retries and the UI's do not)."""
    return sum(1 for s in states if s.name == "AwaitingRetry" and (s.message or "").startswith(RETRY_STATE_MARK))


def _redactor(redactor: Redactor | None):
    return redactor.redact if redactor is not None else (lambda text: text)


async def flow_run_info(client: PrefectClient, run: FlowRun, names: dict[UUID, str],
                        *, redactor: Redactor | None = None) -> FlowRunInfo:
    """The facts of ``run``, redacted; ``names`` caches flow and deployment names by id across calls."""
    r = _redactor(redactor)
    if run.flow_id not in names:
        names[run.flow_id] = (await client.read_flow(run.flow_id)).name
    deployment = None
    if run.deployment_id:
        if run.deployment_id not in names:
            try:
                names[run.deployment_id] = (await client.read_deployment(run.deployment_id)).name
            except ObjectNotFound:  # deleted since the run
                names[run.deployment_id] = ""
        if names[run.deployment_id]:
            deployment = f"{names[run.flow_id]}/{names[run.deployment_id]}"
    state = run.state
    return FlowRunInfo(
        id=str(run.id),
        name=r(run.name),
        flow_name=names[run.flow_id],
        flow_id=str(run.flow_id),
        deployment=deployment,
        deployment_id=str(run.deployment_id) if run.deployment_id else None,
        work_pool=run.work_pool_name,
        work_pool_id=str(run.work_pool_id) if run.work_pool_id else None,
        tags=list(run.tags or []),
        state=state.name if state else "Unknown",
        state_type=state.type.value if state else None,
        state_message=r(state.message) if state and state.message else None,
        start_time=run.start_time,
        end_time=run.end_time,
        run_count=run.run_count or 1,
        parent_task_run_id=str(run.parent_task_run_id) if run.parent_task_run_id else None,
    )


async def read_flow_run(client: PrefectClient, flow_run_id: UUID | str) -> FlowRun:
    try:
        return await client.read_flow_run(UUID(str(flow_run_id)))
    except (ObjectNotFound, ValueError) as exc:
        raise RunNotFound(
            f"No flow run with id {flow_run_id} on {client.api_url}: check the id "
            "(the UI shows it in the run's URL) and PREFECT_API_URL."
        ) from exc


async def has_ended(client: PrefectClient, flow_run_id: str | None) -> bool:
    """Whether ``flow_run_id`` is a flow run in a final state (a claim holder that can no
    longer renew its claim). Unknown ids are not known to have ended: their lease decides."""
    try:
        run = await client.read_flow_run(UUID(str(flow_run_id)))
    except (ObjectNotFound, ValueError, TypeError):
        return False
    return run.state is not None and run.state.is_final()


def in_process_subflow(run: FlowRun) -> bool:
    """A subflow called in the parent's process, as opposed to a deployment run started
    with ``run_deployment`` (which has its own deployment, infrastructure and summary)."""
    return run.parent_task_run_id is not None and run.deployment_id is None


async def find_root(client: PrefectClient, run: FlowRun) -> FlowRun:
    """Follow in-process subflows up to the flow run they belong to."""
    current = run
    for _ in range(MAX_SUBFLOW_DEPTH):
        if not in_process_subflow(current):
            return current
        try:
            parent_task = await client.read_task_run(current.parent_task_run_id)
            if parent_task.flow_run_id is None:
                return current
            current = await client.read_flow_run(parent_task.flow_run_id)
        except ObjectNotFound:  # the parent was deleted
            return current
    return current


async def resolve_failed_run(client: PrefectClient, flow_run_id: UUID | str) -> Target:
    """Read the requested run and decide which run carries its summary (and whether to skip it).

    Raises:
        RunNotFound: no run with that id.
        RunNotFailed: the requested run is not Failed or Crashed.
    """
    names: dict[UUID, str] = {}
    run = await read_flow_run(client, flow_run_id)
    requested = await flow_run_info(client, run, names)
    if not requested.failed:
        raise RunNotFailed(
            f"Flow run {requested.name} ({requested.id}) is {requested.state}, not Failed "
            "or Crashed: there is nothing to summarize."
        )
    if requested.flow_name in OWN_FLOWS:
        return Target(requested=requested, root=requested, skip_reason=_OWN)
    if not in_process_subflow(run):
        return Target(requested=requested, root=requested)

    root_run = await find_root(client, run)
    root = await flow_run_info(client, root_run, names)
    skip = None
    if root.flow_name in OWN_FLOWS:
        skip = _OWN
    elif root_run.state is None or root_run.state.type not in TERMINAL_TYPES:
        skip = (
            f"subflow of {root.name} ({root.id}), which is still {root.state}: "
            "its failure is summarized on the root run when that ends"
        )
    elif not root.failed:
        skip = f"subflow failure was handled: root run {root.name} ({root.id}) ended {root.state}"
    return Target(requested=requested, root=root, skip_reason=skip)


async def failed_subflows(client: PrefectClient, root_id: str) -> list[FlowRunInfo]:
    """Failed or crashed child runs of ``root_id``, recursively, parents first: in-process subflows
    and deployment runs started with ``run_deployment`` inside it (whose failure is often what failed
    the parent: the summary follows it to the child's own task runs and logs)."""
    names: dict[UUID, str] = {}
    found: list[FlowRunInfo] = []
    frontier = [UUID(root_id)]
    seen = set(frontier)
    for _ in range(MAX_SUBFLOW_DEPTH):
        if not frontier:
            break
        parents = FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=frontier))
        children: list[FlowRun] = await read_all(lambda offset, size, parents=parents: client.read_flow_runs(
            flow_run_filter=parents, limit=size, offset=offset))
        failed = [c for c in children if c.state and c.state.type in FAILED_TYPES and c.id not in seen]
        seen.update(c.id for c in failed)
        for child in failed:
            found.append(await flow_run_info(client, child, names))
        frontier = [c.id for c in failed]
    return found


async def read_task_runs(client: PrefectClient, run_ids: list[str], name_limit: int = 1000,
                         *, redactor: Redactor | None = None) -> list[TaskRunInfo]:
    """All failed task runs of these flow runs, plus up to ``name_limit`` others.

    The failed ones are what a summary needs; the others only give names to the
    task run ids in the logs, so a run with 50,000 mapped tasks is not read whole.
    """
    ids = [UUID(r) for r in run_ids]
    flow_filter = TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=ids))
    failed_filter = TaskRunFilter(
        flow_run_id=TaskRunFilterFlowRunId(any_=ids),
        state=TaskRunFilterState(type=TaskRunFilterStateType(any_=FAILED_TYPES)),
    )
    r = _redactor(redactor)
    seen: dict[str, TaskRunInfo] = {}
    for task_filter, cap in ((failed_filter, None), (flow_filter, name_limit)):
        async for page in pages(lambda offset, size, f=task_filter: client.read_task_runs(
                task_run_filter=f, sort=TaskRunSort.EXPECTED_START_TIME_ASC, limit=size, offset=offset), cap):
            for tr in page:
                seen.setdefault(str(tr.id), TaskRunInfo(
                    id=str(tr.id),
                    name=r(tr.name),
                    state=tr.state.name if tr.state else "Unknown",
                    state_type=tr.state.type.value if tr.state else None,
                    message=r(tr.state.message) if tr.state and tr.state.message else None,
                    run_count=tr.run_count or 1,
                    flow_run_id=str(tr.flow_run_id) if tr.flow_run_id else None,
                    end_time=tr.end_time,
                ))
    return list(seen.values())


async def read_failed_run(client: PrefectClient, root_id: str, subflow_ids: list[str],
                          *, redactor: Redactor | None = None) -> FailedRun:
    """The final states of the root run and its failed subflows, and their task runs."""
    names: dict[UUID, str] = {}
    root = await flow_run_info(client, await read_flow_run(client, root_id), names, redactor=redactor)
    if root.run_count > 1:  # it ran again: by its own retries, the UI's Retry or ours
        states = await client.read_flow_run_states(UUID(root_id))
        root = root.model_copy(update={"auto_retries": automatic_retries(states)})
    subflows = []
    if subflow_ids:
        found = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(i) for i in subflow_ids]))
        )
        by_id = {str(r.id): r for r in found}
        subflows = [await flow_run_info(client, by_id[i], names, redactor=redactor) for i in subflow_ids if i in by_id]
    task_runs = await read_task_runs(client, [root.id, *(s.id for s in subflows)], redactor=redactor)
    return FailedRun(run=root, subflows=subflows, task_runs=task_runs)
