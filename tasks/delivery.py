"""Delivering a summary: a markdown artifact on the failed run and a row in the database."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import ArtifactCreate
from sqlalchemy import Engine

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


@task(name="claim-summary", cache_policy=NO_CACHE)
def claim_summary(engine: Engine, run: FlowRunInfo, claimed_by: str, regenerate: bool) -> storage.Claim:
    """Claim the failed run's row, so that one summarizer, not two, does the work."""
    storage.ensure_schema(engine)
    return storage.claim(engine, run, claimed_by, regenerate=regenerate)


@task(name="store-summary", cache_policy=NO_CACHE)
def store_summary(engine: Engine, summary: Summary, claimed_by: str) -> storage.SaveResult:
    """Write the summary into its claimed row."""
    return storage.save(engine, summary, claimed_by)


@task(name="publish-artifact", cache_policy=NO_CACHE)
async def publish_artifact(summary: Summary) -> str:
    """Attach the summary to the failed run's page in the Prefect UI."""
    return await create_artifact(summary)
