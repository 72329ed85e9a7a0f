"""Serving the plugin: its deployments, its automation, and an executor for their runs.

``failure-insights serve`` is the zero-infrastructure way to run the plugin: one
long-lived process that registers the ``summarize-failure/failure-insights``
deployment, installs (or updates) the automation, and executes summarizer runs as
the automation creates them, inside the process (see `serve.executor`). Unless told
otherwise it also registers ``batch-insights/batch-insights`` with its daily
schedule and executes those runs the same way. With work pools and workers, deploy
from prefect.yaml instead.
"""

from __future__ import annotations

import signal

import anyio
from prefect.client.orchestration import get_client
from prefect.client.schemas.schedules import CronSchedule

from prefect_failure_insights.automations.failure_trigger import install
from prefect_failure_insights.blocks.loading import load_settings
from prefect_failure_insights.defaults import (
    BATCH_CRON,
    BATCH_DEPLOYMENT,
    BATCH_DEPLOYMENT_NAME,
    BATCH_HOURS,
    BATCH_LIMIT,
    BATCH_POLL_SECONDS,
    BATCH_TIMEZONE,
    PLUGIN_TAG,
    SERVE_LIMIT,
    SERVE_POLL_SECONDS,
    SUMMARIZER_DEPLOYMENT,
    SUMMARIZER_DEPLOYMENT_NAME,
)
from prefect_failure_insights.exceptions import InputError
from prefect_failure_insights.flows.batch_insights import batch_insights
from prefect_failure_insights.flows.on_failure_summary import summarize_failure
from prefect_failure_insights.prefect_api.concurrency import ensure_llm_limit
from prefect_failure_insights.serve.executor import InProcessExecutor


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


async def serve_plugin(
    poll_seconds: float = SERVE_POLL_SECONDS,
    limit: int = SERVE_LIMIT,
    install_automation: bool = True,
    settings_block: str | None = None,
    batch_cron: str | None = BATCH_CRON,
    batch_hours: float = BATCH_HOURS,
) -> None:
    """Register the deployments, install the automation and run their flow runs until stopped.

    Args:
        poll_seconds: How often to look for new flow runs.
        limit: Most summarizer runs at once.
        install_automation: Install or update the automation (idempotent).
        settings_block: Settings block name passed to every run.
        batch_cron: Schedule (UTC) of the batch-insights deployment; None serves no batch.
        batch_hours: The window of each scheduled batch, in hours before its scheduled time.
    """
    schedule = batch_schedule(batch_cron) if batch_cron is not None else None  # a bad one: before any change
    common = {"settings_block": settings_block} if settings_block else {}
    deployment = await summarize_failure.ato_deployment(
        name=SUMMARIZER_DEPLOYMENT_NAME,
        description="Failure summaries, started by the failure-insights automation.",
        tags=[PLUGIN_TAG],
        parameters=common,
    )
    executors = [InProcessExecutor(summarize_failure, await deployment.aapply(), poll_seconds, limit)]
    print(f"Deployment {SUMMARIZER_DEPLOYMENT} ready.", flush=True)
    if schedule is not None:
        batch = await batch_insights.ato_deployment(
            name=BATCH_DEPLOYMENT_NAME,
            description="Classifies every failed and crashed run of a window and reports trends.",
            tags=[PLUGIN_TAG],
            parameters={**common, "hours": batch_hours},
            schedules=[schedule],
        )
        executors.append(InProcessExecutor(batch_insights, await batch.aapply(),
                                           max(poll_seconds, BATCH_POLL_SECONDS), BATCH_LIMIT))
        print(f"Deployment {BATCH_DEPLOYMENT} ready: cron '{batch_cron}' (UTC), the {batch_hours:g} hours before.",
              flush=True)
    settings = await load_settings(settings_block)
    async with get_client() as client:
        await ensure_llm_limit(client, settings)
        if install_automation:
            result = await install(client, SUMMARIZER_DEPLOYMENT)
            print(f"Automation {result.action}: {result.automation_id}", flush=True)

    stop = anyio.Event()
    async with anyio.create_task_group() as task_group:
        task_group.start_soon(_stop_on_signal, stop)
        what = "summaries and batch insights" if schedule is not None else "summaries"
        print(f"Serving {what} (polling every {poll_seconds:g}s, up to {limit} summaries at once). "
              "Ctrl-C stops.", flush=True)
        async with anyio.create_task_group() as running:
            for executor in executors:
                running.start_soon(executor.run, stop)
        task_group.cancel_scope.cancel()
