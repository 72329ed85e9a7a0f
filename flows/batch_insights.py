"""The `batch-insights` flow: every failure of a window, classified, with trends.

    window + filters -> failed and crashed runs (paginated) -> errors (one per failed task)
      -> classify (corrections -> rules -> cache -> LLM few-shot -> UNKNOWN)
      -> group similar errors (the summaries' similarity) -> report
      -> rows (one per error, plus the batch) -> report artifact + table artifact

With ``partition_by`` (work pool or tag) the run is a coordinator: it fans out one child
run of the ``batch-insights`` deployment per partition with `run_deployment` (bounded
concurrency, an allowlist), so partitions can run on other workers; a failing partition
does not fail the others, and the coordinator reports on all of them. The batch id is
derived from the window and the filters: re-running a window replaces its rows and
produces the same report.
"""

# No `from __future__ import annotations` here: Prefect validates the flow's parameters
# from its real annotations, and string annotations break that validation.
import time
from datetime import datetime
from typing import Literal

from prefect import flow
from prefect.logging import get_run_logger
from prefect.runtime import flow_run as current_run
from prefect.utilities.annotations import quote
from prefect_failure_insights.tasks.batch import (
    classify_errors,
    group_similar,
    list_partitions,
    load_batch_errors,
    load_partitions,
    publish_report,
    read_failures,
    render_report,
    resolve_window,
    run_partitions,
    save_batch,
)
from prefect_failure_insights.tasks.loading import (
    load_database,
    load_llm,
    load_settings,
)
from pydantic.json_schema import SkipJsonSchema

from prefect_failure_insights.defaults import (
    BATCH_FLOW,
    BATCH_HOURS,
    BATCH_MAX_PARALLEL,
    BATCH_MAX_RUNS,
    DEFAULT_BLOCK_NAME,
)
from prefect_failure_insights.exceptions import InputError
from prefect_failure_insights.models import BatchRecord, BatchResult, Filters, LLMEndpoint, Progress


def _scheduled_for() -> datetime | None:
    """When this run was scheduled to start, if the deployment's schedule created it: its
    window then ends there, aligned. An ad-hoc run (the CLI, "Run" in the UI) has none: its
    window ends now."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    run = context.flow_run if context is not None else None
    return run.expected_start_time if run is not None and run.auto_scheduled else None


@flow(name=BATCH_FLOW, log_prints=False)
async def batch_insights(
    hours: float = BATCH_HOURS,
    since: datetime | None = None,
    until: datetime | None = None,
    tags: list[str] | None = None,
    deployments: list[str] | None = None,
    flows: list[str] | None = None,
    work_pools: list[str] | None = None,
    partition_by: Literal["none", "work_pool", "tag"] = "none",
    partitions: list[str] | None = None,
    max_parallel: int = BATCH_MAX_PARALLEL,
    max_runs: int = BATCH_MAX_RUNS,
    use_llm: bool = True,
    llm_model: str | None = None,
    settings_block: str = DEFAULT_BLOCK_NAME,
    publish: bool = True,
    progress: SkipJsonSchema[Progress | None] = None,
    llm_endpoint: SkipJsonSchema[LLMEndpoint | None] = None,
) -> BatchResult:
    """Classify every failure of a window and report trends by flow, deployment, work pool and tag.

    Args:
        hours: The window's length, ending now (a scheduled run: at its scheduled time,
            to the minute), when ``since`` is not given.
        since: Start of an explicit window (inclusive), for re-runs.
        until: End of an explicit window (exclusive).
        tags: Only runs with one of these tags.
        deployments: Only runs of these deployments (``flow/deployment`` or ``deployment``).
        flows: Only runs of these flows.
        work_pools: Only runs in these work pools.
        partition_by: ``work_pool`` or ``tag``: fan out one child run per partition
            through the ``batch-insights/batch-insights`` deployment.
        partitions: Allowlist of partitions (empty: all found in the window).
        max_parallel: Most partitions at once.
        max_runs: Most failed runs read per window (newest first); the report says when capped.
        use_llm: Ask the LLM for errors that rules and corrections do not classify.
        llm_model: Use this model instead of the configured one.
        settings_block: The ``failure-insights-settings`` block.
        publish: Create the report artifacts (the children of a fan-out do not).
        progress: For in-process callers only (not stored, not in the UI's form):
            called with ``(stage, done, total)`` as the batch goes.
        llm_endpoint: For in-process callers only (not in the UI's form): another endpoint
            to ask, with its own key (the block's key never goes to another URL); not with
            ``partition_by`` (the partitions run in other processes, with the configured LLM).
    """
    log = get_run_logger()
    started = time.monotonic()
    filters = Filters(tags=tags or [], deployments=deployments or [], flows=flows or [], work_pools=work_pools or [])
    window = await resolve_window(hours, since, until, filters=filters, scheduled=_scheduled_for())
    settings = await load_settings(settings_block)
    async with await load_database(settings) as database:
        if partition_by != "none":
            if llm_endpoint is not None:
                raise InputError("llm_endpoint applies to this process only: it cannot be combined with partition_by "
                                 "(the partitions run as deployment runs, with the configured LLM).")
            names = await list_partitions(window, partition_by, partitions or [], max_runs=max_runs)
            children = await run_partitions(window, partition_by, names, max_parallel=max_parallel, parameters={
                "max_runs": max_runs, "use_llm": use_llm, "llm_model": llm_model,
                "settings_block": settings_block})
            rows, metrics = await load_partitions(database, children)
        else:
            read = await read_failures(window, max_runs, progress)
            choice = await load_llm(settings, llm_endpoint, llm_model) if use_llm else None
            llm = choice.credentials if choice else None
            if choice and llm is None:
                log.warning("Errors the rules do not classify stay UNKNOWN: %s", choice.source)
            earlier = await load_batch_errors(database, window)
            rows, metrics = await classify_errors(quote(read), settings, database, llm=llm, previous=quote(earlier),
                                                  progress=progress)
        rows = await group_similar(quote(rows))
        metrics.duration_s = round(time.monotonic() - started, 2)
        previous = await load_batch_errors(database, window.previous())
        text = await render_report(quote(rows), metrics, window, previous=quote(previous))
        await save_batch(database, BatchRecord(window=window, metrics=metrics, report=text,
                                               flow_run_id=str(current_run.id or "") or None), quote(rows))
    artifact_id = await publish_report(str(current_run.id) if current_run.id else None, text, quote(rows),
                                       window=window) \
        if publish else None
    log.info("Batch %s: %d errors in %d runs; %s; %d unknown; %.1f s", window.batch_id, len(rows),
             metrics.runs_queried, metrics.classified_by, metrics.unknown, metrics.duration_s)
    return BatchResult(window=window, metrics=metrics, report=text, rows=rows, previous_rows=previous,
                       artifact_id=artifact_id)
