"""The one way to read a paged Prefect API endpoint: pages until a short page."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from prefect_failure_insights.defaults import API_PAGE

T = TypeVar("T")


async def pages(read: Callable[[int, int], Awaitable[list[T]]], limit: int | None = None,
                page: int = API_PAGE) -> AsyncIterator[list[T]]:
    """Yield ``await read(offset, page)`` for offsets 0, page, 2*page, ... until a page comes
    back short, or ``limit`` items have been asked for.

    Example:
        ```python
        async for batch in pages(lambda offset, size: client.read_logs(log_filter=f, offset=offset, limit=size)):
            ...
        ```
    """
    offset = 0
    while limit is None or offset < limit:
        batch = await read(offset, page)
        yield batch
        if len(batch) < page:
            return
        offset += page


async def read_all(read: Callable[[int, int], Awaitable[list[T]]], limit: int | None = None,
                   page: int = API_PAGE) -> list[T]:
    """Every item of a paged read (at most about ``limit``), in order."""
    out: list[T] = []
    async for batch in pages(read, limit, page):
        out.extend(batch)
    return out
