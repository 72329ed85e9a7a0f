"""The tasks that read the failed run: which run, its logs as they arrive, its state and task
runs, its deployment's last good run, other systems' logs (`prefect_api`, `evidence.sources`).
Every text is redacted as it is read."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.logging import get_run_logger
from prefect_failure_insights.blocks import FailureInsightsSettings

from prefect_failure_insights.evidence import sources
from prefect_failure_insights.lifecycle.context import SummarizerRun
from prefect_failure_insights.models import (
    Baseline,
    FailedRun,
    LogLine,
    LogSection,
    LogWait,
    Target,
)
from prefect_failure_insights.prefect_api import baseline, logs, runs
from prefect_failure_insights.prefect_api.logs import RunLogs


@task(name="resolve-failed-run", cache_policy=NO_CACHE)
async def resolve_failed_run(flow_run_id: UUID | str, settings: FailureInsightsSettings) -> Target:
    """Read the run that failed, find the root run that carries its summary, and say whether to skip it."""
    async with get_client() as client:
        target = await runs.resolve_failed_run(client, flow_run_id)
    skip = target.skip_reason or settings.skip_reason(target.root)
    return target.model_copy(update={"skip_reason": skip})


@task(name="follow-run-logs", cache_policy=NO_CACHE)
async def follow_run_logs(run: SummarizerRun) -> tuple[LogWait, RunLogs]:
    """Read every log line of the failed run and its failed subflows while their late records
    arrive, until they are complete (bounded), to local temporary files (read back only
    through `RunLogs.lines`, which redacts them)."""
    async with get_client() as client:
        waited, read = await logs.follow_run_logs(client, run.root, run.settings.max_log_wait_seconds)
    logger = get_run_logger()
    if not waited.complete:
        logger.warning("Logs incomplete for %s: no final-state record after %.0f s", ", ".join(waited.incomplete_runs),
                       waited.waited_s)
    logger.info("Read %s in %.0f ms, %.1f s of it waiting for late records", read, read.read_ms, waited.waited_s)
    return waited, read


@task(name="wait-for-final-records", cache_policy=NO_CACHE)
async def wait_for_final_records(run: SummarizerRun, waited: LogWait) -> LogWait:
    """After a summary made from incomplete logs: wait (bounded by the settings'
    ``late_log_wait_seconds``) until the final-state record of every incomplete run is stored."""
    async with get_client() as client:
        now = await logs.wait_for_final_records(client, waited, run.settings.late_log_wait_seconds)
    get_run_logger().info("Logs %s after %.0f s", "complete" if now.complete else "still incomplete", now.waited_s)
    return now


@task(name="read-run-logs", cache_policy=NO_CACHE)
async def read_run_logs(run_ids: list[str], min_level: int | None = None) -> RunLogs:
    """Stream the log lines of these runs stored so far at ``min_level`` and above (or all of
    them) to local temporary files (read back only through `RunLogs.lines`, which redacts them)."""
    async with get_client() as client:
        read = await logs.read_run_logs(client, run_ids, min_level)
    get_run_logger().info("Read %s in %.0f ms", read, read.read_ms)
    return read


@task(name="read-failed-run", cache_policy=NO_CACHE)
async def read_failed_run(run: SummarizerRun, subflow_ids: list[str]) -> FailedRun:
    """Read the final states of the root run and its failed subflows, and their task runs (redacted)."""
    async with get_client() as client:
        return await runs.read_failed_run(client, run.root.id, subflow_ids, redactor=run.redactor)


@task(name="compare-with-last-good-run", cache_policy=NO_CACHE)
async def compare_with_last_good_run(run: SummarizerRun) -> Baseline | None:
    """Find the deployment's last successful run and what differs from it (redacted)."""
    async with get_client() as client:
        return await baseline.compare_with_last_good_run(client, run.root.id, run.redactor)


@task(name="read-external-logs", cache_policy=NO_CACHE)
async def read_external_logs(failed: FailedRun, lines: Iterable[LogLine],
                             log_sources: list[sources.LogSource]) -> list[LogSection]:
    """Ask each configured source for extra evidence; a failing source is skipped with a warning."""
    sections, warnings = await sources.read_external_logs(failed, lines, log_sources)
    for warning in warnings:
        get_run_logger().warning("%s", warning)
    return sections
