"""Claims are leases: a live holder keeps its claim by renewing it, a dead one loses it within a lease."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from sqlalchemy import update

from prefect_failure_insights.models import FailureAnalysis, FlowRunInfo
from prefect_failure_insights.store import fingerprints as cache
from prefect_failure_insights.store.summaries import (
    claim_summary,
    live_claims,
    release_expired,
    renew_summary,
)
from prefect_failure_insights.store.tables import fingerprints, summaries

RUN = FlowRunInfo(id="11111111-0000-4000-8000-000000000001", name="brave-otter", flow_name="orders", state="Failed")
KEY = cache.CacheKey("k" * 32, "f" * 32, "sig", "model", "v")
LONG_AGO = datetime.now(timezone.utc) - timedelta(seconds=31)


def _age(engine, table, seconds: float) -> None:
    with engine.begin() as conn:
        conn.execute(update(table).values(claimed_at=datetime.now(timezone.utc) - timedelta(seconds=seconds)))


def test_a_live_claim_is_refused_with_its_holder_and_what_to_do(engine) -> None:
    assert claim_summary(engine, RUN, "summarizer-a").holds
    other = claim_summary(engine, RUN, "summarizer-b")
    assert other.result == "in_progress" and other.holder == "summarizer-a" and 25 < other.lease_left_s <= 30
    action, reason = other.stop_reason
    assert action == "skipped" and "summarizer-a" in reason and "--regenerate" in reason
    assert live_claims(engine) == {RUN.id: "summarizer-a"}


def test_renewing_keeps_the_claim_and_a_lapsed_lease_frees_it(engine) -> None:
    claim_summary(engine, RUN, "summarizer-a")
    _age(engine, summaries, 25)
    assert renew_summary(engine, RUN.id, "summarizer-a")
    assert claim_summary(engine, RUN, "summarizer-b").result == "in_progress"  # renewed: still live
    _age(engine, summaries, 31)
    assert claim_summary(engine, RUN, "summarizer-b").holds
    assert not renew_summary(engine, RUN.id, "summarizer-a")  # the old holder learns it lost the claim


def test_the_claim_of_a_holder_known_to_have_ended_is_taken_at_once(engine) -> None:
    claim_summary(engine, RUN, "summarizer-a")
    assert claim_summary(engine, RUN, "summarizer-b", take_over_from="summarizer-a").holds
    assert claim_summary(engine, RUN, "summarizer-c", take_over_from="summarizer-a").result == "in_progress"


def test_expired_claims_are_released_and_live_ones_kept(engine) -> None:
    other = RUN.model_copy(update={"id": "11111111-0000-4000-8000-000000000002"})
    claim_summary(engine, RUN, "dead")
    _age(engine, summaries, 31)
    claim_summary(engine, other, "alive")
    assert release_expired(engine) == [RUN.id]
    assert live_claims(engine) == {other.id: "alive"}


def test_a_fingerprint_owner_that_stops_renewing_is_replaced(engine) -> None:
    assert cache.lookup(engine, KEY, RUN.id, me="owner").owner
    waiting = cache.lookup(engine, KEY, RUN.id, me="waiter")
    assert not waiting.owner and waiting.holder == "owner"
    assert cache.renew(engine, KEY, "owner")
    assert cache.lookup(engine, KEY, RUN.id, me="waiter", take_over_from="owner").owner  # its run ended
    assert not cache.renew(engine, KEY, "owner")
    _age(engine, fingerprints, 31)
    assert cache.release_expired(engine) == 1
    assert cache.lookup(engine, KEY, RUN.id, me="third").owner


def test_a_ready_answer_is_reused_and_never_expires(engine) -> None:
    analysis = FailureAnalysis(title="t", what_happened="w", how_to_fix=["f"], root_cause="r",
                               category="UNKNOWN", confidence=0.5)
    assert cache.lookup(engine, KEY, RUN.id, me="owner").owner
    cache.store(engine, KEY, analysis, run_id=RUN.id, me="owner")
    _age(engine, fingerprints, 3600)
    assert cache.release_expired(engine) == 0
    assert cache.lookup(engine, KEY, "other-run", me="waiter").hit.analysis == analysis


def test_the_lease_is_renewed_in_the_background_while_the_holder_works(database) -> None:
    async def work() -> tuple[bool, int]:
        await database.run(claim_summary, RUN, "summarizer-a")
        await database.run(_age, summaries, 29)
        async with database.lease("the summary", renew_summary, RUN.id, "summarizer-a", every=0.05) as lease:
            await asyncio.sleep(0.3)
        claim = await database.run(claim_summary, RUN, "summarizer-b")
        return lease.lost, claim.lease_left_s or 0

    lost, left = asyncio.run(work())
    assert not lost and left > 29
