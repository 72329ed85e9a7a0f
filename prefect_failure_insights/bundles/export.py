"""Exporting a failed run from the Prefect API as a redacted, self-contained bundle."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from prefect.client.orchestration import PrefectClient

from prefect_failure_insights.bundles.format import (
    Bundle,
    BundleLog,
    BundleRun,
    BundleTaskRun,
    LogSpool,
)
from prefect_failure_insights.redaction import Redactor
from prefect_failure_insights.models import FailedRun, FlowRunInfo, LogSection, redacted_with
from prefect_failure_insights.prefect_api.baseline import compare_with_last_good_run
from prefect_failure_insights.prefect_api.logs import read_run_logs
from prefect_failure_insights.prefect_api.runs import (
    failed_subflows,
    read_task_runs,
    resolve_failed_run,
)
from prefect_failure_insights.prefect_api.secrets import load_secret_values


async def export_bundle(client: PrefectClient, flow_run_id: str, sources: list[Any] | None = None) -> Bundle:
    """Read a failed run (with its failed subflows, task runs, logs and last good run) as a
    redacted bundle.

    Raises:
        RunNotFound, RunNotFailed: as for ``summarize``.
    """
    try:
        redactor = Redactor(literals=await load_secret_values(client))
    except Exception:  # noqa: BLE001 - patterns still apply
        redactor = Redactor()
    target = await resolve_failed_run(client, flow_run_id)
    run = redacted_with(target.requested, redactor)
    subflows = [redacted_with(s, redactor) for s in await failed_subflows(client, run.id)]
    run_ids = [run.id, *(s.id for s in subflows)]
    task_runs = await read_task_runs(client, run_ids, redactor=redactor)
    logs = await read_run_logs(client, run_ids)
    sections: list[LogSection] = []
    try:
        logs.name_tasks(task_runs)
        lines = logs.lines(redactor)
        stand_in = FailedRun(run=run, subflows=subflows, task_runs=task_runs)
        for source in sources or []:
            sections.extend(await source.sections(stand_in, iter(lines)))
        # Already redacted as they were read: spooled without validating (and redacting) them again,
        # and to a file, not a list: a run can have a million lines.
        spool = LogSpool()
        for ln in lines:
            spool.add("", BundleLog.model_construct(
                timestamp=ln.timestamp, level=ln.level, name=ln.logger, message=ln.message,
                task_run_name=ln.task_run_name, task_run_id=ln.task_run_id, flow_run_id=ln.flow_run_id))
        spool.close_writers()
    finally:
        logs.close()
    by_run: dict[str, list[BundleTaskRun]] = {}
    for t in task_runs:
        by_run.setdefault(t.flow_run_id or run.id, []).append(BundleTaskRun(
            name=t.name, state=t.state, state_type=t.state_type, message=t.message, id=t.id,
            run_count=t.run_count,
            flow_run_id=t.flow_run_id))

    def as_bundle_run(info: FlowRunInfo) -> dict[str, Any]:
        return dict(
            flow_run_id=info.id, flow_run_name=info.name, flow_name=info.flow_name, deployment=info.deployment,
            tags=info.tags, work_pool=info.work_pool, state=info.state, state_type=info.state_type,
            state_message=info.state_message,
            start_time=info.start_time, end_time=info.end_time, run_count=info.run_count,
            task_runs=by_run.get(info.id, []),
        )

    bundle = Bundle(
        **as_bundle_run(run),
        subflows=[BundleRun(**as_bundle_run(s)) for s in subflows],
        baseline=await compare_with_last_good_run(client, run.id, redactor),
        sections=[s.model_copy(update={"lines": [replace(ln, message=redactor.redact(ln.message))
                                                 for ln in s.lines]}) for s in sections],
        exported_at=datetime.now(timezone.utc),
    )
    bundle._spool = spool
    return bundle
