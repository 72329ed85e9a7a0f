"""The `retry-transient-failure` flow: every summarized failure of a deployment's run gets a retry
decision, and a failure a retry would fix is retried.

    the run's summary, as the plugin stored it
      -> decide behind the guard (own flows, deployment runs only, still failed, a final summary of
         this failure; TRANSIENT in the categories, or crashed by its infrastructure when asked;
         under N automatic retries counted from its state history; the limits enforced whatever
         the parameters say)
      -> record the decision on the summary, keyed by the failure's attempt (for a retry: first,
         as the claim that no other run of this flow retries the same failure)
      -> retry the run (AwaitingRetry after the delay)
      -> the card again, in place, and a ``failure-insights.retry.decided`` event, when the
         decision is new: never a summary event, which would start this flow again

Its parameters are the run's id and the policy only: what the failure is comes from the store,
never from the caller, so a forged ``failure-insights.summary.created`` event (any API client can
emit one) or a hand-made run of the deployment cannot retry a run the plugin did not find
retryable. Started by the automation installed with ``failure-insights retry install``, on the
summary event of every final summary; or by hand:
``prefect deployment run retry-transient-failure/failure-insights-retry -p flow_run_id=...``.
A second run for the same failure (the summary made again when late logs arrive) changes nothing.
"""

from uuid import UUID

from prefect import flow
from prefect.runtime import flow_run as current_run
from prefect_failure_insights.tasks.retry import (
    decide_retry,
    publish_decision,
    read_stored_summary,
    record_decision,
    schedule_retry,
)
from prefect_failure_insights.tasks.loading import load_database, load_settings

from prefect_failure_insights.defaults import (
    DEFAULT_BLOCK_NAME,
    RETRY_CATEGORIES,
    RETRY_CRASHED,
    RETRY_DELAY_SECONDS,
    RETRY_FLOW,
    RETRY_MAX_RETRIES,
    RETRY_OOM,
)
from prefect_failure_insights.models import RetryOutcome, RetryPolicy


@flow(name=RETRY_FLOW, description="Decide whether to retry a failed run from its stored summary, retry it if so, "
                                   "and say why or why not.",
      retries=0, timeout_seconds=300, validate_parameters=True)
async def retry_transient_failure(
    flow_run_id: UUID,
    max_retries: int = RETRY_MAX_RETRIES,
    delay_seconds: float = RETRY_DELAY_SECONDS,
    categories: list[str] = list(RETRY_CATEGORIES),  # noqa: B006 - Prefect copies parameters
    crashed: bool = RETRY_CRASHED,
    oom: bool = RETRY_OOM,
    settings_block: str = DEFAULT_BLOCK_NAME,
) -> RetryOutcome:
    """Decide whether ``flow_run_id`` is retried, retry it after ``delay_seconds`` if so, and
    record why or why not on its summary (row, card) and in an event.

    Args:
        flow_run_id: The failed or crashed run of a deployment.
        max_retries: Most automatic retries of one run (never more than the plugin's limit, 10).
        delay_seconds: Wait before the run starts again (at most a day).
        categories: The categories whose transient failures are retried.
        crashed: Also retry a run that crashed for infrastructure reasons (evicted, preempted,
            node lost, pod never started, SIGTERM).
        oom: With ``crashed``, also a run killed for running out of memory, or by SIGKILL.
        settings_block: The settings block naming the summaries' database.
    """
    policy = RetryPolicy(max_retries=max_retries, delay_s=delay_seconds, categories=tuple(categories),
                         crashed=crashed, oom=oom)
    settings = await load_settings(settings_block)
    async with await load_database(settings) as database:
        summary = await read_stored_summary(database, flow_run_id)
        outcome = await decide_retry(flow_run_id, summary, policy)
        outcome = await record_decision(database, outcome)
        if outcome.retried:
            outcome = await schedule_retry(outcome, policy)
            if outcome.recorded == "pending":  # the server refused the retry
                outcome = await record_decision(database, outcome)
        return await publish_decision(outcome, str(current_run.id) if current_run.id else None)
