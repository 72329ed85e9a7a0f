"""The LLM's classifications, per error signature, model and prompt version: a cache and a ledger.

A usable answer is stored under its cache key and never asked for again; an unusable one
(UNKNOWN) is stored under a key of its own, so that it counts against the daily budgets
without taking the key of a later, usable answer.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import Engine, select

from prefect_failure_insights.models import Category, Classification
from prefect_failure_insights.store.sql import fit, guard, insert_ignore, now
from prefect_failure_insights.store.tables import classifications


@dataclass(frozen=True)
class Spent:
    """What one LLM classification cost."""

    model: str
    prompt_version: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None


def cached_classification(engine: Engine, cache_key: str) -> tuple[str, float, str, str] | None:
    """``(category, confidence, reasoning, transience)`` the LLM gave for this key before, if it was usable."""
    with guard(engine, "read the classification cache"), engine.connect() as conn:
        row = conn.execute(select(classifications).where(classifications.c.cache_key == cache_key)
                           .where(classifications.c.category != Category.UNKNOWN.value)).first()
    return (row.category, row.confidence or 0.5, row.reasoning or "", row.transience or "UNKNOWN") if row else None


def record_classification(engine: Engine, cache_key: str, result: Classification, *, error_text: str,
                          spent: Spent) -> None:
    """Remember an LLM classification and what it cost."""
    if result.category == Category.UNKNOWN.value:
        cache_key = uuid.uuid4().hex  # a ledger row only (see the module docstring)
    with guard(engine, "write the classification cache"), engine.begin() as conn:
        insert_ignore(conn, classifications, fit(classifications, {
            "cache_key": cache_key, "fingerprint": result.fingerprint, "signature": result.signature,
            "error_text": error_text[:4000], "category": result.category, "confidence": result.confidence,
            "reasoning": result.reasoning, "transience": result.transience, "model": spent.model, "prompt_version": spent.prompt_version,
            "prompt_tokens": spent.prompt_tokens, "completion_tokens": spent.completion_tokens,
            "cost_usd": spent.cost_usd, "created_at": now(),
        }))
