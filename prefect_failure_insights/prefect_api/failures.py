"""The failures of a time window, read for classification: one error per failed task.

Only what classification needs is read, in pages of 200 and for 200 runs at a time:
the failed and crashed flow runs of the window, their failed task runs, and their
ERROR-level logs (not the full logs a summary reads). Each run's errors come out of the
same evidence code as the summaries (`evidence.errors.errors_of`). Failed subflows are
folded into their parent when both are in the window, so one failure is counted once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterName,
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterEndTime,
    FlowRunFilterId,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
    LogFilter,
    LogFilterFlowRunId,
    LogFilterLevel,
    WorkPoolFilter,
    WorkPoolFilterName,
)
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.sorting import FlowRunSort, LogSort

from prefect_failure_insights.defaults import API_PAGE, OWN_FLOWS
from prefect_failure_insights.evidence.errors import errors_of
from prefect_failure_insights.redaction import Redactor
from prefect_failure_insights.models import (
    BatchWindow,
    FailedRun,
    FailureError,
    Filters,
    FlowRunInfo,
    LogLine,
    WindowFailures,
    bounded,
)
from prefect_failure_insights.prefect_api.paging import pages
from prefect_failure_insights.prefect_api.runs import flow_run_info, read_task_runs

CHUNK = API_PAGE  # runs whose task runs and logs are read in one go


async def list_failed_runs(client: PrefectClient, start: datetime, end: datetime, *, filters: Filters,
                           max_runs: int | None = None) -> tuple[list, bool]:
    """Failed and crashed flow runs that ended in [start, end), newest first; and whether capped."""
    run_filter = FlowRunFilter(
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.FAILED, StateType.CRASHED])),
        end_time=FlowRunFilterEndTime(after_=start, before_=end),
        tags=FlowRunFilterTags(any_=filters.tags) if filters.tags else None,
    )
    kwargs = {
        "flow_run_filter": run_filter,
        "flow_filter": FlowFilter(name=FlowFilterName(any_=filters.flows)) if filters.flows else None,
        "deployment_filter": DeploymentFilter(name=DeploymentFilterName(
            any_=[d.split("/", 1)[-1] for d in filters.deployments])) if filters.deployments else None,
        "work_pool_filter": WorkPoolFilter(name=WorkPoolFilterName(any_=filters.work_pools))
        if filters.work_pools else None,
    }
    runs: list = []
    async for page in pages(lambda offset, size: client.read_flow_runs(
            **kwargs, sort=FlowRunSort.END_TIME_DESC, limit=size, offset=offset)):
        # `before_` is inclusive in the API; the window is half-open so windows tile exactly.
        runs.extend(r for r in page if r.end_time is None or r.end_time < end)
        if max_runs is not None and len(runs) > max_runs:  # capped only if there is one more
            return runs[:max_runs], True
    return runs, False


async def read_failed_runs(client: PrefectClient, run_ids: list[str]) -> list:
    """Those of these flow runs that are Failed or Crashed."""
    out: list = []
    for at in range(0, len(run_ids), API_PAGE):
        chunk = [UUID(i) for i in run_ids[at:at + API_PAGE]]
        out += await client.read_flow_runs(flow_run_filter=FlowRunFilter(
            id=FlowRunFilterId(any_=chunk),
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.FAILED, StateType.CRASHED]))),
            limit=API_PAGE)
    return out


async def _error_logs(client: PrefectClient, run_ids: list[str]) -> dict[str, list[LogLine]]:
    """ERROR-level (and above) logs of these runs, by flow run id, numbered per run."""
    redactor = Redactor()
    by_run: dict[str, list[LogLine]] = {}
    log_filter = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[UUID(i) for i in run_ids]),
                           level=LogFilterLevel(ge_=40))
    async for page in pages(lambda offset, size: client.read_logs(
            log_filter=log_filter, limit=size, offset=offset, sort=LogSort.TIMESTAMP_ASC)):
        for log in page:
            lines = by_run.setdefault(str(log.flow_run_id), [])
            lines.append(LogLine(
                lineno=len(lines) + 1, timestamp=log.timestamp.isoformat(), level=log.level,
                message=redactor.redact(bounded(log.message)), logger=log.name, flow_run_id=str(log.flow_run_id),
                task_run_id=str(log.task_run_id) if log.task_run_id else None,
            ))
    return by_run


async def extract_errors(client: PrefectClient, runs: list, progress: Callable[[int], None] | None = None,
                         ) -> list[FailureError]:
    """The errors of these failed runs (subflows folded into their parents)."""
    names: dict = {}
    infos = {str(r.id): await flow_run_info(client, r, names) for r in runs}
    errors: list[FailureError] = []
    ids = list(infos)
    for at in range(0, len(ids), CHUNK):
        chunk = ids[at:at + CHUNK]
        task_runs = await read_task_runs(client, chunk, name_limit=0)
        logs = await _error_logs(client, chunk)
        by_task = {t.id: t for t in task_runs}
        parent_of: dict[str, str] = {}  # subflow run id -> parent flow run id, when both are here
        for run_id in chunk:
            placeholder = by_task.get(infos[run_id].parent_task_run_id or "")
            if placeholder is not None and placeholder.flow_run_id in infos:
                parent_of[run_id] = placeholder.flow_run_id
        for run_id in chunk:
            if run_id in parent_of:
                continue
            subflows = _descendants(run_id, parent_of, infos)
            family = [run_id, *(s.id for s in subflows)]
            failed = FailedRun(run=infos[run_id], subflows=subflows,
                               task_runs=[t for t in task_runs if t.flow_run_id in family])
            lines = [ln for rid in family for ln in logs.get(rid, [])]
            errors.extend(errors_of(failed, lines))
        if progress:
            progress(len(chunk))
    return errors


def _descendants(run_id: str, parent_of: dict[str, str], infos: dict[str, FlowRunInfo]) -> list[FlowRunInfo]:
    children = [c for c, p in parent_of.items() if p == run_id]
    out = []
    for child in children:
        out += [infos[child], *_descendants(child, parent_of, infos)]
    return out


async def read_failures(client: PrefectClient, window: BatchWindow, max_runs: int,
                        *, progress: Callable[[int, int], None] | None = None) -> WindowFailures:
    """The window's failed and crashed runs, and their errors (one per failed task).

    ``progress(done, total)`` is called as runs are read. The plugin's own runs are not the
    user's failures (a failing summarizer is reported by its own logs): they are counted
    in ``skipped`` and left out.
    """
    runs, capped = await list_failed_runs(client, window.start, window.end, filters=window.filters, max_runs=max_runs)
    done = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(done, len(runs))

    errors = await extract_errors(client, runs, step)
    mine = [e for e in errors if e.run.flow_name not in OWN_FLOWS]
    return WindowFailures(errors=mine, runs_queried=len(runs), capped=capped, skipped=len(errors) - len(mine))


async def list_partitions(client: PrefectClient, window: BatchWindow, partition_by: str, *, allow: list[str],
                          max_runs: int) -> list[str]:
    """The work pools (or tags) of the window's failed runs, within ``allow`` when it is given."""
    runs, _ = await list_failed_runs(client, window.start, window.end, filters=window.filters, max_runs=max_runs)
    found: set[str] = set()
    for r in runs:
        found |= set(r.tags or []) if partition_by == "tag" else {r.work_pool_name or ""}
    found.discard("")
    return sorted(p for p in found if not allow or p in allow)
