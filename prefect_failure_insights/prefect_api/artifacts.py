"""Artifacts: a summary on the failed run's page, a batch report on the batch run's page."""

from __future__ import annotations

import json
from typing import Any

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import ArtifactCreate

from prefect_failure_insights.defaults import BATCH_ARTIFACT_KEY
from prefect_failure_insights.models import Summary
from prefect_failure_insights.redaction import redact_text
from prefect_failure_insights.reporting.summary import (
    artifact_description,
    artifact_key,
    render_markdown,
    run_url,
)


async def publish_artifact(client: PrefectClient, summary: Summary) -> str:
    """Attach the summary to the failed run as a markdown artifact; return its id.

    ``create_markdown_artifact()`` would attach it to the *summarizer's* run, so the
    artifact is created through the client with the failed run's id.
    """
    artifact = await client.create_artifact(ArtifactCreate(
        flow_run_id=summary.run.id,
        type="markdown",
        key=artifact_key(summary.run.flow_name),
        data=redact_text(render_markdown(summary, run_url(summary.run.id))),  # a second pass over everything
        description=redact_text(artifact_description(summary)),
    ))
    return str(artifact.id)


async def publish_report(client: PrefectClient, flow_run_id: str | None, report: str, table: list[dict[str, Any]],
                         title: str) -> str:
    """The batch report (markdown) and its errors (a table) on the batch run's page; the report's id."""
    markdown = await client.create_artifact(ArtifactCreate(
        flow_run_id=flow_run_id, type="markdown", key=BATCH_ARTIFACT_KEY, data=redact_text(report),
        description=redact_text(title)[:500]))
    await client.create_artifact(ArtifactCreate(
        flow_run_id=flow_run_id, type="table", key=f"{BATCH_ARTIFACT_KEY}-errors",
        data=redact_text(json.dumps(table)), description=redact_text(f"Errors of {title}")[:500]))
    return str(markdown.id)
