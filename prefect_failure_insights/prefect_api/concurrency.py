"""The Prefect global concurrency limit on LLM calls, shared by every summarizer and worker."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, TypeVar

import anyio
from prefect.client.orchestration import PrefectClient

from prefect_failure_insights.defaults import LLM_CONCURRENCY_LIMIT, LLM_SLOT_LEASE_SECONDS

if TYPE_CHECKING:
    from prefect_failure_insights.blocks import FailureInsightsSettings

T = TypeVar("T")


async def ensure_llm_limit(client: PrefectClient, settings: FailureInsightsSettings) -> None:
    """Create or update the global concurrency limit on LLM calls (idempotent)."""
    await client.upsert_global_concurrency_limit_by_name(LLM_CONCURRENCY_LIMIT, settings.max_concurrent_llm_calls)


#: The process's own LLM slots, set by `serve` (whose summarizers share one process): a
#: summary waits here for a slot another summary of the process hands over at once, and
#: only asks the server's global limit (shared with other processes) once it has one.
LOCAL_SLOTS: ContextVar[anyio.Semaphore | None] = ContextVar("failure_insights_llm_slots", default=None)


async def llm_slot(settings: FailureInsightsSettings, call: Callable[[], Awaitable[T]]) -> T:
    """Run ``call`` holding a slot of the global LLM concurrency limit (when it exists);
    TimeoutError when no slot frees up within the LLM deadline.

    The slot is leased for `LLM_SLOT_LEASE_SECONDS` and renewed while held, so that the
    slot of a process that dies is free again within a minute, not Prefect's default five.
    """
    from prefect.concurrency.asyncio import concurrency

    deadline = anyio.current_time() + settings.llm_deadline_seconds
    local = LOCAL_SLOTS.get()
    if local is not None:
        with anyio.move_on_after(settings.llm_deadline_seconds) as waiting:
            await local.acquire()
        if waiting.cancelled_caught:
            raise TimeoutError("no local LLM slot freed up before the deadline")
    try:
        async with concurrency(LLM_CONCURRENCY_LIMIT, occupy=1, strict=False,
                               timeout_seconds=max(1.0, deadline - anyio.current_time()),
                               lease_duration=LLM_SLOT_LEASE_SECONDS):
            return await call()
    finally:
        if local is not None:
            local.release()


async def no_limit(settings: FailureInsightsSettings, call: Callable[[], Awaitable[T]]) -> T:
    """Run ``call`` without a limit (offline use, tests)."""
    return await call()
