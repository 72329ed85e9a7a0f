"""The learned text model retrained on a team's corrections, stored with its version."""

from __future__ import annotations

from sqlalchemy import Engine, delete, select

from prefect_failure_insights.store.sql import guard, now
from prefect_failure_insights.store.tables import text_models


def save_text_model(engine: Engine, *, version: str, payload: str, trained_on: int, corrections: int) -> None:
    """Store a trained model (``payload``: its JSON) as the one that answers from now on."""
    with guard(engine, "store the retrained text model"), engine.begin() as conn:
        conn.execute(delete(text_models).where(text_models.c.version == version))
        conn.execute(text_models.insert().values(version=version, model=payload, trained_on=trained_on,
                                                 corrections=corrections, created_at=now()))


def latest_text_model(engine: Engine) -> tuple[str, str] | None:
    """The newest stored model as (version, JSON), None when the team never retrained."""
    with guard(engine, "read the retrained text model"), engine.connect() as conn:
        row = conn.execute(select(text_models.c.version, text_models.c.model)
                           .order_by(text_models.c.created_at.desc()).limit(1)).first()
    return (row.version, row.model) if row is not None else None
