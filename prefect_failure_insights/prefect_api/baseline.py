"""The last good run: what changed since the deployment last succeeded.

Two kinds of evidence come from it:

* differences in the deployment version, flow version, work pool and queue,
  parameter *names* whose values changed (values are never shown: parameters often
  hold secrets that no pattern recognises) and job variables (values shown only for
  known-harmless keys such as ``image`` or ``memory``);
* the templates of its WARNING and ERROR lines: error lines of the failed run whose
  template never occurred in the good run rank higher in the evidence.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterDeploymentId,
    FlowRunFilterEndTime,
    FlowRunFilterState,
    FlowRunFilterStateType,
    LogFilter,
    LogFilterFlowRunId,
    LogFilterLevel,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.client.schemas.sorting import FlowRunSort, LogSort

from prefect_failure_insights.redaction import Redactor
from prefect_failure_insights.evidence.signals import template
from prefect_failure_insights.models import Baseline
from prefect_failure_insights.prefect_api.paging import pages

MAX_BASELINE_LINES = 5000
# Job variables whose values are shown in the differences; others by name only.
SAFE_JOB_VARIABLES = frozenset(
    {"image", "image_pull_policy", "cpu", "memory", "cpu_request", "memory_request", "cpu_limit",
     "memory_limit", "instance_type", "machine_type", "namespace", "working_dir", "stream_output",
     "finished_job_ttl", "backoff_limit", "gpu", "region"}
)


def _changed(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    before, after = before or {}, after or {}
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


def differences(good: FlowRun, failed: FlowRun, redactor: Redactor | None = None) -> list[str]:
    """What differs between the last good run and the failed run, one line each."""
    out: list[str] = []
    for label, old, new in (
        ("deployment version", good.deployment_version, failed.deployment_version),
        ("flow version", good.flow_version, failed.flow_version),
        ("work pool", good.work_pool_name, failed.work_pool_name),
        ("work queue", good.work_queue_name, failed.work_queue_name),
    ):
        if old != new:
            out.append(f"{label}: {old or '-'} -> {new or '-'}")
    params = _changed(good.parameters, failed.parameters)
    if params:
        out.append(f"parameters with other values: {', '.join(params[:20])}")
    for key in _changed(good.job_variables, failed.job_variables):
        if key in SAFE_JOB_VARIABLES:
            old, new = (good.job_variables or {}).get(key), (failed.job_variables or {}).get(key)
            out.append(f"job variable {key}: {old!r} -> {new!r}")
        else:
            out.append(f"job variable {key} changed")
    redactor = redactor or Redactor()
    return [redactor.redact(line) for line in out]


async def last_good_run(client: PrefectClient, failed: FlowRun) -> FlowRun | None:
    """The deployment's latest Completed run that ended before the failed run started."""
    if failed.deployment_id is None:
        return None
    before = failed.start_time or failed.expected_start_time
    runs = await client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            deployment_id=FlowRunFilterDeploymentId(any_=[failed.deployment_id]),
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.COMPLETED])),
            end_time=FlowRunFilterEndTime(before_=before) if before else None,
        ),
        sort=FlowRunSort.END_TIME_DESC,
        limit=1,
    )
    return runs[0] if runs else None


async def good_run_templates(client: PrefectClient, run_id: UUID, limit: int = MAX_BASELINE_LINES,
                             *, redactor: Redactor | None = None) -> list[str]:
    """Templates of the run's WARNING and ERROR lines, redacted (at most ``limit`` lines read)."""
    redactor = redactor or Redactor()
    seen: dict[str, None] = {}
    log_filter = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id]), level=LogFilterLevel(ge_=30))
    async for page in pages(lambda offset, size: client.read_logs(
            log_filter=log_filter, limit=size, offset=offset, sort=LogSort.TIMESTAMP_ASC), limit):
        for log in page:
            seen.setdefault(template(redactor.redact(log.message)), None)
    return list(seen)


async def compare_with_last_good_run(client: PrefectClient, failed_run_id: str,
                                     redactor: Redactor | None = None) -> Baseline | None:
    """The deployment's last successful run before ``failed_run_id`` and what differs from it."""
    redactor = redactor or Redactor()
    failed = await client.read_flow_run(UUID(failed_run_id))
    good = await last_good_run(client, failed)
    if good is None:
        return None
    return Baseline(
        flow_run_id=str(good.id),
        flow_run_name=redactor.redact(good.name),
        differences=differences(good, failed, redactor),
        templates=await good_run_templates(client, good.id, redactor=redactor),
    )
