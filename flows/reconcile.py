"""The `reconcile-summaries` flow: every failure gets its summary, whatever died.

    dead summarizer runs -> Crashed -> expired claims released
      -> failed runs of the window without a summary -> a summarizer run each (bounded, oldest first)

``failure-insights serve`` reconciles on its own, at start and every 30 s. With work pools
and workers, this flow's deployment in prefect.yaml does it on a schedule (every 5
minutes); ``failure-insights summary reconcile`` does it once, from a shell or cron.
"""

# No `from __future__ import annotations`: Prefect validates parameters from real annotations.
from prefect import flow
from prefect_failure_insights.tasks.reconcile import reconcile
from prefect_failure_insights.tasks.loading import load_database, load_settings

from prefect_failure_insights.defaults import (
    DEFAULT_BLOCK_NAME,
    RECONCILE_FLOW,
    RECONCILE_HOURS,
    RECONCILE_LIMIT,
)
from prefect_failure_insights.models import Reconciled


@flow(name=RECONCILE_FLOW, description="Replace dead summarizers; summarize every failure that has no summary.",
      retries=0, validate_parameters=True)
async def reconcile_summaries(hours: float = RECONCILE_HOURS, limit: int = RECONCILE_LIMIT,
                              settings_block: str = DEFAULT_BLOCK_NAME) -> Reconciled:
    """One reconcile pass over the last ``hours``.

    Args:
        hours: The look-back window for failures without a summary.
        limit: Most summarizer runs to start in this pass (oldest failure first).
        settings_block: Name of the ``failure-insights-settings`` block (its scope applies).
    """
    settings = await load_settings(settings_block)
    async with await load_database(settings) as database:
        return await reconcile(database, settings, hours, limit=limit)
