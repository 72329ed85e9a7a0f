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

The schema is versioned (table ``failure_insights_schema``) and created on first use.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError, SQLAlchemyError

from prefect_failure_insights.exceptions import SchemaVersionError, StorageError
from prefect_failure_insights.models import FailureAnalysis, FlowRunInfo, Summary

SCHEMA_VERSION = 1
PENDING = "pending"
STALE_CLAIM = timedelta(minutes=15)

metadata = MetaData()

schema_table = Table(
    "failure_insights_schema",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

summaries = Table(
    "failure_summaries",
    metadata,
    Column("flow_run_id", String(36), primary_key=True),
    Column("flow_run_name", String(255), nullable=False),
    Column("flow_name", String(255), nullable=False, index=True),
    Column("deployment", String(512)),
    Column("work_pool", String(255)),
    Column("tags", Text, nullable=False, default="[]"),
    Column("state", String(32), nullable=False),
    Column("state_message", Text),
    Column("failed_at", DateTime(timezone=True)),
    Column("status", String(16), nullable=False, index=True),
    Column("reason", Text),
    Column("category", String(64), index=True),
    Column("title", Text),
    Column("failed_task", String(255)),
    Column("confidence", Float),
    Column("analysis", Text),
    Column("model", String(255)),
    Column("prompt_tokens", Integer),
    Column("completion_tokens", Integer),
    Column("latency_ms", Float),
    Column("prompt_version", String(64)),
    Column("evidence", Text),
    Column("evidence_tokens", Integer),
    Column("root_error_line", Integer),
    Column("redaction_count", Integer),
    Column("summarizer_flow_run_id", String(36)),
    Column("artifact_id", String(36)),
    Column("claimed_by", String(64)),
    Column("claimed_at", DateTime(timezone=True)),
    Column("regenerated_count", Integer, nullable=False, default=0),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def describe_engine(engine: Engine) -> str:
    """The database URL without its password."""
    return engine.url.render_as_string(hide_password=True)


def engine_of(connector: Any) -> Engine:
    """The connector's engine; a missing driver or a malformed URL becomes a StorageError."""
    try:
        return connector.get_engine()
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise StorageError(
            f"Cannot create a database engine from the connector block ({type(exc).__name__}: "
            f"{(str(exc).splitlines() or [''])[0]}). Check its driver and URL; for PostgreSQL "
            "install 'prefect-failure-insights[postgres]'."
        ) from exc


def _fit(values: dict[str, Any]) -> dict[str, Any]:
    """Cut strings to their column's length: a long LLM answer must not fail the write."""
    out = dict(values)
    for key, value in values.items():
        column = summaries.c.get(key)
        length = getattr(getattr(column, "type", None), "length", None)
        if length and isinstance(value, str) and len(value) > length:
            out[key] = value[: length - 1] + "…"
    return out


def ensure_schema(engine: Engine) -> None:
    """Create the tables on first use; refuse a database written by a newer version.

    Raises:
        SchemaVersionError: the stored schema is newer than this code.
        StorageError: the database cannot be reached or written.
    """
    with _guard(engine, "create the summaries tables"):
        try:
            metadata.create_all(engine, checkfirst=True)
        except (IntegrityError, ProgrammingError, OperationalError):
            # Another summarizer created the tables at the same moment.
            metadata.create_all(engine, checkfirst=True)
        with engine.begin() as conn:
            version = conn.execute(select(schema_table.c.version).where(schema_table.c.id == 1)).scalar()
            if version is None:
                _insert_ignore(conn, schema_table, {"id": 1, "version": SCHEMA_VERSION, "updated_at": _now()})
                version = SCHEMA_VERSION
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"The summaries database has schema v{version}, newer than this plugin's v{SCHEMA_VERSION}: "
            "upgrade prefect-failure-insights."
        )


@contextmanager
def _guard(engine: Engine, action: str) -> Iterator[None]:
    """Translate SQLAlchemy errors into a StorageError that says what to do."""
    try:
        yield
    except SQLAlchemyError as exc:
        detail = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StorageError(
            f"Could not {action} in {describe_engine(engine)}: {detail}. "
            "Check that the database is running, reachable and writable, and the connector block."
        ) from exc


ClaimResult = Literal["claimed", "exists", "in_progress"]


@dataclass(frozen=True)
class Claim:
    result: ClaimResult
    claimed_by: str
    existing_status: str | None = None


def _insert_ignore(conn: Connection, table: Table, values: dict[str, Any]) -> bool:
    """INSERT that does nothing on a primary-key conflict; True when a row was inserted."""
    dialect = conn.dialect.name
    if dialect in ("sqlite", "postgresql"):
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        else:
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        stmt = dialect_insert(table).values(**values).on_conflict_do_nothing(
            index_elements=list(table.primary_key.columns)
        )
        return conn.execute(stmt).rowcount == 1
    try:  # other databases: the constraint still decides, through a savepoint
        with conn.begin_nested():
            conn.execute(insert(table).values(**values))
        return True
    except IntegrityError:
        return False


def claim(
    engine: Engine,
    run: FlowRunInfo,
    claimed_by: str,
    regenerate: bool = False,
    stale_after: timedelta = STALE_CLAIM,
) -> Claim:
    """Claim the right to write ``run``'s summary (see the module docstring)."""
    now = _now()
    with _guard(engine, "claim the summary row"):
        with engine.begin() as conn:
            inserted = _insert_ignore(conn, summaries, _fit({
                "flow_run_id": run.id,
                "flow_run_name": run.name,
                "flow_name": run.flow_name,
                "deployment": run.deployment,
                "work_pool": run.work_pool,
                "tags": json.dumps(run.tags),
                "state": run.state,
                "failed_at": _utc(run.end_time),
                "status": PENDING,
                "claimed_by": claimed_by,
                "claimed_at": now,
                "regenerated_count": 0,
                "created_at": now,
                "updated_at": now,
            }))
        if inserted:
            return Claim("claimed", claimed_by)
        with engine.begin() as conn:
            row = conn.execute(
                select(summaries.c.status, summaries.c.claimed_by, summaries.c.claimed_at).where(
                    summaries.c.flow_run_id == run.id
                )
            ).one()
            status, holder, held_since = row.status, row.claimed_by, _utc(row.claimed_at)
            fresh_claim = status == PENDING and held_since is not None and now - held_since < stale_after
            if status != PENDING and not regenerate:
                return Claim("exists", claimed_by, status)
            if fresh_claim and holder != claimed_by and not regenerate:
                return Claim("in_progress", claimed_by, status)
            # Take over atomically: only if nobody else changed the claim meanwhile.
            taken = conn.execute(
                update(summaries)
                .where(summaries.c.flow_run_id == run.id)
                .where(summaries.c.claimed_by == holder if holder is not None else summaries.c.claimed_by.is_(None))
                .values(claimed_by=claimed_by, claimed_at=now)
            ).rowcount
        if taken != 1:
            return Claim("in_progress", claimed_by, status)
        return Claim("claimed", claimed_by, status)


SaveResult = Literal["created", "replaced", "lost"]


def save(engine: Engine, summary: Summary, claimed_by: str) -> SaveResult:
    """Write ``summary`` into its claimed row; "lost" when another summarizer took it over."""
    a = summary.analysis
    now = _now()
    values = {
        "flow_run_name": summary.flow_run_name,
        "flow_name": summary.flow_name,
        "deployment": summary.deployment,
        "work_pool": summary.work_pool,
        "tags": json.dumps(summary.tags),
        "state": summary.state,
        "state_message": summary.state_message,
        "failed_at": _utc(summary.failed_at),
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
        "updated_at": now,
    }
    with _guard(engine, "store the summary"), engine.begin() as conn:
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
            .values(**_fit(values))
        ).rowcount
    if written != 1:
        return "lost"
    return "replaced" if replacing else "created"


def release(engine: Engine, flow_run_id: str, claimed_by: str) -> None:
    """Give up a claim on a row that never got content (e.g. the summarizer failed)."""
    with _guard(engine, "release the claim"), engine.begin() as conn:
        conn.execute(
            summaries.delete()
            .where(summaries.c.flow_run_id == flow_run_id)
            .where(summaries.c.claimed_by == claimed_by)
            .where(summaries.c.status == PENDING)
        )


def set_artifact(engine: Engine, flow_run_id: str, artifact_id: str, claimed_by: str) -> None:
    """Record the artifact of the summary this summarizer wrote (not a later one's)."""
    with _guard(engine, "record the artifact id"), engine.begin() as conn:
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
        failed_at=_utc(row.failed_at),
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
        created_at=_utc(row.created_at),
        updated_at=_utc(row.updated_at),
        regenerated=(row.regenerated_count or 0) > 0,
    )


def get(engine: Engine, flow_run_id: str) -> Summary | None:
    """The finished summary of a run, or None (no row, or still pending)."""
    with _guard(engine, "read the summary"), engine.connect() as conn:
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
        conditions.append(summaries.c.created_at >= _utc(since))
    with _guard(engine, "list summaries"), engine.connect() as conn:
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
    with _guard(engine, "write a test row"), engine.connect() as conn:
        transaction = conn.begin()
        conn.execute(update(schema_table).where(schema_table.c.id == 1).values(updated_at=_now()))
        transaction.rollback()
