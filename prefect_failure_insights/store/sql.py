"""What every table module shares: errors that say what to do, an insert that yields to the
primary key, values cut to their column's length, times in UTC."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, Engine, Table, insert
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from prefect_failure_insights.exceptions import StorageError
from prefect_failure_insights.models.common import utc

__all__ = ["describe_engine", "engine_of", "fit", "guard", "insert_ignore", "now", "utc"]


def now() -> datetime:
    return datetime.now(timezone.utc)


def describe_engine(engine: Engine) -> str:
    """The database URL without its password."""
    return engine.url.render_as_string(hide_password=True)


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
