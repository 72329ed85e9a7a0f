"""The user's database, as the flows and the CLI hold it.

`Database` keeps the prefect-sqlalchemy connector, a description of it without its
password, and the engine, created (and the schema migrated) on first use. `run()` calls
a store function in a worker thread, so that no database call blocks an event loop
(SQLite can wait up to 30 s for a lock).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
from sqlalchemy import Engine

from prefect_failure_insights.store.migrations import ensure_schema
from prefect_failure_insights.store.sql import engine_of

T = TypeVar("T")


class Database:
    """The summaries database behind a prefect-sqlalchemy connector.

    Args:
        connector: A ``SqlAlchemyConnector`` (sync driver).
        description: Where it is, for messages (no password).

    Example:
        ```python
        database = Database(connector, "sqlite file /tmp/x.db")
        summary = await database.run(summaries.get, run_id)
        await database.aclose()
        ```
    """

    def __init__(self, connector: Any, description: str) -> None:
        self.connector = connector
        self.description = description
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    @property
    def engine(self) -> Engine:
        """The engine, created (and the schema migrated) on first use; blocking: call it in a thread."""
        with self._lock:
            if self._engine is None:
                engine = engine_of(self.connector)
                ensure_schema(engine)
                self._engine = engine
            return self._engine

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(engine, *args, **kwargs)`` in a worker thread, off the event loop."""
        return await anyio.to_thread.run_sync(lambda: fn(self.engine, *args, **kwargs))

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(engine, *args, **kwargs)`` here (for synchronous callers)."""
        return fn(self.engine, *args, **kwargs)

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self.connector.close)

    def close(self) -> None:
        self.connector.close()

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"Database({self.description})"

