"""The tasks that deliver a summary: the row, the artifact on the failed run, the summary event
(`store.summaries`, `prefect_api.artifacts`, `prefect_api.events`)."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.logging import get_run_logger
from prefect_failure_insights.tasks.claims import release_summary

from prefect_failure_insights.exceptions import StorageError
from prefect_failure_insights.lifecycle.context import SummarizerRun
from prefect_failure_insights.models import EventAction, Stored, Summary
from prefect_failure_insights.prefect_api import artifacts, events
from prefect_failure_insights.store import summaries as rows


@task(name="store-summary", cache_policy=NO_CACHE)
async def store_summary(run: SummarizerRun, summary: Summary) -> Stored:
    """Write the summary into its claimed row; a database error leaves it unstored (and says why)."""
    if not run.claim.holds:
        return Stored(summary=summary, action="not_stored", error=run.claim.error)
    try:
        return await run.database.run(rows.store_summary, summary, run.summarizer_id)
    except StorageError as exc:
        get_run_logger().error("%s The summary is still published as an artifact.", exc)
        await release_summary.fn(run)
        return Stored(summary=summary, action="not_stored", error=str(exc))


@task(name="publish-artifact", cache_policy=NO_CACHE)
async def publish_artifact(summary: Summary) -> str:
    """Attach the summary to the failed run's page in the Prefect UI; return the artifact's id."""
    async with get_client() as client:
        return await artifacts.publish_artifact(client, summary)


@task(name="record-artifact", cache_policy=NO_CACHE)
async def record_artifact(run: SummarizerRun, stored: Stored, artifact_id: str) -> Stored:
    """Record the artifact's id in the row this summarizer wrote."""
    summary = stored.summary.model_copy(update={
        "delivery": stored.summary.delivery.model_copy(update={"artifact_id": artifact_id})})
    if stored.error is not None or stored.action == "lost":
        return stored.model_copy(update={"summary": summary})
    try:
        await run.database.run(rows.record_artifact, summary.run.id, artifact_id, claimed_by=run.summarizer_id)
    except StorageError as exc:
        get_run_logger().error("%s", exc)
        return stored.model_copy(update={"summary": summary, "error": str(exc)})
    return stored.model_copy(update={"summary": summary})


@task(name="log-summary-record", cache_policy=NO_CACHE)
async def log_summary_record(run: SummarizerRun, summary: Summary) -> None:
    """Append one record to the failed run's logs saying where its summary is (the run page opens on
    its logs). Off with the settings' ``log_summary_record``; a failure is logged, not raised."""
    if not run.settings.log_summary_record:
        return
    try:
        async with get_client() as client:
            await artifacts.log_summary_record(client, summary)
    except Exception as exc:  # noqa: BLE001 - the summary is delivered
        get_run_logger().warning("Could not add the summary's record to the run's logs (%s: %s)",
                                 type(exc).__name__, exc)


@task(name="emit-summary-event", cache_policy=NO_CACHE)
async def emit_summary_event(run: SummarizerRun, summary: Summary, action: EventAction) -> None:
    """Announce the delivered summary with a Prefect event (notifications and retries act on it).
    The summary is out already: a failure to emit is logged, not raised."""
    try:
        event = await events.emit_summary_event(summary, action, run.summarizer_id)
    except Exception as exc:  # noqa: BLE001 - the artifact and the row are delivered
        get_run_logger().error("Summary event not emitted (%s: %s): automations on it will not act on this "
                               "summary", type(exc).__name__, exc)
        return
    if event is not None:
        get_run_logger().info("Emitted %s for %s (%s)", event.event, summary.run.id, summary.status)
