"""The failures of a time window, read for classification: one error per failed task.

Only what classification needs is read, in pages of 200 and for 200 runs at a time:
the failed and crashed flow runs of the window, their failed task runs, and their
ERROR-level logs (not the full logs a summary reads). Each run's errors come out of the
same evidence code as the summaries (`tasks.evidence.build_evidence`), run once per
failed task on that task's error lines, or once for the run when it failed outside any
task (a crash: the infrastructure signals in its logs and state message). Failed
subflows are folded into their parent when both are in the window, so one failure is
counted once.
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
from pydantic import BaseModel, Field

from prefect_failure_insights.models import FailedRun, FlowRunInfo, LogLine
from prefect_failure_insights.tasks.evidence import build_evidence
from prefect_failure_insights.tasks.runs import _flow_run_info, read_task_runs
from prefect_failure_insights.tasks.redaction import Redactor

PAGE = 200
CHUNK = 200  # runs whose task runs and logs are read in one go
ERROR_BUDGET_TOKENS = 600  # evidence per error: enough for the root error and its traceback
OWN_FLOWS = ("summarize-failure", "batch-insights")


class Filters(BaseModel):
    """Which failures a batch covers (empty lists: all)."""

    tags: list[str] = Field(default_factory=list)
    deployments: list[str] = Field(default_factory=list)
    flows: list[str] = Field(default_factory=list)
    work_pools: list[str] = Field(default_factory=list)

    def describe(self) -> str:
        parts = [f"{k}={','.join(v)}" for k, v in self.model_dump().items() if v]
        return "; ".join(parts) or "all runs"


class FailureError(BaseModel):
    """One error of a failed run, ready to classify and store."""

    error_id: str
    flow_run_id: str
    flow_run_name: str
    task_run_id: str | None = None
    failed_task: str | None = None
    flow_name: str
    deployment: str | None = None
    work_pool: str | None = None
    tags: list[str] = Field(default_factory=list)
    state: str
    failed_at: datetime | None = None
    exception_type: str | None = None
    error_text: str


async def list_failed_runs(client: PrefectClient, start: datetime, end: datetime, filters: Filters,
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
    offset = 0
    while True:
        page = await client.read_flow_runs(**kwargs, sort=FlowRunSort.END_TIME_DESC, limit=PAGE, offset=offset)
        # `before_` is inclusive in the API; the window is half-open so windows tile exactly.
        runs.extend(r for r in page if r.end_time is None or r.end_time < end)
        if max_runs is not None and len(runs) >= max_runs:
            return runs[:max_runs], True
        if len(page) < PAGE:
            return runs, False
        offset += PAGE


async def _error_logs(client: PrefectClient, run_ids: list[str]) -> dict[str, list[LogLine]]:
    """ERROR-level (and above) logs of these runs, by flow run id, numbered per run."""
    redactor = Redactor()
    by_run: dict[str, list[LogLine]] = {}
    log_filter = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[UUID(i) for i in run_ids]),
                           level=LogFilterLevel(ge_=40))
    offset = 0
    while True:
        page = await client.read_logs(log_filter=log_filter, limit=PAGE, offset=offset, sort=LogSort.TIMESTAMP_ASC)
        for log in page:
            lines = by_run.setdefault(str(log.flow_run_id), [])
            lines.append(LogLine(
                lineno=len(lines) + 1, timestamp=log.timestamp.isoformat(), level=log.level,
                message=redactor.redact(log.message), logger=log.name, flow_run_id=str(log.flow_run_id),
                task_run_id=str(log.task_run_id) if log.task_run_id else None,
            ))
        if len(page) < PAGE:
            return by_run
        offset += PAGE


def errors_of(failed: FailedRun, lines: list[LogLine]) -> list[FailureError]:
    """The errors of one failed run: one per failed task, else one for the run."""
    run = failed.run
    base = {"flow_run_id": run.id, "flow_run_name": run.name, "flow_name": run.flow_name,
            "deployment": run.deployment, "work_pool": run.work_pool, "tags": run.tags,
            "state": run.state, "failed_at": run.end_time}
    out = []
    for task in failed.failed_tasks:
        one = failed.model_copy(update={"task_runs": [task]})
        mine = [ln for ln in lines if ln.task_run_id == task.id]
        evidence = build_evidence(one, mine, ERROR_BUDGET_TOKENS)
        text = _error_text(evidence.root_error, evidence.exception_type, task.message)
        out.append(FailureError(**base, error_id=f"{run.id}:{task.id}", task_run_id=task.id, failed_task=task.name,
                                exception_type=evidence.exception_type, error_text=text))
    if not out:
        evidence = build_evidence(failed, lines, ERROR_BUDGET_TOKENS)
        text = _error_text(evidence.root_error, evidence.exception_type, run.state_message)
        out.append(FailureError(**base, error_id=f"{run.id}:run", exception_type=evidence.exception_type,
                                error_text=text))
    return out


def _error_text(root_error: str | None, exception_type: str | None, message: str | None) -> str:
    """The root error's exception line(s), else the state message; never empty."""
    if root_error:
        lines = [ln for ln in root_error.splitlines() if ln.strip()]
        tail = [ln for ln in lines if not ln.startswith((" ", "\t", "Traceback"))][-3:] or lines[-3:]
        text = "\n".join(tail)
        if message and message not in text:
            text = f"{text}\n{message}"
        return text[:4000]
    return (message or f"{exception_type or 'The run'} failed without an error message").strip()[:4000]


async def extract_errors(client: PrefectClient, runs: list, progress: Callable[[int], None] | None = None,
                         ) -> list[FailureError]:
    """The errors of these failed runs (subflows folded into their parents)."""
    names: dict = {}
    infos = {str(r.id): await _flow_run_info(client, r, names) for r in runs}
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
