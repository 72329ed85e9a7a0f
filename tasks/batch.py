"""The tasks of the `batch-insights` flow, one per step of its diagram.

Thin wrappers around the domain functions of the same name (see `tasks.loading` for the
retry and cache policy, which is the same here). ``progress`` is an optional callback
``(stage, done, total)`` that in-process callers (the CLI's progress bar) pass in.
"""

from __future__ import annotations

from datetime import datetime

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.logging import get_run_logger
from prefect_failure_insights.blocks import FailureInsightsSettings, LLMCredentials

from prefect_failure_insights import models
from prefect_failure_insights.analysis import classifier as classification
from prefect_failure_insights.analysis import similarity
from prefect_failure_insights.models import (
    BatchMetrics,
    BatchRecord,
    BatchWindow,
    ClassifiedError,
    Filters,
    PartitionRun,
    Progress,
    WindowFailures,
)
from prefect_failure_insights.prefect_api import artifacts, deployments, failures
from prefect_failure_insights.reporting import batch as report
from prefect_failure_insights.store import Database, batches


@task(name="resolve-window", cache_policy=NO_CACHE)
async def resolve_window(hours: float, since: datetime | None, until: datetime | None, *, filters: Filters,
                         scheduled: datetime | None) -> BatchWindow:
    """The batch's window: explicit bounds, else the hours before its scheduled time (or now)."""
    window = models.resolve_window(hours, since, until, filters=filters, scheduled=scheduled)
    get_run_logger().info("Batch %s: [%s, %s), %s", window.batch_id, window.start.isoformat(),
                          window.end.isoformat(), filters.describe())
    return window


@task(name="read-failures", cache_policy=NO_CACHE)
async def read_failures(window: BatchWindow, max_runs: int, progress: Progress | None = None) -> WindowFailures:
    """The window's failed and crashed runs, and their errors (one per failed task)."""
    log = get_run_logger()

    def step(done: int, total: int) -> None:
        if progress:
            progress("reading runs", done, total)
        log.info("Read %d of %d failed runs", done, total)

    async with get_client() as client:
        return await failures.read_failures(client, window, max_runs, progress=step)


@task(name="load-batch-errors", cache_policy=NO_CACHE)
async def load_batch_errors(database: Database, window: BatchWindow) -> list[ClassifiedError] | None:
    """The rows stored for this window and filters by an earlier run, if any."""
    return await database.run(batches.load_batch_errors, window)


@task(name="classify-errors", cache_policy=NO_CACHE)
async def classify_errors(read: WindowFailures, settings: FailureInsightsSettings, database: Database,
                          *, llm: LLMCredentials | None, previous: list[ClassifiedError] | None = None,
                          progress: Progress | None = None) -> tuple[list[ClassifiedError], BatchMetrics]:
    """Classify every error (identical signatures once) and count what it took."""
    classifier = await classification.open_classifier(settings, database, llm, previous=previous or [])

    def step(done: int, total: int) -> None:
        if progress:
            progress("classifying", done, total)

    rows = await classification.classify_errors(read.errors, classifier, step)
    if classifier.usage.llm_stopped:
        get_run_logger().warning("The LLM was not asked for part of the batch: %s", classifier.usage.llm_stopped)
    return rows, BatchMetrics.of(rows, read, classifier.usage, llm_model=llm.model if llm else None)


@task(name="list-partitions", cache_policy=NO_CACHE)
async def list_partitions(window: BatchWindow, partition_by: str, allow: list[str], *, max_runs: int) -> list[str]:
    """The work pools (or tags) of the window's failed runs, within the allowlist."""
    async with get_client() as client:
        return await failures.list_partitions(client, window, partition_by, allow=allow, max_runs=max_runs)


@task(name="run-partitions", cache_policy=NO_CACHE)
async def run_partitions(window: BatchWindow, partition_by: str, names: list[str], *, max_parallel: int,
                         parameters: dict) -> list[PartitionRun]:
    """One child run of the batch deployment per partition, bounded; a failing one does not fail the others."""
    done = await deployments.run_partitions(window, partition_by, names, max_parallel=max_parallel,
                                            parameters=parameters)
    for run in done:
        get_run_logger().log(30 if run.problem else 20, "Partition %s %s: %s", partition_by, run.name,
                             run.problem or "done")
    return done


@task(name="load-partitions", cache_policy=NO_CACHE)
async def load_partitions(database: Database, runs: list[PartitionRun]) -> tuple[list[ClassifiedError], BatchMetrics]:
    """The rows and figures the partitions' child runs stored, added up."""
    return await database.run(batches.load_partitions, runs)


@task(name="group-similar", cache_policy=NO_CACHE)
async def group_similar(rows: list[ClassifiedError]) -> list[ClassifiedError]:
    """Mark each error with its group of similar errors (the report's recurring errors count them together)."""
    return similarity.group_similar(rows)


@task(name="render-report", cache_policy=NO_CACHE)
async def render_report(rows: list[ClassifiedError], metrics: BatchMetrics, window: BatchWindow,
                        *, previous: list[ClassifiedError] | None) -> str:
    """The report, from the rows only (what one execution spent stays in the metrics), so a re-run reproduces it."""
    return report.render_report(rows, metrics, window.title, previous=previous)


@task(name="save-batch", cache_policy=NO_CACHE)
async def save_batch(database: Database, record: BatchRecord, rows: list[ClassifiedError]) -> None:
    """Replace the batch's rows and record the batch, in one transaction."""
    await database.run(batches.save_batch, record, rows)


@task(name="publish-report", cache_policy=NO_CACHE)
async def publish_report(flow_run_id: str | None, text: str, rows: list[ClassifiedError], *,
                         window: BatchWindow) -> str:
    """The report and its table of errors on the batch run's page; the report's artifact id."""
    async with get_client() as client:
        return await artifacts.publish_report(client, flow_run_id, text, table=report.table(rows), title=window.title)
