"""The fingerprint cache's rows: one LLM call per distinct failure, however many runs fail with it.

A row per cache key (fingerprint + model + prompt version) in ``failure_fingerprints``.
The first summarizer to see a fingerprint *claims* the row (an insert the primary key
lets only one win) and calls the LLM; the others wait for its answer and reuse it, so
a storm of identical failures costs one call even when they arrive together. If the
owner fails, it releases the row and the next waiter takes over; a claim older than
``stale_after`` is taken over too. Only LLM answers are cached, never fallbacks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, select, update

from prefect_failure_insights.defaults import STALE_CLAIM
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
    """``hit`` when the answer is known; else ``owner`` says whether this run holds the claim."""

    hit: Hit | None = None
    owner: bool = False


def _claim(engine: Engine, key: CacheKey, run_id: str, me: str) -> bool:
    current = now()
    with engine.begin() as conn:
        return insert_ignore(conn, fingerprints, fit(fingerprints, {
            "cache_key": key.key, "fingerprint": key.fingerprint, "signature": key.signature,
            "model": key.model, "prompt_version": key.prompt_version, "status": PENDING,
            "first_run_id": run_id, "first_seen": current, "last_seen": current, "occurrences": 0,
            "claimed_by": me, "claimed_at": current,
        }))


def lookup(engine: Engine, key: CacheKey, run_id: str, me: str, wait_s: float = 60.0,
           stale_after: timedelta = STALE_CLAIM, poll_s: float = 0.25) -> Lookup:
    """Reuse a known answer, or claim the right to ask for one (waiting for another owner)."""
    deadline = time.monotonic() + wait_s
    with guard(engine, "read the fingerprint cache"):
        while True:
            if _claim(engine, key, run_id, me):
                return Lookup(owner=True)
            with engine.begin() as conn:
                row = conn.execute(select(fingerprints).where(fingerprints.c.cache_key == key.key)).first()
                if row is None:
                    continue  # released between our insert and read: try to claim again
                if row.status == READY:
                    conn.execute(update(fingerprints).where(fingerprints.c.cache_key == key.key).values(
                        occurrences=fingerprints.c.occurrences + 1, last_seen=now()))
                    return Lookup(hit=Hit(FailureAnalysis.model_validate_json(row.analysis), row.first_run_id,
                                          utc(row.first_seen), (row.occurrences or 0) + 1))
                stale = row.claimed_at is not None and now() - utc(row.claimed_at) > stale_after
                if stale or time.monotonic() >= deadline:
                    taken = conn.execute(
                        update(fingerprints)
                        .where(fingerprints.c.cache_key == key.key)
                        .where(fingerprints.c.claimed_by == row.claimed_by)
                        .where(fingerprints.c.status == PENDING)
                        .values(claimed_by=me, claimed_at=now())
                    ).rowcount
                    if taken == 1:
                        return Lookup(owner=True)
            time.sleep(poll_s)


def store(engine: Engine, key: CacheKey, analysis: FailureAnalysis, run_id: str, me: str,
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
