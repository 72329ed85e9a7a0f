"""A summarizer's claim on the failed run's row: taken before any LLM call, kept while it works,
released when it ends without a summary (the SQL is `store.summaries`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prefect.client.orchestration import PrefectClient

from prefect_failure_insights.models import Claim, FlowRunInfo
from prefect_failure_insights.prefect_api.runs import has_ended
from prefect_failure_insights.store import Database
from prefect_failure_insights.store import summaries as rows


async def claim_summary(client: PrefectClient, database: Database, run: FlowRunInfo, *, claimed_by: str,
                        regenerate: bool = False) -> Claim:
    """Claim the failed run's row, so that one summarizer, not two, does the work; the claim of a
    holder whose run has ended (it died, or lost its database mid-run) is taken over at once.

    Raises:
        StorageError: the database failed.
    """
    claim = await database.run(rows.claim_summary, run, claimed_by, regenerate=regenerate)
    if claim.result == "in_progress" and await has_ended(client, claim.holder):
        claim = await database.run(rows.claim_summary, run, claimed_by, take_over_from=claim.holder)
    return claim


@asynccontextmanager
async def holding(database: Database, claim: Claim) -> AsyncIterator[None]:
    """Keep the claim's lease while the block runs (nothing to keep without a claim)."""
    if not claim.holds:
        yield
        return
    async with database.lease(f"the summary of {claim.run_id}", rows.renew_summary, claim.run_id,
                              claim.claimed_by):
        yield


async def release_summary(database: Database, claim: Claim) -> bool:
    """Free a claim on a row without content, so that the next trigger (or a re-run) can try
    again; whether there was one to free (a finished summary being regenerated stays).

    Raises:
        StorageError: the database failed (the claim then runs out on its own).
    """
    if not claim.row_is_new:
        return False
    await database.run(rows.release_summary, claim.run_id, claim.claimed_by)
    return True
