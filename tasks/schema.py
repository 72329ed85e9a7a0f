"""The plugin's tables in the user's database: definitions, versions, migrations.

Every table is created on first use. The schema version is stored in
``failure_insights_schema``; a database written by a newer version of the plugin is
refused with a clear error, and an older one is upgraded in place by adding the
columns and tables it lacks (additive changes only, so older plugins keep working
on it).

Also the small helpers every table's code shares: translating database errors into
`StorageError`, an insert that yields to the primary key, cutting values to their
column's length.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    Boolean,
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
    inspect,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError, SQLAlchemyError

from prefect_failure_insights.exceptions import SchemaVersionError, StorageError

SCHEMA_VERSION = 3

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
    # v2: the cost ledger and the fingerprint cache.
    Column("fingerprint", String(32), index=True),
    Column("signature", Text),
    Column("cache_hit", Boolean),
    Column("same_as_run_id", String(36)),
    Column("cost_usd", Float),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


fingerprints = Table(
    "failure_fingerprints",
    metadata,
    Column("cache_key", String(32), primary_key=True),
    Column("fingerprint", String(32), nullable=False, index=True),
    Column("signature", Text),
    Column("model", String(255), nullable=False),
    Column("prompt_version", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("analysis", Text),
    Column("first_run_id", String(36)),
    Column("first_seen", DateTime(timezone=True)),
    Column("last_seen", DateTime(timezone=True)),
    Column("occurrences", Integer, nullable=False, default=0),
    Column("claimed_by", String(64)),
    Column("claimed_at", DateTime(timezone=True)),
)


# v3: batch insights. A correction per error signature (the latest wins) ...
corrections = Table(
    "failure_corrections",
    metadata,
    Column("fingerprint", String(32), primary_key=True),
    Column("signature", Text, nullable=False),
    Column("error_text", Text, nullable=False),
    Column("exception_type", String(255)),
    Column("category", String(64), nullable=False),
    Column("corrected_by", String(255)),
    Column("flow_run_id", String(36)),
    Column("source", String(255)),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# ... the LLM's classification per signature, model and prompt version (never asked twice) ...
classifications = Table(
    "failure_classifications",
    metadata,
    Column("cache_key", String(32), primary_key=True),
    Column("fingerprint", String(32), nullable=False, index=True),
    Column("signature", Text),
    Column("error_text", Text),
    Column("category", String(64), nullable=False),
    Column("confidence", Float),
    Column("reasoning", Text),
    Column("model", String(255)),
    Column("prompt_version", String(64)),
    Column("prompt_tokens", Integer),
    Column("completion_tokens", Integer),
    Column("cost_usd", Float),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
)

# ... a row per batch (its id is derived from the window and filters) ...
batch_runs = Table(
    "batch_runs",
    metadata,
    Column("batch_id", String(32), primary_key=True),
    Column("window_start", DateTime(timezone=True), nullable=False, index=True),
    Column("window_end", DateTime(timezone=True), nullable=False),
    Column("filters", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("metrics", Text, nullable=False),
    Column("report", Text),
    Column("flow_run_id", String(36)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# ... and a row per error in it: a failed task, or a run that failed outside any task.
batch_errors = Table(
    "batch_errors",
    metadata,
    Column("batch_id", String(32), primary_key=True),
    Column("error_id", String(80), primary_key=True),
    Column("flow_run_id", String(36), nullable=False, index=True),
    Column("flow_run_name", String(255)),
    Column("task_run_id", String(36)),
    Column("failed_task", String(255)),
    Column("flow_name", String(255), nullable=False),
    Column("deployment", String(512)),
    Column("work_pool", String(255)),
    Column("tags", Text, nullable=False, default="[]"),
    Column("state", String(32)),
    Column("failed_at", DateTime(timezone=True)),
    Column("exception_type", String(255)),
    Column("error_text", Text, nullable=False),
    Column("fingerprint", String(32), index=True),
    Column("signature", Text),
    Column("category", String(64), nullable=False, index=True),
    Column("confidence", Float),
    Column("classified_by", String(128), nullable=False),
    Column("reasoning", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


def now() -> datetime:
    return datetime.now(timezone.utc)


def utc(value: datetime | None) -> datetime | None:
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


def fit(table: Table, values: dict[str, Any]) -> dict[str, Any]:
    """Cut strings to their column's length: a long LLM answer must not fail the write."""
    out = dict(values)
    for key, value in values.items():
        column = table.c.get(key)
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
    with guard(engine, "create the summaries tables"):
        try:
            metadata.create_all(engine, checkfirst=True)
        except (IntegrityError, ProgrammingError, OperationalError):
            # Another summarizer created the tables at the same moment.
            metadata.create_all(engine, checkfirst=True)
        with engine.begin() as conn:
            version = conn.execute(select(schema_table.c.version).where(schema_table.c.id == 1)).scalar()
            if version is None:
                insert_ignore(conn, schema_table, {"id": 1, "version": SCHEMA_VERSION, "updated_at": now()})
                version = SCHEMA_VERSION
            elif version < SCHEMA_VERSION:
                _add_missing_columns(conn)
                conn.execute(update(schema_table).where(schema_table.c.id == 1)
                             .values(version=SCHEMA_VERSION, updated_at=now()))
                version = SCHEMA_VERSION
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"The summaries database has schema v{version}, newer than this plugin's v{SCHEMA_VERSION}: "
            "upgrade prefect-failure-insights."
        )


@contextmanager
def guard(engine: Engine, action: str) -> Iterator[None]:
    """Translate SQLAlchemy errors into a StorageError that says what to do."""
    try:
        yield
    except SQLAlchemyError as exc:
        detail = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StorageError(
            f"Could not {action} in {describe_engine(engine)}: {detail}. "
            "Check that the database is running, reachable and writable, and the connector block."
        ) from exc




def _add_missing_columns(conn: Connection) -> None:
    """Upgrade an older schema in place: add the columns its tables lack (all nullable)."""
    inspector = inspect(conn)
    for table in metadata.sorted_tables:
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in present:
                kind = column.type.compile(dialect=conn.dialect)
                conn.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))


def insert_ignore(conn: Connection, table: Table, values: dict[str, Any]) -> bool:
    """INSERT that does nothing on a primary-key conflict; True when a row was inserted."""
    dialect = conn.dialect.name
    if dialect in ("sqlite", "postgresql"):
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        else:
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        pk = list(table.primary_key.columns)
        stmt = dialect_insert(table).values(**values).on_conflict_do_nothing(index_elements=pk).returning(*pk)
        # RETURNING, not rowcount: psycopg reports no reliable rowcount for ON CONFLICT DO NOTHING.
        return conn.execute(stmt).first() is not None
    try:  # other databases: the constraint still decides, through a savepoint
        with conn.begin_nested():
            conn.execute(insert(table).values(**values))
        return True
    except IntegrityError:
        return False


