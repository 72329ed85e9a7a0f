"""Rows of a batch: one per error, plus the batch itself; written so that re-runs change nothing.

The batch id is derived from the window and the filters (`BatchWindow.batch_id`), so
re-running a window replaces that batch's rows in one transaction (never a half-written
batch) and produces the same report.
"""

from __future__ import annotations

from sqlalchemy import Engine, delete, select

from prefect_failure_insights.models import (
    BatchMetrics,
    BatchRecord,
    BatchWindow,
    ClassifiedError,
    PartitionRun,
)
from prefect_failure_insights.store.mapping import from_row, to_row
from prefect_failure_insights.store.sql import fit, guard, now
from prefect_failure_insights.store.tables import batch_errors, batch_runs


def save_batch(engine: Engine, record: BatchRecord, rows: list[ClassifiedError]) -> None:
    """Replace the batch's rows and record the batch, in one transaction."""
    bid = record.window.batch_id
    stamp = now()
    with guard(engine, "store the batch"), engine.begin() as conn:
        created = conn.execute(select(batch_runs.c.created_at).where(batch_runs.c.batch_id == bid)).scalar()
        conn.execute(delete(batch_errors).where(batch_errors.c.batch_id == bid))
        conn.execute(delete(batch_runs).where(batch_runs.c.batch_id == bid))
        if rows:
            conn.execute(batch_errors.insert(), [
                fit(batch_errors, {**to_row(row, batch_errors), "batch_id": bid, "created_at": stamp}) for row in rows
            ])
        stored = record.model_copy(update={"created_at": created or stamp, "updated_at": stamp})
        conn.execute(batch_runs.insert().values(**fit(batch_runs, to_row(stored, batch_runs))))


def load_batch_errors(engine: Engine, window: BatchWindow) -> list[ClassifiedError] | None:
    """A stored batch's rows, or None when there is no such batch."""
    bid = window.batch_id
    with guard(engine, "read the batch"), engine.connect() as conn:
        if conn.execute(select(batch_runs.c.batch_id).where(batch_runs.c.batch_id == bid)).first() is None:
            return None
        rows = conn.execute(select(batch_errors).where(batch_errors.c.batch_id == bid)
                            .order_by(batch_errors.c.error_id)).mappings().all()
    return [from_row(r, batch_errors, ClassifiedError) for r in rows]


def load_batch(engine: Engine, window: BatchWindow) -> BatchRecord | None:
    """A stored batch, or None."""
    with guard(engine, "read the batch"), engine.connect() as conn:
        row = conn.execute(select(batch_runs).where(batch_runs.c.batch_id == window.batch_id)).mappings().first()
    return from_row(row, batch_runs, BatchRecord) if row else None


def llm_classified_errors(engine: Engine) -> list[ClassifiedError]:
    """Every stored batch error the LLM classified."""
    with guard(engine, "read the batch errors"), engine.connect() as conn:
        rows = conn.execute(select(batch_errors).where(batch_errors.c.classified_by == "llm")).mappings().all()
    return [from_row(r, batch_errors, ClassifiedError) for r in rows]


def load_partitions(engine: Engine, runs: list[PartitionRun]) -> tuple[list[ClassifiedError], BatchMetrics]:
    """The rows and figures of a fan-out, from what its children stored (an error in two
    partitions, by two of its tags, counts once)."""
    rows: dict[str, ClassifiedError] = {}
    children: list[BatchMetrics] = []
    for run in runs:
        if run.problem:
            continue
        for row in load_batch_errors(engine, run.window) or []:
            rows[row.error.error_id] = row
        record = load_batch(engine, run.window)
        if record is not None:
            children.append(record.metrics)
    out = sorted(rows.values(), key=lambda r: r.error.error_id)
    failed = [r.problem for r in runs if r.problem]
    return out, BatchMetrics.combined(out, [r.name for r in runs], children, failed_partitions=failed)
