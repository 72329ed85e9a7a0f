"""Reading the server's event stream in `serve`: an optimisation only, never the reliable path."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

logger = logging.getLogger("prefect_failure_insights.executor")


async def follow_events(event_filter: Any, handle: Callable[[Any], Awaitable[None]], without: str) -> None:
    """Await ``handle(event)`` for each event matching ``event_filter``, until cancelled. Without
    a stream (an old server, a proxy that drops websockets) say once what happens ``without`` it
    and return."""
    from prefect.events.clients import get_events_subscriber

    try:
        async with get_events_subscriber(filter=event_filter, reconnect_on_clean_close=True) as events:
            async for event in events:
                await handle(event)
    except Exception as exc:  # noqa: BLE001 - an optimisation only
        logger.warning("No event stream (%s); %s.", type(exc).__name__, without)
