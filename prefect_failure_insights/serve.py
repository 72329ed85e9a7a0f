"""Serving the summarizer: a runner for `summarize-failure` plus its automation.

``failure-insights serve`` is the zero-infrastructure way to run the plugin: one
long-lived process that registers the ``summarize-failure/failure-insights``
deployment, installs (or updates) the automation, and executes summarizer runs
as the automation creates them. With work pools, use prefect.yaml instead.
"""

from __future__ import annotations

from prefect.client.orchestration import get_client
from prefect.runner import Runner

from prefect_failure_insights import SUMMARIZER_DEPLOYMENT
from prefect_failure_insights.automations.failure_trigger import install
from prefect_failure_insights.flows.on_failure_summary import summarize_failure

DEPLOYMENT_NAME = SUMMARIZER_DEPLOYMENT.split("/", 1)[1]


async def serve_summarizer(
    poll_seconds: float | None = None,
    limit: int = 10,
    install_automation: bool = True,
    settings_block: str | None = None,
) -> None:
    """Register the deployment, install the automation and run summaries until stopped.

    Args:
        poll_seconds: How often to look for new summarizer runs
            (default ``PREFECT_RUNNER_POLL_FREQUENCY``, 10 s; 1 s makes summaries
            appear within ~2 s of a failure).
        limit: Most summarizer runs at once.
        install_automation: Install or update the automation (idempotent).
        settings_block: Settings block name passed to every run.
    """
    runner = Runner(
        name="failure-insights", query_seconds=poll_seconds, limit=limit, pause_on_shutdown=False
    )
    await runner.aadd_flow(
        summarize_failure,
        name=DEPLOYMENT_NAME,
        description="Failure summaries, started by the failure-insights automation.",
        tags=["failure-insights"],
        parameters={"settings_block": settings_block} if settings_block else None,
    )
    if install_automation:
        async with get_client() as client:
            result = await install(client, SUMMARIZER_DEPLOYMENT)
        print(f"Automation {result.action}: {result.automation_id}", flush=True)
    await runner.start()
