"""The cost ledger: what the LLM cost today, across summaries and batch classifications."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, func, select

from prefect_failure_insights.store.sql import guard, utc
from prefect_failure_insights.store.tables import classifications, summaries


def daily_usage(engine: Engine, since: datetime) -> tuple[int, float]:
    """LLM tokens and estimated cost (USD) since ``since``: summaries and batch classifications."""
    total_tokens, total_cost = 0, 0.0
    with guard(engine, "read the LLM usage"), engine.connect() as conn:
        for table, condition in ((summaries, summaries.c.cache_hit.is_not(True)),
                                 (classifications, classifications.c.prompt_tokens.is_not(None))):
            tokens = func.coalesce(func.sum(func.coalesce(table.c.prompt_tokens, 0)
                                            + func.coalesce(table.c.completion_tokens, 0)), 0)
            cost = func.coalesce(func.sum(func.coalesce(table.c.cost_usd, 0.0)), 0.0)
            row = conn.execute(select(tokens, cost).where(table.c.created_at >= utc(since)).where(condition)).one()
            total_tokens += int(row[0] or 0)
            total_cost += float(row[1] or 0.0)
    return total_tokens, total_cost
