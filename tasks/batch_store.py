"""Rows of a batch: one per error, plus the batch itself; written so that re-runs change nothing.

The batch id is derived from the window and the filters, so re-running a window
replaces that batch's rows in one transaction (never a half-written batch) and
produces the same report.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from sqlalchemy import Engine, delete, select

from prefect_failure_insights.tasks.schema import batch_errors, batch_runs, fit, guard, now, utc


def batch_id(start: datetime, end: datetime, filters: dict) -> str:
    """Deterministic: the same window and filters always give the same id."""
    key = json.dumps({"start": utc(start).isoformat(), "end": utc(end).isoformat(),
                      "filters": {k: sorted(v) for k, v in sorted(filters.items())}}, sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def save_batch(engine: Engine, bid: str, start: datetime, end: datetime, filters: dict, rows: list[dict],
               metrics: dict, report: str, flow_run_id: str | None, status: str = "completed") -> None:
    """Replace the batch's rows and record the batch, in one transaction."""
    stamp = now()
    with guard(engine, "store the batch"), engine.begin() as conn:
        created = conn.execute(select(batch_runs.c.created_at).where(batch_runs.c.batch_id == bid)).scalar()
        conn.execute(delete(batch_errors).where(batch_errors.c.batch_id == bid))
        conn.execute(delete(batch_runs).where(batch_runs.c.batch_id == bid))
        if rows:
            conn.execute(batch_errors.insert(), [
                fit(batch_errors, {**row, "batch_id": bid, "tags": json.dumps(row.get("tags") or []),
                                   "created_at": stamp}) for row in rows
            ])
        conn.execute(batch_runs.insert().values(**fit(batch_runs, {
            "batch_id": bid, "window_start": utc(start), "window_end": utc(end),
            "filters": json.dumps(filters, sort_keys=True), "status": status,
            "metrics": json.dumps(metrics, sort_keys=True, default=str), "report": report,
            "flow_run_id": flow_run_id, "created_at": created or stamp, "updated_at": stamp,
        })))


def load_errors(engine: Engine, bid: str) -> list[dict] | None:
    """A stored batch's error rows, or None when there is no such batch."""
    with guard(engine, "read the batch"), engine.connect() as conn:
        if conn.execute(select(batch_runs.c.batch_id).where(batch_runs.c.batch_id == bid)).first() is None:
            return None
        rows = conn.execute(select(batch_errors).where(batch_errors.c.batch_id == bid)
                            .order_by(batch_errors.c.error_id)).mappings().all()
    return [{**row, "tags": json.loads(row["tags"] or "[]")} for row in rows]


def load_batch(engine: Engine, bid: str) -> dict | None:
    with guard(engine, "read the batch"), engine.connect() as conn:
        row = conn.execute(select(batch_runs).where(batch_runs.c.batch_id == bid)).mappings().first()
    return dict(row) if row else None
