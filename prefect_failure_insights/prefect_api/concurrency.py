"""The Prefect global concurrency limit on LLM calls, shared by every summarizer and worker."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from prefect.client.orchestration import PrefectClient

from prefect_failure_insights.defaults import LLM_CONCURRENCY_LIMIT

if TYPE_CHECKING:
    from prefect_failure_insights.blocks import FailureInsightsSettings

T = TypeVar("T")


async def ensure_llm_limit(client: PrefectClient, settings: FailureInsightsSettings) -> None:
    """Create or update the global concurrency limit on LLM calls (idempotent)."""
    await client.upsert_global_concurrency_limit_by_name(LLM_CONCURRENCY_LIMIT, settings.max_concurrent_llm_calls)


async def llm_slot(settings: FailureInsightsSettings, call: Callable[[], Awaitable[T]]) -> T:
    """Run ``call`` holding a slot of the global LLM concurrency limit (when it exists);
    TimeoutError when no slot frees up within the LLM deadline."""
    from prefect.concurrency.asyncio import concurrency

    async with concurrency(LLM_CONCURRENCY_LIMIT, occupy=1, timeout_seconds=settings.llm_deadline_seconds,
                           strict=False):
        return await call()


async def no_limit(settings: FailureInsightsSettings, call: Callable[[], Awaitable[T]]) -> T:
    """Run ``call`` without a limit (offline use, tests)."""
    return await call()
