"""The task of the `reconcile-summaries` flow: one reconcile pass (`prefect_failure_insights.lifecycle.reconciler`)."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.logging import get_run_logger

from prefect_failure_insights.lifecycle import reconciler as domain
from prefect_failure_insights.blocks import FailureInsightsSettings
from prefect_failure_insights.models import Reconciled
from prefect_failure_insights.store import Database


@task(name="reconcile", cache_policy=NO_CACHE)
async def reconcile(database: Database, settings: FailureInsightsSettings, hours: float, *, limit: int) -> Reconciled:
    """Replace dead summarizers and start a summarizer run for every failure of the window without a summary."""
    async with get_client() as client:
        report = await domain.reconcile(client, database, settings, hours=hours, limit=limit)
    get_run_logger().info("%s", domain.describe(report))
    return report
