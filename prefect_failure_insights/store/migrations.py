"""The schema of the plugin's tables, as named, ordered migrations.

In the manner of simonw/llm's ``migrations.py``: each migration is a function, applied
once, in order; the number applied is the database's schema version (stored in
``failure_insights_schema``). A database written by a newer plugin is refused with a
clear error; an older one is upgraded in place, additively, so older plugins keep
working on it.

The migrations are also the only definition of the tables: `current_tables()` replays
them onto an in-memory ``MetaData`` for the queries of the table modules. A column's
``info={"field": ...}`` names the model field it holds (see `store.mapping`).

To change the schema, append a migration; never edit one that has shipped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from prefect_failure_insights.exceptions import SchemaVersionError
from prefect_failure_insights.store.sql import guard, insert_ignore, now


class Schema(Protocol):
    """What a migration may do: create a table, add columns to one."""

    def create_table(self, name: str, *columns: Column) -> None: ...

    def add_columns(self, table: str, *columns: Column) -> None: ...


MIGRATIONS: list[Callable[[Schema], None]] = []


def migration(fn: Callable[[Schema], None]) -> Callable[[Schema], None]:
    """Register ``fn`` as the next migration."""
    MIGRATIONS.append(fn)
    return fn


def field(path: str | tuple[str, ...], *, json: bool = False, copy: bool = False) -> dict:
    """A column's mapping to a model field: a dotted ``path`` (several for one value),
    stored as JSON text, or a ``copy`` of a field kept for SQL users (written, never read)."""
    return {"field": (path,) if isinstance(path, str) else path, "json": json, "copy": copy}


def _timestamp() -> DateTime:
    return DateTime(timezone=True)


@migration
def m001_summaries(schema: Schema) -> None:
    schema.create_table(
        "failure_summaries",
        Column("flow_run_id", String(36), primary_key=True, info=field("run.id")),
        Column("flow_run_name", String(255), nullable=False, info=field("run.name")),
        Column("flow_name", String(255), nullable=False, index=True, info=field("run.flow_name")),
        Column("deployment", String(512), info=field("run.deployment")),
        Column("work_pool", String(255), info=field("run.work_pool")),
        Column("tags", Text, nullable=False, default="[]", info=field("run.tags", json=True)),
        Column("state", String(32), nullable=False, info=field("run.state")),
        Column("state_message", Text, info=field("run.state_message")),
        Column("failed_at", _timestamp(), info=field("run.end_time")),
        Column("status", String(16), nullable=False, index=True, info=field("status")),
        Column("reason", Text, info=field("reason")),
        Column("category", String(64), index=True, info=field("analysis.category", copy=True)),
        Column("title", Text, info=field("analysis.title", copy=True)),
        Column("failed_task", String(255), info=field("analysis.failed_task", copy=True)),
        Column("confidence", Float, info=field("analysis.confidence", copy=True)),
        Column("analysis", Text, info=field("analysis", json=True)),
        Column("model", String(255), info=field("usage.model")),
        Column("prompt_tokens", Integer, info=field("usage.prompt_tokens")),
        Column("completion_tokens", Integer, info=field("usage.completion_tokens")),
        Column("latency_ms", Float, info=field("usage.latency_ms")),
        Column("prompt_version", String(64), info=field("usage.prompt_version")),
        Column("evidence", Text, info=field("evidence.text")),
        Column("evidence_tokens", Integer, info=field("evidence.tokens")),
        Column("root_error_line", Integer, info=field("evidence.root_error_line")),
        Column("redaction_count", Integer, info=field("evidence.redaction_count")),
        Column("summarizer_flow_run_id", String(36), info=field("delivery.summarizer_flow_run_id")),
        Column("artifact_id", String(36), info=field("delivery.artifact_id")),
        Column("claimed_by", String(64)),
        Column("claimed_at", _timestamp()),
        Column("regenerated_count", Integer, nullable=False, default=0, info=field("delivery.regenerated_count")),
        Column("created_at", _timestamp(), nullable=False, index=True, info=field("delivery.created_at")),
        Column("updated_at", _timestamp(), nullable=False, info=field("delivery.updated_at")),
    )


@migration
def m002_cost_ledger_and_fingerprint_cache(schema: Schema) -> None:
    schema.add_columns(
        "failure_summaries",
        Column("fingerprint", String(32), index=True, info=field("recurrence.fingerprint")),
        Column("signature", Text, info=field("recurrence.signature")),
        Column("cache_hit", Boolean, info=field("recurrence.cache_hit")),
        Column("same_as_run_id", String(36), info=field("recurrence.same_as_run_id")),
        Column("cost_usd", Float, info=field("usage.cost_usd")),
    )
    # One row per cache key (fingerprint + model + prompt version): a claim, then the answer.
    schema.create_table(
        "failure_fingerprints",
        Column("cache_key", String(32), primary_key=True),
        Column("fingerprint", String(32), nullable=False, index=True),
        Column("signature", Text),
        Column("model", String(255), nullable=False),
        Column("prompt_version", String(64), nullable=False),
        Column("status", String(16), nullable=False),
        Column("analysis", Text),
        Column("first_run_id", String(36)),
        Column("first_seen", _timestamp()),
        Column("last_seen", _timestamp()),
        Column("occurrences", Integer, nullable=False, default=0),
        Column("claimed_by", String(64)),
        Column("claimed_at", _timestamp()),
    )


@migration
def m003_batch_insights(schema: Schema) -> None:
    # A correction per error signature (the latest wins) ...
    schema.create_table(
        "failure_corrections",
        Column("fingerprint", String(32), primary_key=True, info=field("fingerprint")),
        Column("signature", Text, nullable=False, info=field("signature")),
        Column("error_text", Text, nullable=False, info=field("error_text")),
        Column("exception_type", String(255), info=field("exception_type")),
        Column("category", String(64), nullable=False, info=field("category")),
        Column("corrected_by", String(255), info=field("corrected_by")),
        Column("flow_run_id", String(36), info=field("flow_run_id")),
        Column("source", String(255), info=field("source")),
        Column("created_at", _timestamp(), nullable=False, info=field("created_at")),
    )
    # ... the LLM's classification per signature, model and prompt version (never asked twice) ...
    schema.create_table(
        "failure_classifications",
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
        Column("created_at", _timestamp(), nullable=False, index=True),
    )
    # ... a row per batch (its id is derived from the window and filters) ...
    schema.create_table(
        "batch_runs",
        Column("batch_id", String(32), primary_key=True, info=field("window.batch_id", copy=True)),
        Column("window_start", _timestamp(), nullable=False, index=True, info=field("window.start")),
        Column("window_end", _timestamp(), nullable=False, info=field("window.end")),
        Column("filters", Text, nullable=False, info=field("window.filters", json=True)),
        Column("status", String(16), nullable=False, info=field("status")),
        Column("metrics", Text, nullable=False, info=field("metrics", json=True)),
        Column("report", Text, info=field("report")),
        Column("flow_run_id", String(36), info=field("flow_run_id")),
        Column("created_at", _timestamp(), nullable=False, info=field("created_at")),
        Column("updated_at", _timestamp(), nullable=False, info=field("updated_at")),
    )
    # ... and a row per error in it: a failed task, or a run that failed outside any task.
    schema.create_table(
        "batch_errors",
        Column("batch_id", String(32), primary_key=True),
        Column("error_id", String(80), primary_key=True, info=field(("error.error_id", "classification.id"))),
        Column("flow_run_id", String(36), nullable=False, index=True, info=field("error.run.id")),
        Column("flow_run_name", String(255), info=field("error.run.name")),
        Column("task_run_id", String(36), info=field("error.task_run_id")),
        Column("failed_task", String(255), info=field("error.failed_task")),
        Column("flow_name", String(255), nullable=False, info=field("error.run.flow_name")),
        Column("deployment", String(512), info=field("error.run.deployment")),
        Column("work_pool", String(255), info=field("error.run.work_pool")),
        Column("tags", Text, nullable=False, default="[]", info=field("error.run.tags", json=True)),
        Column("state", String(32), info=field("error.run.state")),
        Column("failed_at", _timestamp(), info=field("error.run.end_time")),
        Column("exception_type", String(255), info=field("error.exception_type")),
        Column("error_text", Text, nullable=False, info=field("error.error_text")),
        Column("fingerprint", String(32), index=True, info=field("classification.fingerprint")),
        Column("signature", Text, info=field("classification.signature")),
        Column("category", String(64), nullable=False, index=True, info=field("classification.category")),
        Column("confidence", Float, info=field("classification.confidence")),
        Column("classified_by", String(128), nullable=False, info=field("classification.classified_by")),
        Column("reasoning", Text, info=field("classification.reasoning")),
        Column("created_at", _timestamp(), nullable=False),
    )


@migration
def m004_complete_run_facts(schema: Schema) -> None:
    """Every fact of the failed run and of the recurrence, so that a row gives its model back whole."""
    schema.add_columns(
        "failure_summaries",
        Column("deployment_id", String(36), info=field("run.deployment_id")),
        Column("state_type", String(16), info=field("run.state_type")),
        Column("start_time", _timestamp(), info=field("run.start_time")),
        Column("run_count", Integer, info=field("run.run_count")),
        Column("parent_task_run_id", String(36), info=field("run.parent_task_run_id")),
        Column("first_seen", _timestamp(), info=field("recurrence.first_seen")),
        Column("occurrences", Integer, info=field("recurrence.occurrences")),
    )
    schema.add_columns(
        "batch_errors",
        Column("deployment_id", String(36), info=field("error.run.deployment_id")),
        Column("state_type", String(16), info=field("error.run.state_type")),
        Column("state_message", Text, info=field("error.run.state_message")),
        Column("start_time", _timestamp(), info=field("error.run.start_time")),
        Column("run_count", Integer, info=field("error.run.run_count")),
        Column("parent_task_run_id", String(36), info=field("error.run.parent_task_run_id")),
    )


@migration
def m005_transience(schema: Schema) -> None:
    """Whether re-running a failure unchanged would help: on summaries, batch rows and LLM answers."""
    schema.add_columns("failure_summaries",
                       Column("transience", String(16), info=field("analysis.transience", copy=True)))
    schema.add_columns("batch_errors", Column("transience", String(16), info=field("classification.transience")))
    schema.add_columns("failure_classifications", Column("transience", String(16)))


@migration
def m006_run_ids_and_retries(schema: Schema) -> None:
    """The ids a summary event relates to (flow, work pool), and the run's automatic retries."""
    schema.add_columns(
        "failure_summaries",
        Column("flow_id", String(36), info=field("run.flow_id")),
        Column("work_pool_id", String(36), info=field("run.work_pool_id")),
        Column("auto_retries", Integer, info=field("run.auto_retries")),
    )
    schema.add_columns(
        "batch_errors",
        Column("flow_id", String(36), info=field("error.run.flow_id")),
        Column("work_pool_id", String(36), info=field("error.run.work_pool_id")),
        Column("auto_retries", Integer, info=field("error.run.auto_retries")),
    )


@migration
def m007_citations(schema: Schema) -> None:
    """Cited answers (issue 16): each claim's evidence lines, the evidence status, the confidence's
    justification, open questions, how the evidence is numbered, and the citations' check."""
    schema.add_columns(
        "failure_summaries",
        # The analysis (its JSON column) holds them; these copies are for SQL users.
        Column("citations", Text, info=field("analysis.citations", json=True, copy=True)),
        Column("evidence_status", String(16), info=field("analysis.evidence_status", copy=True)),
        Column("confidence_reason", Text, info=field("analysis.confidence_reason", copy=True)),
        Column("open_questions", Text, info=field("analysis.open_questions", json=True, copy=True)),
        Column("evidence_line_prefix", String(4), info=field("evidence.line_prefix")),
        Column("verification", Text, info=field("verification", json=True)),
        Column("citations_verified", Boolean, info=field("verification.root_cause_verified", copy=True)),
    )


@migration
def m008_similar_failures(schema: Schema) -> None:
    """Similar failures (issue 16): each summary's pattern, the similar failures it was shown, and
    each distinct pattern once with its LSH bands (the index the lookup uses)."""
    schema.add_columns(
        "failure_summaries",
        Column("pattern", Text, info=field("recurrence.pattern")),
        Column("pattern_id", String(32), index=True, info=field("recurrence.pattern_id")),
        Column("similar", Text, info=field("similar", json=True)),
    )
    schema.add_columns("batch_errors", Column("pattern_group", Text, info=field("classification.group")))
    schema.create_table(
        "failure_patterns",
        Column("pattern_id", String(32), primary_key=True),
        Column("pattern", Text, nullable=False),
        Column("created_at", _timestamp(), nullable=False),
    )
    schema.create_table(
        "failure_pattern_bands",
        Column("band", Integer, primary_key=True),
        Column("bucket", String(16), primary_key=True),
        Column("pattern_id", String(32), primary_key=True),
    )


@migration
def m009_logs_complete(schema: Schema) -> None:
    """Late logs (issue 24): whether a summary was made before the run's last log records were
    stored (it is then made again when they are). NULL, in rows made before: complete."""
    schema.add_columns(
        "failure_summaries",
        Column("logs_complete", Boolean, info=field("evidence.logs_complete")),
    )


@migration
def m010_text_models(schema: Schema) -> None:
    """The learned text model retrained on a team's corrections (issue 26), one row per training,
    the newest answering: the same error gets the same category until the next retraining."""
    schema.create_table(
        "text_models",
        Column("version", String(32), primary_key=True),
        Column("model", Text, nullable=False),
        Column("trained_on", Integer, nullable=False),
        Column("corrections", Integer, nullable=False),
        Column("created_at", _timestamp(), nullable=False),
    )


@migration
def m011_retry_decisions(schema: Schema) -> None:
    """Every decision explained (issue 29): whether the retry automation retried the summarized
    failure and why or why not, keyed by the attempt it was about. Written by the retry flow only
    (never by a summary being stored); NULL: no decision yet."""
    schema.add_columns(
        "failure_summaries",
        Column("retry_decision", String(16), info=field("retry.decision")),
        Column("retry_rule", String(32), info=field("retry.rule")),
        Column("retry_reason", Text, info=field("retry.reason")),
        Column("retry_transience", String(16), info=field("retry.transience")),
        Column("retry_attempt", Integer, info=field("retry.attempt")),
        Column("retry_count", Integer, info=field("retry.retries")),
        Column("retry_limit", Integer, info=field("retry.max_retries")),
        Column("retry_decided_at", _timestamp(), info=field("retry.decided_at")),
    )


@migration
def m012_pattern_vectors(schema: Schema) -> None:
    """Similar failures by embeddings (issue 29): each distinct pattern's embedding, once per
    embedding model (float32, little-endian; its LSH bands go to ``failure_pattern_bands``)."""
    schema.create_table(
        "failure_pattern_vectors",
        Column("pattern_id", String(32), primary_key=True),
        Column("model", String(200), primary_key=True),
        Column("dimensions", Integer, nullable=False),
        Column("vector", LargeBinary, nullable=False),
        Column("created_at", _timestamp(), nullable=False),
    )

SCHEMA_VERSION = len(MIGRATIONS)


# -- replaying the migrations ------------------------------------------------------------------

class _Recorder:
    """Builds the current tables in memory."""

    def __init__(self) -> None:
        self.metadata = MetaData()

    def create_table(self, name: str, *columns: Column) -> None:
        Table(name, self.metadata, *columns)

    def add_columns(self, table: str, *columns: Column) -> None:
        for column in columns:
            self.metadata.tables[table].append_column(column)


class _Executor:
    """Applies a migration to a database."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def create_table(self, name: str, *columns: Column) -> None:
        Table(name, MetaData(), *columns).create(self.conn, checkfirst=True)

    def add_columns(self, table: str, *columns: Column) -> None:
        from sqlalchemy import inspect

        present = {c["name"] for c in inspect(self.conn).get_columns(table)}
        shadow = Table(table, MetaData(), *columns)
        for column in columns:
            if column.name not in present:  # a half-applied upgrade of an older plugin added it already
                kind = column.type.compile(dialect=self.conn.dialect)
                self.conn.execute(text(f'ALTER TABLE {table} ADD COLUMN "{column.name}" {kind}'))
        for index in shadow.indexes:
            index.create(self.conn, checkfirst=True)


def current_tables() -> MetaData:
    """The tables as the migrations leave them."""
    recorder = _Recorder()
    for step in MIGRATIONS:
        step(recorder)
    return recorder.metadata


schema_table = Table(
    "failure_insights_schema",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", _timestamp(), nullable=False),
)


def schema_version(engine: Engine) -> int | None:
    """The database's schema version (None: no plugin tables yet)."""
    with guard(engine, "read the schema version"), engine.connect() as conn:
        if not conn.dialect.has_table(conn, schema_table.name):
            return None
        return conn.execute(select(schema_table.c.version).where(schema_table.c.id == 1)).scalar()


def ensure_schema(engine: Engine) -> None:
    """Apply the migrations the database lacks; refuse a database written by a newer version.

    Safe when several summarizers start at once: the migrations run in one transaction that
    first locks the version row, so only one of them applies each migration.

    Raises:
        SchemaVersionError: the stored schema is newer than this code.
        StorageError: the database cannot be reached or written.
    """
    version = schema_version(engine)
    if version == SCHEMA_VERSION:
        return
    with guard(engine, "create the summaries tables"):
        if version is None:
            try:
                schema_table.create(engine, checkfirst=True)
            except (IntegrityError, ProgrammingError, OperationalError):
                pass  # another summarizer created it at the same moment
            with engine.begin() as conn:
                insert_ignore(conn, schema_table, {"id": 1, "version": 0, "updated_at": now()})
        with engine.begin() as conn:
            conn.execute(update(schema_table).where(schema_table.c.id == 1).values(updated_at=now()))  # the lock
            version = conn.execute(select(schema_table.c.version).where(schema_table.c.id == 1)).scalar() or 0
            if version < SCHEMA_VERSION:
                executor = _Executor(conn)
                for step in MIGRATIONS[version:]:
                    step(executor)
                conn.execute(update(schema_table).where(schema_table.c.id == 1).values(version=SCHEMA_VERSION))
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"The summaries database has schema v{version}, newer than this plugin's v{SCHEMA_VERSION}: "
            "upgrade prefect-failure-insights."
        )
