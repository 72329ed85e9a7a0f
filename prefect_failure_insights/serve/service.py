"""Serving the plugin: its deployments, its automation, and an executor for their runs.

``failure-insights serve`` is the zero-infrastructure way to run the plugin: one
long-lived process that registers the ``summarize-failure/failure-insights``
deployment (and ``retry-transient-failure/failure-insights-retry``, which only runs when
``failure-insights retry install`` asked for automatic retries), installs (or updates) the
automation, and executes summarizer runs as
the automation creates them, inside the process (see `serve.executor`); a summary starts at the
failure event itself, without waiting for the automation's run (see `serve.at_once`). Unless told
otherwise it also registers ``batch-insights/batch-insights`` with its daily
schedule and executes those runs the same way. It reconciles (`prefect_failure_insights.lifecycle.reconciler`)
at start and every `RECONCILE_SECONDS`: a summarizer that died, here or elsewhere, is
replaced, and a failure the automation missed is summarized. Its summaries share one
`LLMGate`: the process's own LLM slots, handed from one summary to the next before the server's
global limit is asked. With work pools and workers, deploy from prefect.yaml instead.
"""

from __future__ import annotations

import logging
import signal

import anyio
from prefect.client.orchestration import get_client
from prefect.client.schemas.schedules import CronSchedule

from prefect_failure_insights.automations.failure_trigger import install
from prefect_failure_insights.blocks import FailureInsightsSettings
from prefect_failure_insights.blocks.loading import load_database, load_settings
from prefect_failure_insights.defaults import (
    BATCH_CRON,
    BATCH_DEPLOYMENT,
    BATCH_DEPLOYMENT_NAME,
    BATCH_HOURS,
    BATCH_LIMIT,
    BATCH_POLL_SECONDS,
    BATCH_TIMEZONE,
    PLUGIN_TAG,
    RECONCILE_FULL_SECONDS,
    RECONCILE_HOURS,
    RECONCILE_RECENT_MINUTES,
    RECONCILE_SECONDS,
    RETRY_DEPLOYMENT,
    RETRY_DEPLOYMENT_NAME,
    SERVE_LIMIT,
    SERVE_POLL_SECONDS,
    SUMMARIZER_DEPLOYMENT,
    SUMMARIZER_DEPLOYMENT_NAME,
)
from prefect_failure_insights.exceptions import InputError
from prefect_failure_insights.flows.batch_insights import batch_insights
from prefect_failure_insights.flows.on_failure_summary import summarize_failure
from prefect_failure_insights.flows.retry_transient_failure import retry_transient_failure
from prefect_failure_insights.analysis.gate import LLMGate
from prefect_failure_insights.prefect_api.concurrency import ensure_llm_limit
from prefect_failure_insights.lifecycle.reconciler import describe, reconcile
from prefect_failure_insights.serve.executor import InProcessExecutor

logger = logging.getLogger("prefect_failure_insights.serve")


def batch_schedule(expression: str) -> CronSchedule:
    """The batch deployment's schedule, in UTC; InputError for an invalid cron expression."""
    try:
        return CronSchedule(cron=expression, timezone=BATCH_TIMEZONE)
    except ValueError:
        raise InputError(f"--batch-cron {expression!r} is not a cron expression: use five fields, "
                         "e.g. '0 6 * * *' (daily at 06:00 UTC) or '0 * * * *' (hourly).") from None


async def _stop_on_signal(stop: anyio.Event) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            print(f"Received {signal.Signals(signum).name}: finishing running flow runs, then stopping.",
                  flush=True)
            stop.set()
            return


async def reconcile_forever(stop: anyio.Event, settings: FailureInsightsSettings, hours: float) -> None:
    """Reconcile at once over ``hours``, then every `RECONCILE_SECONDS` over the last
    `RECONCILE_RECENT_MINUTES` (and ``hours`` again every `RECONCILE_FULL_SECONDS`), until ``stop``."""
    last_full = None
    async with await load_database(settings) as database, get_client() as client:
        while not stop.is_set():
            full = last_full is None or anyio.current_time() - last_full >= RECONCILE_FULL_SECONDS
            window = hours if full else min(hours, RECONCILE_RECENT_MINUTES / 60)
            try:
                report = await reconcile(client, database, settings, hours=window)
            except Exception as exc:  # noqa: BLE001 - the next pass tries again
                logger.warning("Reconciling failed (%s: %s); trying again in %gs", type(exc).__name__, exc,
                               RECONCILE_SECONDS)
            else:
                if full:
                    last_full = anyio.current_time()
                if full or report.started or report.crashed or report.released or report.gave_up:
                    print(f"Reconciled: {describe(report)}", flush=True)
            with anyio.move_on_after(RECONCILE_SECONDS):
                await stop.wait()


async def serve_plugin(
    poll_seconds: float = SERVE_POLL_SECONDS,
    limit: int = SERVE_LIMIT,
    install_automation: bool = True,
    *,
    settings_block: str | None = None,
    batch_cron: str | None = BATCH_CRON,
    batch_hours: float = BATCH_HOURS,
    reconcile_hours: float = RECONCILE_HOURS,
    local_slots: bool = True,
) -> None:
    """Register the deployments, install the automation and run their flow runs until stopped.

    Args:
        poll_seconds: How often to look for new flow runs.
        limit: Most summarizer runs at once.
        install_automation: Install or update the automation (idempotent).
        settings_block: Settings block name passed to every run.
        batch_cron: Schedule (UTC) of the batch-insights deployment; None serves no batch.
        batch_hours: The window of each scheduled batch, in hours before its scheduled time.
        reconcile_hours: The reconciler's look-back for failures without a summary (0: only
            replace dead summarizers and summarize the failures they left).
        local_slots: The summaries of the process hand LLM slots to each other at once before
            they ask the server's global limit (False: every summary polls the server, as the
            fault benchmark's baseline does).
    """
    schedule = batch_schedule(batch_cron) if batch_cron is not None else None  # a bad one: before any change
    common = {"settings_block": settings_block} if settings_block else {}
    deployment = await summarize_failure.ato_deployment(
        name=SUMMARIZER_DEPLOYMENT_NAME,
        description="Failure summaries, started by the failure-insights automation.",
        tags=[PLUGIN_TAG],
        parameters=common,
    )
    retry = await retry_transient_failure.ato_deployment(
        name=RETRY_DEPLOYMENT_NAME,
        description="Decides on every summarized failure and retries a transient one or an infrastructure crash "
                    "(`failure-insights retry install`).",
        tags=[PLUGIN_TAG],
        parameters=common,
    )
    settings = await load_settings(settings_block)
    gate = LLMGate(local_slots=settings.max_concurrent_llm_calls if local_slots else None)
    executors = [InProcessExecutor(summarize_failure, await deployment.aapply(), poll_seconds, limit=limit,
                                   at_once=True, in_process={"gate": gate}),
                 InProcessExecutor(retry_transient_failure, await retry.aapply(), poll_seconds, limit=limit)]
    print(f"Deployments {SUMMARIZER_DEPLOYMENT} and {RETRY_DEPLOYMENT} ready.", flush=True)
    if schedule is not None:
        batch = await batch_insights.ato_deployment(
            name=BATCH_DEPLOYMENT_NAME,
            description="Classifies every failed and crashed run of a window and reports trends.",
            tags=[PLUGIN_TAG],
            parameters={**common, "hours": batch_hours},
            schedules=[schedule],
        )
        executors.append(InProcessExecutor(batch_insights, await batch.aapply(),
                                           max(poll_seconds, BATCH_POLL_SECONDS), limit=BATCH_LIMIT))
        print(f"Deployment {BATCH_DEPLOYMENT} ready: cron '{batch_cron}' (UTC), the {batch_hours:g} hours before.",
              flush=True)
    async with get_client() as client:
        await ensure_llm_limit(client, settings)
        if install_automation:
            result = await install(client, SUMMARIZER_DEPLOYMENT)
            print(f"Automation {result.action}: {result.automation_id}", flush=True)

    stop = anyio.Event()
    async with anyio.create_task_group() as task_group:
        task_group.start_soon(_stop_on_signal, stop)
        task_group.start_soon(reconcile_forever, stop, settings, reconcile_hours)
        what = "summaries and batch insights" if schedule is not None else "summaries"
        print(f"Serving {what} (polling every {poll_seconds:g}s, up to {limit} summaries at once). "
              "Ctrl-C stops.", flush=True)
        async with anyio.create_task_group() as running:
            for executor in executors:
                running.start_soon(executor.run, stop)
        task_group.cancel_scope.cancel()
