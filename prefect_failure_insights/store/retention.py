"""Retention: the plugin's own rows older than ``retention_days`` are deleted, in bounded batches.

Every summary keeps its evidence (thousands of tokens): without a limit a year of failures grows
the tables without bound. The reconcile pass (`lifecycle.reconciler`) calls `enforce` each time,
so `serve` and the scheduled reconcile deployment keep the database bounded; each pass deletes at
most ``max_rows`` rows per table, ``batch`` at a time (short transactions: summarizers writing
meanwhile never wait long), and the next pass goes on where it stopped.

What goes, by age:

* summaries (``created_at``; never one a summarizer holds: pending or provisional rows);
* the LLM answer cache (``failure_fingerprints``, by ``last_seen``; never a live claim);
* batch classifications (``created_at``), batches (``window_end``) and their errors;
* failure patterns no remaining summary uses (``created_at``), with their LSH bands and embeddings.

What stays: the team's corrections (labels someone wrote by hand) and the learned models.
The LLM cost ledger reads today's rows only, so budgets are unaffected.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, delete, or_, select, tuple_

from prefect_failure_insights.defaults import CLAIM_LEASE, RETENTION_BATCH_ROWS, RETENTION_MAX_ROWS
from prefect_failure_insights.store.sql import guard, now
from prefect_failure_insights.store.tables import (
    batch_errors,
    batch_runs,
    classifications,
    fingerprints,
    pattern_bands,
    pattern_vectors,
    patterns,
    summaries,
)

PENDING, PROVISIONAL = "pending", "provisional"


def _delete_batched(engine: Engine, table, key, condition, *, batch: int, max_rows: int) -> int:  # noqa: ANN001
    """Delete the rows of ``table`` matching ``condition``, ``batch`` keys (its primary key's
    columns) per transaction, at most ``max_rows``; how many were deleted."""
    columns = list(key) if isinstance(key, tuple) else [key]
    deleted = 0
    while deleted < max_rows:
        with engine.begin() as conn:
            keys = [tuple(r) for r in conn.execute(select(*columns).where(condition)
                                                   .limit(min(batch, max_rows - deleted)))]
            if not keys:
                break
            match = columns[0].in_([k[0] for k in keys]) if len(columns) == 1 else tuple_(*columns).in_(keys)
            deleted += conn.execute(delete(table).where(match)).rowcount or 0
    return deleted


def enforce(engine: Engine, retention_days: float, *, batch: int = RETENTION_BATCH_ROWS,
            max_rows: int = RETENTION_MAX_ROWS, at: datetime | None = None) -> dict[str, int]:
    """Delete what is older than ``retention_days`` (0: keep everything); rows deleted per table."""
    if retention_days <= 0:
        return {}
    current = at or now()
    cutoff = current - timedelta(days=retention_days)
    out: dict[str, int] = {}
    with guard(engine, "delete rows past their retention"):
        run = lambda name, table, key, condition: out.__setitem__(  # noqa: E731
            name, _delete_batched(engine, table, key, condition, batch=batch, max_rows=max_rows))
        run("failure_summaries", summaries, summaries.c.flow_run_id,
            and_(summaries.c.created_at < cutoff, summaries.c.status.not_in((PENDING, PROVISIONAL))))
        stale_claim = or_(fingerprints.c.claimed_at.is_(None), fingerprints.c.claimed_at < current - CLAIM_LEASE)
        run("failure_fingerprints", fingerprints, fingerprints.c.cache_key,
            and_(or_(fingerprints.c.last_seen < cutoff,
                     and_(fingerprints.c.last_seen.is_(None), fingerprints.c.first_seen < cutoff)), stale_claim))
        run("failure_classifications", classifications, classifications.c.cache_key,
            classifications.c.created_at < cutoff)
        old_batches = select(batch_runs.c.batch_id).where(batch_runs.c.window_end < cutoff)
        run("batch_errors", batch_errors, (batch_errors.c.batch_id, batch_errors.c.error_id),
            or_(batch_errors.c.batch_id.in_(old_batches), batch_errors.c.created_at < cutoff))
        run("batch_runs", batch_runs, batch_runs.c.batch_id, batch_runs.c.window_end < cutoff)
        used = select(summaries.c.pattern_id).where(summaries.c.pattern_id.is_not(None))
        run("failure_patterns", patterns, patterns.c.pattern_id,
            and_(patterns.c.created_at < cutoff, patterns.c.pattern_id.not_in(used)))
        run("failure_pattern_bands", pattern_bands, pattern_bands.c.pattern_id,
            pattern_bands.c.pattern_id.not_in(select(patterns.c.pattern_id)))
        run("failure_pattern_vectors", pattern_vectors, (pattern_vectors.c.pattern_id, pattern_vectors.c.model),
            pattern_vectors.c.pattern_id.not_in(select(patterns.c.pattern_id)))
    return {name: n for name, n in out.items() if n}
