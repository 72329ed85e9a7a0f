"""Serving the summarizer: its deployment, its automation, and an executor for its runs.

``failure-insights serve`` is the zero-infrastructure way to run the plugin: one
long-lived process that registers the ``summarize-failure/failure-insights``
deployment, installs (or updates) the automation, and executes summarizer runs as
the automation creates them, inside the process (see `executor`). With work pools
and workers, deploy from prefect.yaml instead.
"""

from __future__ import annotations

import signal

import anyio
from prefect.client.orchestration import get_client

from prefect_failure_insights import SUMMARIZER_DEPLOYMENT
from prefect_failure_insights.automations.failure_trigger import install
from prefect_failure_insights.config import load_settings
from prefect_failure_insights.tasks.analysis import ensure_llm_limit
from prefect_failure_insights.executor import InProcessExecutor
from prefect_failure_insights.flows.on_failure_summary import summarize_failure

DEPLOYMENT_NAME = SUMMARIZER_DEPLOYMENT.split("/", 1)[1]


async def _stop_on_signal(stop: anyio.Event) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            print(f"Received {signal.Signals(signum).name}: finishing running summaries, then stopping.",
                  flush=True)
            stop.set()
            return


async def serve_summarizer(
    poll_seconds: float = 1.0,
    limit: int = 10,
    install_automation: bool = True,
    settings_block: str | None = None,
) -> None:
    """Register the deployment, install the automation and run summaries until stopped.

    Args:
        poll_seconds: How often to look for new summarizer runs.
        limit: Most summarizer runs at once.
        install_automation: Install or update the automation (idempotent).
        settings_block: Settings block name passed to every run.
    """
    deployment = await summarize_failure.ato_deployment(
        name=DEPLOYMENT_NAME,
        description="Failure summaries, started by the failure-insights automation.",
        tags=["failure-insights"],
        parameters={"settings_block": settings_block} if settings_block else {},
    )
    deployment_id = await deployment.aapply()
    print(f"Deployment {SUMMARIZER_DEPLOYMENT} ready ({deployment_id}).", flush=True)
    settings = await load_settings(settings_block)
    async with get_client() as client:
        await ensure_llm_limit(client, settings)
        if install_automation:
            result = await install(client, SUMMARIZER_DEPLOYMENT)
            print(f"Automation {result.action}: {result.automation_id}", flush=True)

    executor = InProcessExecutor(summarize_failure, deployment_id, poll_seconds, limit)
    stop = anyio.Event()
    async with anyio.create_task_group() as task_group:
        task_group.start_soon(_stop_on_signal, stop)
        print(f"Serving summaries (polling every {poll_seconds:g}s, up to {limit} at once). "
              "Ctrl-C stops.", flush=True)
        await executor.run(stop)
        task_group.cancel_scope.cancel()
