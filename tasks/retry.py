"""The tasks of the `retry-transient-failure` flow: decide, record the decision (the claim of a
retry), retry, and say so on the card and in an event."""

from __future__ import annotations

from uuid import UUID

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.logging import get_run_logger

from prefect_failure_insights.exceptions import StorageError
from prefect_failure_insights.models import RetryOutcome, RetryPolicy, Summary
from prefect_failure_insights.prefect_api import artifacts, events, retries
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


@task(name="decide-retry", cache_policy=NO_CACHE)
async def decide_retry(flow_run_id: UUID | str, summary: Summary | None, policy: RetryPolicy) -> RetryOutcome:
    """Whether the guard lets the run be retried now, and why or why not (see `prefect_api.retries`)."""
    async with get_client() as client:
        outcome = await retries.decide_retry(client, flow_run_id, summary, policy=policy)
    get_run_logger().info("%s %s: %s", "Retrying" if outcome.retried else "Not retrying", outcome.flow_run_id,
                          outcome.reason)
    return outcome


@task(name="record-decision", cache_policy=NO_CACHE)
async def record_decision(database: Database, outcome: RetryOutcome) -> RetryOutcome:
    """Record the decision on the run's summary (`store.summaries.note_decision`): unchanged when the
    summary says it already; for a retry, recorded first, as the claim that no other run makes it."""
    try:
        summary, action = await database.run(rows.note_decision, outcome.flow_run_id, outcome.decision)
    except StorageError as exc:
        get_run_logger().warning("The decision on %s is not on its summary: %s", outcome.flow_run_id, exc)
        return outcome.model_copy(update={"recorded": "not_stored"})
    return outcome.model_copy(update={"summary": summary, "recorded": action})


@task(name="schedule-retry", cache_policy=NO_CACHE)
async def schedule_retry(outcome: RetryOutcome, policy: RetryPolicy) -> RetryOutcome:
    """Set the run AwaitingRetry after the delay, if this run of the flow recorded the decision to
    retry it (otherwise another one did, or the database could not say: no retry)."""
    if outcome.recorded != "recorded":
        get_run_logger().info("Not retrying %s: %s", outcome.flow_run_id, outcome.unclaimed().reason)
        return outcome.unclaimed()
    title = outcome.summary.analysis.title if outcome.summary is not None else None
    async with get_client() as client:
        return await retries.schedule_retry(client, outcome, delay_s=policy.delay_s, title=title)


@task(name="publish-decision", cache_policy=NO_CACHE)
async def publish_decision(outcome: RetryOutcome, retry_flow_run_id: str | None) -> RetryOutcome:
    """The card again, in place, when the decision is new on it (or the summary was made again since),
    and the decision's event when it is new; a decision the summary had already says nothing."""
    summary = outcome.summary
    async with get_client() as client:
        if summary is not None and (outcome.recorded == "recorded" or outcome.remade_since_decided):
            await artifacts.publish_artifact(client, summary)
            outcome = outcome.model_copy(update={"noted": True})
    if outcome.recorded == "unchanged":
        return outcome
    try:
        emitted = await events.emit_decision_event(outcome, summary, retry_flow_run_id) is not None
    except Exception as exc:  # noqa: BLE001 - the decision is made and recorded
        get_run_logger().error("Decision event not emitted (%s: %s)", type(exc).__name__, exc)
        return outcome
    return outcome.model_copy(update={"event_emitted": emitted})
