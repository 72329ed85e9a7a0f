"""The user's database, as the flows and the CLI hold it.

`Database` keeps the prefect-sqlalchemy connector, a description of it without its
password, and the engine, created (and the schema migrated) on first use. `run()` calls
a store function in a worker thread, so that no database call blocks an event loop
(SQLite can wait up to 30 s for a lock). `lease()` keeps a claim alive while its holder works.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
from sqlalchemy import Engine

from prefect_failure_insights.defaults import LEASE_RENEW_SECONDS
from prefect_failure_insights.exceptions import StorageError
from prefect_failure_insights.store.migrations import ensure_schema
from prefect_failure_insights.store.sql import engine_of

T = TypeVar("T")
logger = logging.getLogger(__name__)


@dataclass
class Lease:
    """How a renewed claim fared: ``lost`` once another holder took it over; ``failures``
    renewals the database refused (the claim then runs out on its own)."""

    what: str
    lost: bool = False
    failures: int = 0


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

    @asynccontextmanager
    async def lease(self, what: str, renew: Callable[..., bool], *args: Any,
                    every: float = LEASE_RENEW_SECONDS) -> AsyncIterator[Lease]:
        """Renew a claim every ``every`` seconds while the block runs: ``renew(engine, *args)``
        returns whether the claim is still held. A database error is logged and retried at
        the next renewal; the block is never interrupted."""
        lease = Lease(what)

        async def keep() -> None:
            while not lease.lost:
                await asyncio.sleep(every)
                try:
                    lease.lost = not await self.run(renew, *args)
                except StorageError as exc:
                    lease.failures += 1
                    logger.warning("Could not renew the claim on %s (%s); it runs out unless renewed", what, exc)
            logger.warning("The claim on %s was taken over by another summarizer", what)

        keeper = asyncio.create_task(keep())
        try:
            yield lease
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)

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

