"""Delivering a summary: a markdown artifact on the failed run and a row in the database."""

from __future__ import annotations

import anyio
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import ArtifactCreate
from prefect.logging import get_run_logger
from prefect_sqlalchemy import SqlAlchemyConnector
from sqlalchemy import Engine

from prefect_failure_insights.exceptions import StorageError
from prefect_failure_insights.models import FlowRunInfo, Summary
from prefect_failure_insights.tasks import storage
from prefect_failure_insights.tasks.render import artifact_key, render_markdown


def run_url(flow_run_id: str) -> str | None:
    """The failed run's page in the Prefect UI, when the UI address is known."""
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    base = settings.ui_url
    if not base:
        return None
    return f"{str(base).rstrip('/')}/runs/flow-run/{flow_run_id}"


async def create_artifact(summary: Summary) -> str:
    """Attach the summary to the failed run as a markdown artifact; return its id.

    ``create_markdown_artifact()`` would attach it to the *summarizer's* run, so the
    artifact is created through the client with the failed run's id.
    """
    description = (
        f"{summary.analysis.category.value}: {summary.analysis.title}"
        + ("" if summary.status == "llm" else " (deterministic analysis)")
    )
    async with get_client() as client:
        artifact = await client.create_artifact(
            ArtifactCreate(
                flow_run_id=summary.flow_run_id,
                type="markdown",
                key=artifact_key(summary.flow_name),
                data=render_markdown(summary, run_url(summary.flow_run_id)),
                description=description[:500],
            )
        )
    return str(artifact.id)


class SummaryRow:
    """The failed run's row, for one summarizer run: claimed before the work, written
    after it, released if the work fails.

    A database error does not stop the summary: it is remembered in ``error``, the
    artifact still goes out, and the flow reports the error at the end. Every
    database call runs in a worker thread, off the event loop that other summaries
    share.
    """

    def __init__(self, connector: SqlAlchemyConnector, run: FlowRunInfo, summarizer_id: str) -> None:
        self.connector = connector
        self.engine: Engine | None = None
        self.run = run
        self.summarizer_id = summarizer_id
        self.claim: storage.Claim | None = None
        self.error: StorageError | None = None

    def _remember(self, exc: StorageError) -> None:
        self.error = exc
        get_run_logger().error("%s The summary is still published as an artifact.", exc)

    async def acquire(self, regenerate: bool) -> tuple[str, str] | None:
        """Claim the row; ``(action, reason)`` when this run should stop here."""
        try:
            self.engine = await anyio.to_thread.run_sync(storage.engine_of, self.connector)
            self.claim = await claim_summary(self.engine, self.run, self.summarizer_id, regenerate)
        except StorageError as exc:
            self._remember(exc)
            return None
        if self.claim.result == "exists":
            return "exists", "a summary already exists (run with regenerate=True to replace it)"
        if self.claim.result == "in_progress":
            return "skipped", "another summarizer run is summarizing this run right now"
        return None

    async def release(self) -> None:
        """Free a claim on a row without content, so the next trigger (or a re-run) can try again."""
        if self.engine is None or self.claim is None or self.claim.result != "claimed":
            return
        if self.claim.existing_status not in (None, storage.PENDING):
            return  # a finished summary being regenerated: it stays
        try:
            await anyio.to_thread.run_sync(storage.release, self.engine, self.run.id, self.summarizer_id)
        except StorageError:
            get_run_logger().warning("Could not release the claim on %s; it expires on its own", self.run.id)

    async def store(self, summary: Summary) -> storage.SaveResult | None:
        """Write the summary; "created"/"replaced", "lost" to another run, None on a database error."""
        if self.engine is None or self.claim is None:
            return None
        try:
            return await store_summary(self.engine, summary, self.summarizer_id)
        except StorageError as exc:
            self._remember(exc)
            await self.release()
            return None

    async def record_artifact(self, artifact_id: str) -> None:
        if self.error is None and self.engine is not None and self.claim is not None:
            try:
                await anyio.to_thread.run_sync(
                    storage.set_artifact, self.engine, self.run.id, artifact_id, self.summarizer_id
                )
            except StorageError as exc:
                self._remember(exc)

    async def close(self) -> None:
        await anyio.to_thread.run_sync(self.connector.close)


@task(name="claim-summary", cache_policy=NO_CACHE)
async def claim_summary(engine: Engine, run: FlowRunInfo, claimed_by: str, regenerate: bool) -> storage.Claim:
    """Claim the failed run's row, so that one summarizer, not two, does the work."""

    def claim() -> storage.Claim:
        storage.ensure_schema(engine)
        return storage.claim(engine, run, claimed_by, regenerate=regenerate)

    # Database drivers block (SQLite waits up to 30 s for a lock): keep the loop free.
    return await anyio.to_thread.run_sync(claim)


@task(name="store-summary", cache_policy=NO_CACHE)
async def store_summary(engine: Engine, summary: Summary, claimed_by: str) -> storage.SaveResult:
    """Write the summary into its claimed row."""
    return await anyio.to_thread.run_sync(storage.save, engine, summary, claimed_by)


@task(name="publish-artifact", cache_policy=NO_CACHE)
async def publish_artifact(summary: Summary) -> str:
    """Attach the summary to the failed run's page in the Prefect UI."""
    return await create_artifact(summary)
