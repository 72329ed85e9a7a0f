"""The `retry-transient-failure` flow: a failed run whose summary says TRANSIENT, retried once more.

    retry the run behind the guard (own flows, deployment runs only, still failed, TRANSIENT,
      in the categories, under N automatic retries counted from its state history)
      -> note the retry in its summary (row + artifact, in place)

Started by the automation installed with ``failure-insights retry install``, on the
``failure-insights.summary.created|updated`` event of a final summary; or by hand:
``prefect deployment run retry-transient-failure/failure-insights-retry -p flow_run_id=...``.
"""

from uuid import UUID

from prefect import flow
from prefect_failure_insights.tasks.retry import note_retry, retry_failed_run
from prefect_failure_insights.tasks.loading import load_database, load_settings

from prefect_failure_insights.defaults import (
    DEFAULT_BLOCK_NAME,
    RETRY_CATEGORIES,
    RETRY_DELAY_SECONDS,
    RETRY_FLOW,
    RETRY_MAX_RETRIES,
)
from prefect_failure_insights.models import RetryOutcome


@flow(name=RETRY_FLOW, description="Retry a failed run whose summary says its failure is transient.",
      retries=0, timeout_seconds=300, validate_parameters=True)
async def retry_transient_failure(
    flow_run_id: UUID,
    transience: str,
    category: str,
    title: str = "",
    max_retries: int = RETRY_MAX_RETRIES,
    delay_seconds: float = RETRY_DELAY_SECONDS,
    categories: list[str] = list(RETRY_CATEGORIES),  # noqa: B006 - Prefect copies parameters
    settings_block: str = DEFAULT_BLOCK_NAME,
) -> RetryOutcome:
    """Retry ``flow_run_id`` after ``delay_seconds`` if the guard allows it, and note it in its summary.

    Args:
        flow_run_id: The failed or crashed run of a deployment.
        transience: Its summary's transience; only TRANSIENT is retried.
        category: Its summary's category; only ``categories`` are retried.
        title: Its summary's title, for the note in the run's state history.
        max_retries: Most automatic retries of one run.
        delay_seconds: Wait before the run starts again.
        categories: The categories whose transient failures are retried.
        settings_block: The settings block naming the summaries' database.
    """
    outcome = await retry_failed_run(flow_run_id, max_retries, delay_seconds, transience=transience, category=category,
                                     categories=categories, reason=title)
    if not outcome.retried:
        return outcome
    settings = await load_settings(settings_block)
    async with await load_database(settings) as database:
        return await note_retry(database, outcome)
