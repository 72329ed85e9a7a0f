"""The Prefect global concurrency limit on LLM calls, shared by every summarizer and worker."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar
from uuid import UUID

import anyio
import httpx
from prefect.client.orchestration import PrefectClient, get_client

from prefect_failure_insights.defaults import LLM_CONCURRENCY_LIMIT, LLM_SLOT_LEASE_SECONDS
from prefect_failure_insights.prefect_api.quick_retry import promptly

if TYPE_CHECKING:
    from prefect_failure_insights.blocks import FailureInsightsSettings

T = TypeVar("T")
logger = logging.getLogger("prefect_failure_insights.concurrency")


async def ensure_llm_limit(client: PrefectClient, settings: FailureInsightsSettings) -> None:
    """Create or update the global concurrency limit on LLM calls (idempotent)."""
    await client.upsert_global_concurrency_limit_by_name(LLM_CONCURRENCY_LIMIT, settings.max_concurrent_llm_calls)


async def llm_slot(settings: FailureInsightsSettings, call: Callable[[], Awaitable[T]], *,
                   local: anyio.Semaphore | None = None) -> T:
    """Run ``call`` holding a slot of the global LLM concurrency limit (when it exists);
    TimeoutError when no slot frees up within the LLM deadline.

    ``local``: the process's own slots (`serve`, whose summaries share one process): a summary
    waits there for a slot another summary of the process hands over at once, and only asks
    the server's global limit (shared with other processes) once it has one.

    The slot is leased for `LLM_SLOT_LEASE_SECONDS` and renewed while held, so that the
    slot of a process that dies is free again within a minute, not Prefect's default five.
    The server's lease endpoints are called directly, `promptly`: on a SQLite-backed server
    busy with other writes, ``prefect.concurrency``'s context manager (the client's 2 s
    backoff on HTTP 503) added 2.0 s to a summary whose LLM answered in 30 ms.
    """
    deadline = anyio.current_time() + settings.llm_deadline_seconds
    if local is not None:
        with anyio.move_on_after(settings.llm_deadline_seconds) as waiting:
            await local.acquire()
        if waiting.cancelled_caught:
            raise TimeoutError("no local LLM slot freed up before the deadline")
    try:
        async with get_client() as client:
            lease = await _acquire(client, deadline)
            if lease is None:  # no such limit: nothing to hold
                return await call()
            try:
                async with anyio.create_task_group() as renewing:
                    renewing.start_soon(_renew, client, lease)
                    try:
                        return await call()
                    finally:
                        renewing.cancel_scope.cancel()
            finally:
                with anyio.CancelScope(shield=True):
                    try:
                        await promptly(client, "POST", "/v2/concurrency_limits/decrement-with-lease",
                                       json={"lease_id": str(lease)})
                    except Exception:  # noqa: BLE001 - the lease runs out on its own within a minute
                        logger.warning("Could not release LLM slot lease %s; it expires within %ss", lease,
                                       LLM_SLOT_LEASE_SECONDS)
    finally:
        if local is not None:
            local.release()


async def _acquire(client: PrefectClient, deadline: float) -> UUID | None:
    """A lease on one slot of the LLM limit, waiting as the server says (HTTP 423 + Retry-After)
    until ``deadline``; None when the limit does not exist."""
    while True:
        try:
            response = await promptly(client, "POST", "/v2/concurrency_limits/increment-with-lease", json={
                "names": [LLM_CONCURRENCY_LIMIT], "slots": 1, "mode": "concurrency",
                "lease_duration": LLM_SLOT_LEASE_SECONDS})
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code != 423:
                raise
            wait = float(exc.response.headers.get("Retry-After") or 1.0)
            if anyio.current_time() + wait > deadline:
                raise TimeoutError("no LLM slot freed up before the deadline") from None
            await anyio.sleep(wait)
            continue
        body = response.json()
        return UUID(str(body["lease_id"])) if body.get("limits") and body.get("lease_id") else None


async def _renew(client: PrefectClient, lease: UUID) -> None:
    while True:
        await anyio.sleep(LLM_SLOT_LEASE_SECONDS * 0.75)
        try:
            await client.renew_concurrency_lease(lease_id=lease, lease_duration=LLM_SLOT_LEASE_SECONDS)
        except Exception as exc:  # noqa: BLE001 - the call goes on; the limit may be exceeded once
            logger.warning("Could not renew LLM slot lease %s: %s", lease, exc)


async def no_limit(settings: FailureInsightsSettings, call: Callable[[], Awaitable[T]]) -> T:
    """Run ``call`` without a limit (offline use, tests)."""
    return await call()
