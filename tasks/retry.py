"""The tasks of the `retry-transient-failure` flow: retry behind the guard, then say so in the summary."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.logging import get_run_logger

from prefect_failure_insights.exceptions import StorageError
from prefect_failure_insights.models import RetryOutcome, Summary
from prefect_failure_insights.prefect_api import artifacts, retries
from prefect_failure_insights.store import Database
from prefect_failure_insights.store import summaries as rows


@task(name="read-stored-summary", cache_policy=NO_CACHE)
async def read_stored_summary(database: Database, flow_run_id: UUID | str) -> Summary | None:
    """The run's summary as the plugin stored it: what the retry is decided from (None when the
    run has none, or the database cannot be read: no retry without it)."""
    try:
        return await database.run(rows.get_summary, str(flow_run_id))
    except StorageError as exc:
        get_run_logger().warning("Not retrying %s: its summary cannot be read (%s)", flow_run_id, exc)
        return None


@task(name="retry-failed-run", cache_policy=NO_CACHE)
async def retry_failed_run(flow_run_id: UUID | str, summary: Summary | None, max_retries: int,
                           *, delay_s: float, categories: Sequence[str]) -> RetryOutcome:
    """Set the failed run AwaitingRetry after ``delay_s``, unless the guard refuses (see `prefect_api.retries`)."""
    async with get_client() as client:
        outcome = await retries.retry_failed_run(client, flow_run_id, summary, max_retries=max_retries,
                                                 delay_s=delay_s, categories=categories)
    get_run_logger().info("%s %s: %s", "Retrying" if outcome.retried else "Not retrying", outcome.flow_run_id,
                          outcome.reason)
    return outcome


@task(name="note-retry", cache_policy=NO_CACHE)
async def note_retry(database: Database, outcome: RetryOutcome) -> RetryOutcome:
    """Say in the run's summary (row and artifact, in place) that it was retried."""
    try:
        summary = await database.run(rows.note_retry, outcome.flow_run_id, outcome.retries)
    except StorageError as exc:
        get_run_logger().warning("The retry is in the run's state history, not in its summary: %s", exc)
        return outcome
    if summary is None:
        get_run_logger().warning("Run %s has no finished summary to note the retry in", outcome.flow_run_id)
        return outcome
    async with get_client() as client:
        await artifacts.publish_artifact(client, summary)
    return outcome.model_copy(update={"noted": True})
