"""Summary rows in the user's SQL database, through a prefect-sqlalchemy connector.

One row per failed run, guaranteed by the primary key, never by a read-then-write:

* `claim()` inserts a *pending* row (``INSERT .. ON CONFLICT DO NOTHING``) before any
  LLM call. Of two summarizers triggered at once for the same run, exactly one gets
  the claim; the other stops without calling the LLM. A claim older than
  ``stale_after`` (a summarizer that died) can be taken over, atomically.
* `save()` writes the summary into the row *only if this summarizer still holds
  the claim*, so a late loser can never overwrite the winner.
* ``regenerate`` claims an existing row without touching its content; the old
  summary stays readable until the new one replaces it.

The tables themselves (and their versions) are in `tasks.schema`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from sqlalchemy import Engine, func, select, update

from prefect_failure_insights.models import FailureAnalysis, FlowRunInfo, Summary
from prefect_failure_insights.tasks.schema import (
    classifications,
    describe_engine,
    engine_of,
    ensure_schema,
    fit,
    guard,
    insert_ignore,
    now,
    schema_table,
    summaries,
    utc,
)

__all__ = ["describe_engine", "engine_of", "ensure_schema", "schema_table", "summaries"]

PENDING = "pending"
STALE_CLAIM = timedelta(minutes=15)

ClaimResult = Literal["claimed", "exists", "in_progress"]


@dataclass(frozen=True)
class Claim:
    result: ClaimResult
    claimed_by: str
    existing_status: str | None = None


def claim(
    engine: Engine,
    run: FlowRunInfo,
    claimed_by: str,
    regenerate: bool = False,
    stale_after: timedelta = STALE_CLAIM,
) -> Claim:
    """Claim the right to write ``run``'s summary (see the module docstring)."""
    current = now()
    with guard(engine, "claim the summary row"):
        with engine.begin() as conn:
            inserted = insert_ignore(conn, summaries, fit(summaries, {
                "flow_run_id": run.id,
                "flow_run_name": run.name,
                "flow_name": run.flow_name,
                "deployment": run.deployment,
                "work_pool": run.work_pool,
                "tags": json.dumps(run.tags),
                "state": run.state,
                "failed_at": utc(run.end_time),
                "status": PENDING,
                "claimed_by": claimed_by,
                "claimed_at": current,
                "regenerated_count": 0,
                "created_at": current,
                "updated_at": current,
            }))
        if inserted:
            return Claim("claimed", claimed_by)
        with engine.begin() as conn:
            row = conn.execute(
                select(summaries.c.status, summaries.c.claimed_by, summaries.c.claimed_at).where(
                    summaries.c.flow_run_id == run.id
                )
            ).one()
            status, holder, held_since = row.status, row.claimed_by, utc(row.claimed_at)
            fresh_claim = status == PENDING and held_since is not None and current - held_since < stale_after
            if status != PENDING and not regenerate:
                return Claim("exists", claimed_by, status)
            if fresh_claim and holder != claimed_by and not regenerate:
                return Claim("in_progress", claimed_by, status)
            # Take over atomically: only if nobody else changed the claim meanwhile.
            taken = conn.execute(
                update(summaries)
                .where(summaries.c.flow_run_id == run.id)
                .where(summaries.c.claimed_by == holder if holder is not None else summaries.c.claimed_by.is_(None))
                .values(claimed_by=claimed_by, claimed_at=current)
            ).rowcount
        if taken != 1:
            return Claim("in_progress", claimed_by, status)
        return Claim("claimed", claimed_by, status)


SaveResult = Literal["created", "replaced", "lost"]


def save(engine: Engine, summary: Summary, claimed_by: str) -> SaveResult:
    """Write ``summary`` into its claimed row; "lost" when another summarizer took it over."""
    a = summary.analysis
    current = now()
    values = {
        "flow_run_name": summary.flow_run_name,
        "flow_name": summary.flow_name,
        "deployment": summary.deployment,
        "work_pool": summary.work_pool,
        "tags": json.dumps(summary.tags),
        "state": summary.state,
        "state_message": summary.state_message,
        "failed_at": utc(summary.failed_at),
        "status": summary.status,
        "reason": summary.reason,
        "category": a.category.value,
        "title": a.title,
        "failed_task": a.failed_task,
        "confidence": a.confidence,
        "analysis": a.model_dump_json(),
        "model": summary.model,
        "prompt_tokens": summary.prompt_tokens,
        "completion_tokens": summary.completion_tokens,
        "latency_ms": summary.latency_ms,
        "prompt_version": summary.prompt_version,
        "evidence": summary.evidence,
        "evidence_tokens": summary.evidence_tokens,
        "root_error_line": summary.root_error_line,
        "redaction_count": summary.redaction_count,
        "summarizer_flow_run_id": summary.summarizer_flow_run_id,
        "fingerprint": summary.fingerprint,
        "signature": summary.signature,
        "cache_hit": summary.cache_hit,
        "same_as_run_id": summary.same_as_run_id,
        "cost_usd": summary.cost_usd,
        "updated_at": current,
    }
    with guard(engine, "store the summary"), engine.begin() as conn:
        previous = conn.execute(
            select(summaries.c.status).where(summaries.c.flow_run_id == summary.flow_run_id)
        ).scalar()
        replacing = previous not in (None, PENDING)
        if replacing:
            values["regenerated_count"] = summaries.c.regenerated_count + 1
        written = conn.execute(
            update(summaries)
            .where(summaries.c.flow_run_id == summary.flow_run_id)
            .where(summaries.c.claimed_by == claimed_by)
            .values(**fit(summaries, values))
        ).rowcount
    if written != 1:
        return "lost"
    return "replaced" if replacing else "created"


def release(engine: Engine, flow_run_id: str, claimed_by: str) -> None:
    """Give up a claim on a row that never got content (e.g. the summarizer failed)."""
    with guard(engine, "release the claim"), engine.begin() as conn:
        conn.execute(
            summaries.delete()
            .where(summaries.c.flow_run_id == flow_run_id)
            .where(summaries.c.claimed_by == claimed_by)
            .where(summaries.c.status == PENDING)
        )


def set_artifact(engine: Engine, flow_run_id: str, artifact_id: str, claimed_by: str) -> None:
    """Record the artifact of the summary this summarizer wrote (not a later one's)."""
    with guard(engine, "record the artifact id"), engine.begin() as conn:
        conn.execute(
            update(summaries)
            .where(summaries.c.flow_run_id == flow_run_id)
            .where(summaries.c.claimed_by == claimed_by)
            .values(artifact_id=artifact_id)
        )


def _to_summary(row: Any) -> Summary:
    return Summary(
        flow_run_id=row.flow_run_id,
        flow_run_name=row.flow_run_name,
        flow_name=row.flow_name,
        deployment=row.deployment,
        work_pool=row.work_pool,
        tags=json.loads(row.tags or "[]"),
        state=row.state,
        state_message=row.state_message,
        failed_at=utc(row.failed_at),
        analysis=FailureAnalysis.model_validate_json(row.analysis),
        status=row.status,
        reason=row.reason,
        model=row.model,
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        latency_ms=row.latency_ms,
        prompt_version=row.prompt_version or "",
        evidence=row.evidence or "",
        evidence_tokens=row.evidence_tokens or 0,
        root_error_line=row.root_error_line,
        redaction_count=row.redaction_count or 0,
        summarizer_flow_run_id=row.summarizer_flow_run_id,
        artifact_id=row.artifact_id,
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
        regenerated=(row.regenerated_count or 0) > 0,
        cost_usd=row.cost_usd,
        fingerprint=row.fingerprint,
        signature=row.signature,
        cache_hit=bool(row.cache_hit),
        same_as_run_id=row.same_as_run_id,
    )


def get(engine: Engine, flow_run_id: str) -> Summary | None:
    """The finished summary of a run, or None (no row, or still pending)."""
    with guard(engine, "read the summary"), engine.connect() as conn:
        row = conn.execute(
            select(summaries)
            .where(summaries.c.flow_run_id == flow_run_id)
            .where(summaries.c.status != PENDING)
        ).first()
    return _to_summary(row) if row is not None else None


def list_summaries(
    engine: Engine,
    limit: int = 20,
    offset: int = 0,
    category: str | None = None,
    flow: str | None = None,
    since: datetime | None = None,
) -> tuple[list[Summary], int]:
    """Finished summaries, newest failure first, and the total matching count."""
    conditions = [summaries.c.status != PENDING]
    if category:
        conditions.append(summaries.c.category == category)
    if flow:
        conditions.append(summaries.c.flow_name == flow)
    if since:
        conditions.append(summaries.c.created_at >= utc(since))
    with guard(engine, "list summaries"), engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(summaries).where(*conditions)).scalar() or 0
        rows = conn.execute(
            select(summaries)
            .where(*conditions)
            .order_by(summaries.c.created_at.desc(), summaries.c.flow_run_id)
            .limit(limit)
            .offset(offset)
        ).all()
    return [_to_summary(r) for r in rows], int(total)


def probe_write(engine: Engine) -> None:
    """Prove the database accepts writes, leaving nothing behind (for `doctor`)."""
    with guard(engine, "write a test row"), engine.connect() as conn:
        transaction = conn.begin()
        conn.execute(update(schema_table).where(schema_table.c.id == 1).values(updated_at=now()))
        transaction.rollback()


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
