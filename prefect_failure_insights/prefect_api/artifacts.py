"""Artifacts: a summary on the failed run's page, a batch report on the batch run's page."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import ArtifactCreate, ArtifactUpdate
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey
from prefect.client.schemas.sorting import ArtifactSort

from prefect_failure_insights.prefect_api.quick_retry import promptly
from prefect_failure_insights.defaults import BATCH_ARTIFACT_KEY, SUMMARY_RECORD_LOGGER, SUMMARY_RECORD_PREFIX
from prefect_failure_insights.models import Summary
from prefect_failure_insights.redaction import Redactor
from prefect_failure_insights.reporting import markdown as md
from prefect_failure_insights.reporting.card import (
    artifact_description,
    artifact_key,
    artifact_url,
    render_markdown,
    run_url,
)


def summary_record(summary: Summary) -> str:
    """The one line appended to the failed run's logs: where people already look, it says a
    summary exists and where (its title is a run's or an LLM's text: one line, redacted)."""
    title = " ".join(Redactor().redact(summary.analysis.title).split())[:200]  # the log viewer shows plain text
    url = artifact_url(summary.delivery.artifact_id)
    return f"{SUMMARY_RECORD_PREFIX}{title}: see the Artifacts tab" + (f" ({url})" if url else "")


async def log_summary_record(client: PrefectClient, summary: Summary) -> None:
    """Append `summary_record` to the failed run's logs, as the plugin's own logger."""
    from datetime import datetime, timezone

    from prefect.client.schemas.actions import LogCreate

    await client.create_logs([LogCreate(name=SUMMARY_RECORD_LOGGER, level=20, message=summary_record(summary),
                                        timestamp=datetime.now(timezone.utc), flow_run_id=UUID(summary.run.id))])


async def publish_artifact(client: PrefectClient, summary: Summary) -> str:
    """Attach the summary to the failed run as a markdown artifact; return its id.

    One summary artifact per failed run: when the run already has one (a regenerated
    summary, or a summarizer that published and then lost its database), it is updated
    in place rather than joined by a second. ``create_markdown_artifact()`` would attach
    it to the *summarizer's* run, so the artifact is written through the client with the
    failed run's id. Written `promptly`: the card is what the user waits for.
    """
    key = artifact_key(summary.run.flow_name)
    data = Redactor().redact(render_markdown(summary, run_url(summary.run.id)))  # a second pass over everything
    description = Redactor().redact(artifact_description(summary))
    existing = await client.read_artifacts(
        artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]),
                                       flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(summary.run.id)])),
        sort=ArtifactSort.CREATED_DESC, limit=1)
    if existing:
        update = ArtifactUpdate(data=data, description=description)
        await promptly(client, "PATCH", f"/artifacts/{existing[0].id}", json=update.model_dump(mode="json",
                                                                                           exclude_unset=True))
        return str(existing[0].id)
    create = ArtifactCreate(flow_run_id=summary.run.id, type="markdown", key=key, data=data, description=description)
    response = await promptly(client, "POST", "/artifacts/", json=create.model_dump(mode="json", exclude_unset=True))
    return str(response.json()["id"])


async def publish_report(client: PrefectClient, flow_run_id: str | None, report: str, *, table: list[dict[str, Any]],
                         title: str) -> str:
    """The batch report (markdown) and its errors (a table) on the batch run's page; the report's id.

    The table is redacted cell by cell, not as one JSON text: redacting a text with escapes keeps
    a position per character (`redaction.scanner`), ~40 bytes each: the table of 10,000 errors
    took 290 MB more at its peak that way, of 50,000 errors ~900 MB.
    """
    redactor = Redactor()
    markdown = await client.create_artifact(ArtifactCreate(
        flow_run_id=flow_run_id, type="markdown", key=BATCH_ARTIFACT_KEY, data=redactor.redact(report),
        description=redactor.redact(md.text(title))[:500]))
    cells = [{redactor.redact(k): redactor.redact(v) if isinstance(v, str) else v for k, v in row.items()}
             for row in table]
    await client.create_artifact(ArtifactCreate(
        flow_run_id=flow_run_id, type="table", key=f"{BATCH_ARTIFACT_KEY}-errors",
        data=json.dumps(cells), description=redactor.redact(md.text(f"Errors of {title}"))[:500]))
    return str(markdown.id)
