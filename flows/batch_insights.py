"""The `batch-insights` flow: every failure of a window, classified, with trends.

    window + filters -> failed and crashed runs (paginated) -> errors (one per failed task)
      -> classify (corrections -> rules -> cache -> LLM few-shot -> UNKNOWN)
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
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Literal

import anyio
from prefect import flow, task
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.logging import get_run_logger
from prefect.runtime import flow_run as current_run
from pydantic import BaseModel, Field

from prefect_failure_insights import BATCH_DEPLOYMENT, BATCH_FLOW, BATCH_HOURS, OWN_FLOWS
from prefect_failure_insights.blocks import FailureInsightsSettings
from prefect_failure_insights.config import DEFAULT_BLOCK_NAME, load_database, load_llm, load_settings
from prefect_failure_insights.exceptions import InputError
from prefect_failure_insights.tasks import batch_store, corrections, report, storage
from prefect_failure_insights.tasks.analysis import over_budget
from prefect_failure_insights.tasks.classify import Classification, Classifier, ErrorItem
from prefect_failure_insights.tasks.failures import FailureError, Filters, extract_errors, list_failed_runs
from prefect_failure_insights.tasks.schema import summaries

ARTIFACT_KEY = "batch-insights"

#: Set by the CLI to draw a progress bar: called with (stage, done, total).
progress_hook: Callable[[str, int, int], None] | None = None


class BatchResult(BaseModel):
    batch_id: str
    window_start: datetime
    window_end: datetime
    filters: dict[str, list[str]]
    metrics: dict
    report: str
    rows: list[dict] = Field(default_factory=list)
    previous_rows: list[dict] | None = None
    artifact_id: str | None = None


def resolve_window(hours: float, since: datetime | None, until: datetime | None,
                   scheduled: datetime | None = None) -> tuple[datetime, datetime]:
    """[start, end) in UTC: explicit bounds, else the ``hours`` before ``until`` (or the
    run's scheduled time, or now), to the minute, so a scheduled run's window is exact."""
    def utc(value: datetime) -> datetime:
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)

    end = utc(until) if until else utc(scheduled or datetime.now(timezone.utc)).replace(second=0, microsecond=0)
    start = utc(since) if since else end - timedelta(hours=hours)
    if start >= end:
        raise InputError(f"The window is empty: since {start.isoformat()} is not before until {end.isoformat()}.")
    return start, end


def _progress(stage: str, done: int, total: int) -> None:
    if progress_hook is not None:
        progress_hook(stage, done, total)


@task(name="read-failures", cache_policy=NO_CACHE)
async def read_failures(start: datetime, end: datetime, filters: Filters, max_runs: int,
                        ) -> tuple[list[FailureError], dict]:
    """The window's failed and crashed runs, and their errors (one per failed task)."""
    log = get_run_logger()
    async with get_client() as client:
        runs, capped = await list_failed_runs(client, start, end, filters, max_runs)
        done = 0

        def step(n: int) -> None:
            nonlocal done
            done += n
            _progress("reading runs", done, len(runs))
            log.info("Read %d of %d failed runs", done, len(runs))

        errors = await extract_errors(client, runs, step)
    # The plugin's own runs are not the user's failures (a failing summarizer is reported by its own logs).
    skipped = [e for e in errors if e.flow_name in OWN_FLOWS]
    errors = [e for e in errors if e.flow_name not in OWN_FLOWS]
    return errors, {"runs_queried": len(runs), "capped": capped, "skipped": len(skipped)}


@task(name="classify-errors", cache_policy=NO_CACHE)
async def classify_errors(errors: list[FailureError], settings: FailureInsightsSettings, engine, use_llm: bool,
                          llm_url: str | None, llm_model: str | None, previous: list[dict] | None = None,
                          ) -> tuple[list[dict], dict]:
    """Classify every error; identical signatures once; a run's summary category is reused;
    ``previous`` (this batch's rows from an earlier run) keeps the LLM's earlier answers."""
    log = get_run_logger()
    llm = (await load_llm(settings, llm_url, llm_model)).credentials if use_llm else None
    known = _summary_categories(engine, [e.flow_run_id for e in errors])
    before = [Classification(id=r["error_id"], **{k: r[k] for k in ("category", "confidence", "classified_by",
                                                                    "reasoning", "signature", "fingerprint")})
              for r in previous or [] if r.get("signature") and r.get("fingerprint")]
    classifier = Classifier(settings, corrections=corrections.load(engine), llm=llm, engine=engine,
                            budget_check=lambda: over_budget(engine, settings), previous=before)
    items = [ErrorItem(id=e.error_id, error_text=e.error_text, exception_type=e.exception_type,
                       known_category=known.get(e.flow_run_id)) for e in errors]
    done = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        _progress("classifying", done, len(items))

    results = await classifier.classify(items, step)
    rows = [{**e.model_dump(), **r.model_dump(exclude={"id"})} for e, r in zip(errors, results)]
    usage = classifier.usage
    if usage.llm_stopped:
        log.warning("The LLM was not asked for part of the batch: %s", usage.llm_stopped)
    return rows, {
        "classified_by": usage.by, "llm_calls": usage.llm_calls,
        "llm_tokens": usage.prompt_tokens + usage.completion_tokens, "llm_cost_usd": round(usage.cost_usd, 6),
        "llm_model": llm.model if llm else None, "llm_note": usage.llm_stopped,
    }


def _summary_categories(engine, run_ids: list[str]) -> dict[str, str]:
    """The LLM categories of the runs' failure summaries (no second LLM call for them)."""
    from sqlalchemy import select

    out: dict[str, str] = {}
    ids = sorted(set(run_ids))
    with storage.guard(engine, "read the summaries"), engine.connect() as conn:
        for at in range(0, len(ids), 500):
            rows = conn.execute(select(summaries.c.flow_run_id, summaries.c.category)
                                .where(summaries.c.flow_run_id.in_(ids[at:at + 500]))
                                .where(summaries.c.status == "llm")).all()
            out.update({r.flow_run_id: r.category for r in rows if r.category})
    return out


async def _partitions(start: datetime, end: datetime, filters: Filters, partition_by: str, allow: list[str],
                      max_runs: int) -> list[str]:
    async with get_client() as client:
        runs, _ = await list_failed_runs(client, start, end, filters, max_runs)
    found: set[str] = set()
    for r in runs:
        found |= set(r.tags or []) if partition_by == "tag" else {r.work_pool_name or ""}
    found.discard("")
    return sorted(p for p in found if not allow or p in allow)


async def fan_out(start: datetime, end: datetime, filters: Filters, partition_by: str, partitions: list[str],
                  max_parallel: int, params: dict, engine) -> tuple[list[dict], dict]:
    """One child run of the batch deployment per partition; their rows, aggregated."""
    from prefect.deployments import run_deployment

    log = get_run_logger()
    names = await _partitions(start, end, filters, partition_by, partitions, params["max_runs"])
    limit = anyio.CapacityLimiter(max_parallel)
    rows: dict[str, dict] = {}
    failed: list[str] = []
    metrics: dict = {"partitions": names, "runs_queried": 0, "skipped": 0, "capped": False,
                     "classified_by": {}, "llm_calls": 0, "llm_tokens": 0, "llm_cost_usd": 0.0}

    async def one(name: str) -> None:
        child_filters = filters.model_copy(update={"work_pools": [name]} if partition_by == "work_pool"
                                           else {"tags": [name]})
        async with limit:
            try:
                run = await run_deployment(
                    BATCH_DEPLOYMENT, timeout=None, as_subflow=True,
                    parameters={**params, **child_filters.model_dump(), "since": start, "until": end,
                                "partition_by": "none", "publish": False},
                )
            except Exception as exc:  # noqa: BLE001 - one partition must not fail the others
                failed.append(f"{partition_by} {name}: could not start ({type(exc).__name__}: {exc})")
                return
        if not (run.state and run.state.is_completed()):
            failed.append(f"{partition_by} {name}: child run {run.id} ended {run.state.name if run.state else '?'}")
            return
        bid = batch_store.batch_id(start, end, child_filters.model_dump())
        child = batch_store.load_batch(engine, bid)
        for row in batch_store.load_errors(engine, bid) or []:
            rows[row["error_id"]] = row  # tags overlap: an error counts once
        if child:
            import json

            m = json.loads(child["metrics"])
            for key in ("runs_queried", "skipped", "llm_calls", "llm_tokens", "llm_cost_usd"):
                metrics[key] += m.get(key) or 0
            metrics["capped"] = metrics["capped"] or bool(m.get("capped"))
        log.info("Partition %s %s: %d errors", partition_by, name, len(rows))

    async with anyio.create_task_group() as tg:
        for name in names:
            tg.start_soon(one, name)
    out = sorted(rows.values(), key=lambda r: r["error_id"])
    metrics["failed_partitions"] = failed
    by: dict[str, int] = {}
    for row in out:
        key = row["classified_by"].split(":")[0]
        by[key] = by.get(key, 0) + 1
    metrics["classified_by"] = by
    return out, metrics


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
    max_parallel: int = 4,
    max_runs: int = 5000,
    use_llm: bool = True,
    llm_url: str | None = None,
    llm_model: str | None = None,
    settings_block: str = DEFAULT_BLOCK_NAME,
    publish: bool = True,
) -> BatchResult:
    """Classify every failure of a window and report trends by flow, deployment, work pool and tag.

    Args:
        hours: The window's length, ending now (or at the scheduled time), when
            ``since`` is not given.
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
        llm_url: Use this OpenAI-compatible endpoint instead of the configured one.
        llm_model: Use this model instead of the configured one.
        settings_block: The ``failure-insights-settings`` block.
        publish: Create the report artifacts (the children of a fan-out do not).
    """
    log = get_run_logger()
    started = time.monotonic()
    start, end = resolve_window(hours, since, until, current_run.scheduled_start_time if current_run.id else None)
    filters = Filters(tags=tags or [], deployments=deployments or [], flows=flows or [], work_pools=work_pools or [])
    settings = await load_settings(settings_block)
    connector, where = await load_database(settings)
    try:
        engine = storage.engine_of(connector)
        await anyio.to_thread.run_sync(storage.ensure_schema, engine)
        log.info("Batch insights for [%s, %s), %s, rows in %s", start.isoformat(), end.isoformat(),
                 filters.describe(), where)
        bid = batch_store.batch_id(start, end, filters.model_dump())
        if partition_by != "none":
            params = {"max_runs": max_runs, "use_llm": use_llm, "llm_url": llm_url, "llm_model": llm_model,
                      "settings_block": settings_block}
            rows, metrics = await fan_out(start, end, filters, partition_by, partitions or [], max_parallel,
                                          params, engine)
        else:
            errors, metrics = await read_failures(start, end, filters, max_runs)
            earlier = await anyio.to_thread.run_sync(batch_store.load_errors, engine, bid)
            rows, classified = await classify_errors(errors, settings, engine, use_llm, llm_url, llm_model,
                                                     earlier)
            metrics.update(classified)
        metrics["errors_extracted"] = len(rows)
        metrics["unknown"] = sum(1 for r in rows if r["category"] == "UNKNOWN")
        metrics["duration_s"] = round(time.monotonic() - started, 2)
        previous = batch_store.load_errors(engine, batch_store.batch_id(start - (end - start), start,
                                                                        filters.model_dump()))
        title = f"Failure insights {start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} UTC ({filters.describe()})"
        # Figures that change from run to run (duration) stay out of the report, so a re-run reproduces it.
        text = report.markdown(rows, metrics, title, previous)
        await anyio.to_thread.run_sync(lambda: batch_store.save_batch(
            engine, bid, start, end, filters.model_dump(), rows, metrics, text, str(current_run.id or "") or None))
    finally:
        connector.close()
    artifact_id = None
    if publish:
        artifact_id = str(await acreate_markdown_artifact(markdown=text, key=ARTIFACT_KEY, description=title))
        await acreate_table_artifact(table=report.table(rows), key=f"{ARTIFACT_KEY}-errors",
                                     description=f"Errors of {title}")
    log.info("Batch %s: %d errors in %d runs; %s; %d unknown; %.1f s", bid, len(rows), metrics["runs_queried"],
             metrics["classified_by"], metrics["unknown"], metrics["duration_s"])
    return BatchResult(batch_id=bid, window_start=start, window_end=end, filters=filters.model_dump(),
                       metrics=metrics, report=text, rows=rows, previous_rows=previous, artifact_id=artifact_id)
