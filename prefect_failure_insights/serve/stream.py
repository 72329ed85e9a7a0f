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
        try:  # a clean close (a proxy's idle timeout) reconnects, where the client knows the option
            subscriber = get_events_subscriber(filter=event_filter, reconnect_on_clean_close=True)
        except TypeError:  # older Prefect clients: no such option; a clean close then ends the stream
            subscriber = get_events_subscriber(filter=event_filter)
        async with subscriber as events:
            async for event in events:
                await handle(event)
    except Exception as exc:  # noqa: BLE001 - an optimisation only
        logger.warning("No event stream (%s: %s); %s.", type(exc).__name__, str(exc)[:200], without)
        return
    logger.warning("The event stream ended; %s.", without)
