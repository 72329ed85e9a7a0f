"""The fingerprint cache's rows: one LLM call per distinct failure, however many runs fail with it.

A row per cache key (fingerprint + model + prompt version) in ``failure_fingerprints``.
The first summarizer to see a fingerprint *claims* the row (an insert the primary key
lets only one win) and calls the LLM; the others wait for its answer and reuse it, so
a storm of identical failures costs one call even when they arrive together. The claim
is a lease the owner renews (`renew()`) while it asks: if the owner fails, it releases
the row and the next waiter takes over; if it dies, its lease runs out and the next
waiter takes over then (or at once, told that the owner has ended). Only LLM answers
are cached, never fallbacks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, select, update

from prefect_failure_insights.defaults import CLAIM_LEASE
from prefect_failure_insights.models import FailureAnalysis
from prefect_failure_insights.store.sql import fit, guard, insert_ignore, now, utc
from prefect_failure_insights.store.tables import fingerprints

PENDING, READY = "pending", "ready"


@dataclass(frozen=True)
class CacheKey:
    key: str
    fingerprint: str
    signature: str
    model: str
    prompt_version: str


@dataclass(frozen=True)
class Hit:
    analysis: FailureAnalysis
    first_run_id: str | None
    first_seen: datetime | None
    occurrences: int


@dataclass(frozen=True)
class Lookup:
    """``hit`` when the answer is known; else ``owner`` says whether this run holds the claim,
    and ``holder`` who does when another summarizer holds a live one."""

    hit: Hit | None = None
    owner: bool = False
    holder: str | None = None


def _claim(engine: Engine, key: CacheKey, run_id: str, me: str) -> bool:
    current = now()
    with engine.begin() as conn:
        return insert_ignore(conn, fingerprints, fit(fingerprints, {
            "cache_key": key.key, "fingerprint": key.fingerprint, "signature": key.signature,
            "model": key.model, "prompt_version": key.prompt_version, "status": PENDING,
            "first_run_id": run_id, "first_seen": current, "last_seen": current, "occurrences": 0,
            "claimed_by": me, "claimed_at": current,
        }))


def lookup(engine: Engine, key: CacheKey, run_id: str, *, me: str, take_over: bool = False,
           take_over_from: str | None = None, lease: timedelta = CLAIM_LEASE) -> Lookup:
    """One look: the known answer, or the claim, or who holds a live claim (the caller waits
    and looks again). A claim whose lease ran out, whose holder is ``take_over_from`` (known
    to have ended) or, with ``take_over``, any pending claim, is taken over atomically."""
    with guard(engine, "read the fingerprint cache"):
        for _ in range(3):  # a row released between our insert and our read: claim again
            if _claim(engine, key, run_id, me):
                return Lookup(owner=True)
            with engine.begin() as conn:
                row = conn.execute(select(fingerprints).where(fingerprints.c.cache_key == key.key)).first()
                if row is None:
                    continue
                if row.status == READY:
                    conn.execute(update(fingerprints).where(fingerprints.c.cache_key == key.key).values(
                        occurrences=fingerprints.c.occurrences + 1, last_seen=now()))
                    return Lookup(hit=Hit(FailureAnalysis.model_validate_json(row.analysis), row.first_run_id,
                                          utc(row.first_seen), (row.occurrences or 0) + 1))
                expired = row.claimed_at is None or now() - utc(row.claimed_at) >= lease
                if not (expired or take_over or row.claimed_by in (me, take_over_from)):
                    return Lookup(holder=row.claimed_by)
                taken = conn.execute(
                    update(fingerprints)
                    .where(fingerprints.c.cache_key == key.key)
                    .where(fingerprints.c.claimed_by == row.claimed_by)
                    .where(fingerprints.c.status == PENDING)
                    .values(claimed_by=me, claimed_at=now())
                ).rowcount
                return Lookup(owner=True) if taken == 1 else Lookup(holder=row.claimed_by)
        return Lookup()  # still changing: the caller looks again


def renew(engine: Engine, key: CacheKey, me: str) -> bool:
    """Renew this owner's lease on the key; False when it no longer holds the claim."""
    with guard(engine, "renew the fingerprint claim"), engine.begin() as conn:
        return conn.execute(
            update(fingerprints).where(fingerprints.c.cache_key == key.key)
            .where(fingerprints.c.claimed_by == me).where(fingerprints.c.status == PENDING)
            .values(claimed_at=now())
        ).rowcount == 1


def release_expired(engine: Engine, lease: timedelta = CLAIM_LEASE) -> int:
    """Delete pending claims whose lease ran out (their owner died); how many."""
    with guard(engine, "release expired fingerprint claims"), engine.begin() as conn:
        return conn.execute(delete(fingerprints).where(fingerprints.c.status == PENDING).where(
            fingerprints.c.claimed_at.is_(None) | (fingerprints.c.claimed_at < now() - lease))).rowcount


def store(engine: Engine, key: CacheKey, analysis: FailureAnalysis, *, run_id: str, me: str,
          replace: bool = False) -> None:
    """Record the LLM's answer for the key (as its owner, or replacing it on regenerate)."""
    values = {"status": READY, "analysis": analysis.model_dump_json(), "last_seen": now(), "claimed_by": me}
    with guard(engine, "write the fingerprint cache"):
        if replace and not _claim(engine, key, run_id, me):
            with engine.begin() as conn:  # regenerate: the new answer replaces the cached one
                conn.execute(update(fingerprints).where(fingerprints.c.cache_key == key.key).values(**values))
            return
        with engine.begin() as conn:
            conn.execute(
                update(fingerprints)
                .where(fingerprints.c.cache_key == key.key)
                .where(fingerprints.c.claimed_by == me)
                .values(**values, occurrences=fingerprints.c.occurrences + 1)
            )


def release(engine: Engine, key: CacheKey, me: str) -> None:
    """Give up a claim without an answer, so that the next waiter asks instead."""
    with guard(engine, "release the fingerprint claim"), engine.begin() as conn:
        conn.execute(delete(fingerprints).where(fingerprints.c.cache_key == key.key)
                     .where(fingerprints.c.claimed_by == me).where(fingerprints.c.status == PENDING))
