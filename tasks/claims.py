"""The tasks that claim a failed run's row and free it (`lifecycle.claims`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.logging import get_run_logger

from prefect_failure_insights.exceptions import StorageError
from prefect_failure_insights.lifecycle import claims
from prefect_failure_insights.lifecycle.context import SummarizerRun
from prefect_failure_insights.models import Claim, FlowRunInfo
from prefect_failure_insights.store import Database


@task(name="claim-summary", cache_policy=NO_CACHE)
async def claim_summary(database: Database, run: FlowRunInfo, claimed_by: str, *, regenerate: bool) -> Claim:
    """Claim the failed run's row, so that one summarizer, not two, does the work; the claim of a
    holder whose run has ended (it died, or lost its database mid-run) is taken over at once."""
    try:
        async with get_client() as client:
            return await claims.claim_summary(client, database, run, claimed_by=claimed_by, regenerate=regenerate)
    except StorageError as exc:
        get_run_logger().error("%s The summary is still published as an artifact.", exc)
        return Claim(result="unavailable", run_id=run.id, claimed_by=claimed_by, error=str(exc))


@asynccontextmanager
async def holding(run: SummarizerRun) -> AsyncIterator[None]:
    """Keep the summary's claim while the block runs (renewed; nothing to keep without a claim)."""
    async with claims.holding(run.database, run.claim):
        yield


@task(name="release-summary", cache_policy=NO_CACHE)
async def release_summary(run: SummarizerRun) -> None:
    """Free a claim on a row without content, so that the next trigger (or a re-run) can try again."""
    try:
        await claims.release_summary(run.database, run.claim)
    except StorageError:
        get_run_logger().warning("Could not release the claim on %s; it expires on its own", run.root.id)
