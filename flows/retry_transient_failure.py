"""The `retry-transient-failure` flow: a failed run whose stored summary says TRANSIENT, retried once more.

    the run's summary, as the plugin stored it
      -> retry the run behind the guard (own flows, deployment runs only, still failed, a final
         summary of this failure, TRANSIENT, in the categories, under N automatic retries counted
         from its state history; the limits enforced whatever the parameters say)
      -> note the retry in its summary (row + artifact, in place)

Its parameters are the run's id and the limits only: what the failure is comes from the store,
never from the caller, so a forged ``failure-insights.summary.created`` event (any API client can
emit one) or a hand-made run of the deployment cannot retry a run the plugin did not find
transient. Started by the automation installed with ``failure-insights retry install``, on the
summary event of a final summary; or by hand:
``prefect deployment run retry-transient-failure/failure-insights-retry -p flow_run_id=...``.
"""

from uuid import UUID

from prefect import flow
from prefect_failure_insights.tasks.retry import note_retry, read_stored_summary, retry_failed_run
from prefect_failure_insights.tasks.loading import load_database, load_settings

from prefect_failure_insights.defaults import (
    DEFAULT_BLOCK_NAME,
    RETRY_CATEGORIES,
    RETRY_DELAY_SECONDS,
    RETRY_FLOW,
    RETRY_MAX_RETRIES,
)
from prefect_failure_insights.models import RetryOutcome


@flow(name=RETRY_FLOW, description="Retry a failed run whose stored summary says its failure is transient.",
      retries=0, timeout_seconds=300, validate_parameters=True)
async def retry_transient_failure(
    flow_run_id: UUID,
    max_retries: int = RETRY_MAX_RETRIES,
    delay_seconds: float = RETRY_DELAY_SECONDS,
    categories: list[str] = list(RETRY_CATEGORIES),  # noqa: B006 - Prefect copies parameters
    settings_block: str = DEFAULT_BLOCK_NAME,
) -> RetryOutcome:
    """Retry ``flow_run_id`` after ``delay_seconds`` if its stored summary and the guard allow
    it, and note it in its summary.

    Args:
        flow_run_id: The failed or crashed run of a deployment.
        max_retries: Most automatic retries of one run (never more than the plugin's limit, 10).
        delay_seconds: Wait before the run starts again (at most a day).
        categories: The categories whose transient failures are retried.
        settings_block: The settings block naming the summaries' database.
    """
    settings = await load_settings(settings_block)
    async with await load_database(settings) as database:
        summary = await read_stored_summary(database, flow_run_id)
        outcome = await retry_failed_run(flow_run_id, summary, max_retries, delay_s=delay_seconds,
                                         categories=categories)
        if not outcome.retried:
            return outcome
        return await note_retry(database, outcome)
