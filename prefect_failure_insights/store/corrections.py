"""The team's corrections: a row per error signature, the latest wins."""

from __future__ import annotations

from sqlalchemy import Engine, delete, select

from prefect_failure_insights.models import Correction
from prefect_failure_insights.store.mapping import from_row, to_row
from prefect_failure_insights.store.sql import fit, guard, now
from prefect_failure_insights.store.tables import batch_errors, corrections


def save_corrections(engine: Engine, rows: list[Correction]) -> int:
    """Store corrections in one transaction (a later one replaces an earlier one of the same
    signature); return how many."""
    with guard(engine, "store the corrections"), engine.begin() as conn:
        for row in rows:
            conn.execute(delete(corrections).where(corrections.c.fingerprint == row.fingerprint))
            values = to_row(row.model_copy(update={"created_at": row.created_at or now()}), corrections)
            conn.execute(corrections.insert().values(**fit(corrections, values)))
    return len(rows)


def load_corrections(engine: Engine) -> list[Correction]:
    """Every stored correction, oldest first."""
    with guard(engine, "read the corrections"), engine.connect() as conn:
        rows = conn.execute(select(corrections).order_by(corrections.c.created_at)).mappings().all()
    return [from_row(r, corrections, Correction) for r in rows]


def error_of_run(engine: Engine, run_id: str) -> tuple[str, str | None] | None:
    """The error text and exception type a batch recorded for a run (the latest), if any."""
    with guard(engine, "read the batch errors"), engine.connect() as conn:
        row = conn.execute(
            select(batch_errors.c.error_text, batch_errors.c.exception_type)
            .where(batch_errors.c.flow_run_id == run_id).order_by(batch_errors.c.created_at.desc())
        ).first()
    return (row.error_text, row.exception_type) if row is not None else None


def corrections_of_runs(engine: Engine, run_ids: list[str]) -> dict[str, str]:
    """The team's latest category for each of these runs it corrected: run id -> category."""
    if not run_ids:
        return {}
    with guard(engine, "read the corrections"), engine.connect() as conn:
        rows = conn.execute(select(corrections.c.flow_run_id, corrections.c.category)
                            .where(corrections.c.flow_run_id.in_(run_ids)).order_by(corrections.c.created_at))
        return {r.flow_run_id: r.category for r in rows}
