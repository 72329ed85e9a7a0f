"""API writes on the path of an answer, retried at once when a SQLite-backed server is busy.

A SQLite-backed Prefect server answers a write with HTTP 503 ("database is locked") while
another write holds the database, as when it stores a large run's late log records or the
summarizer's own task-run events. The Prefect client then sleeps 2 s (then 4 s, 8 s) before
trying again, even with ``PREFECT_CLIENT_MAX_RETRIES=0``: measured here, 1.8-2.2 s added to
an LLM slot whose call took 30 ms, in one summary in two. `promptly` sends the request
itself and retries a 503 after 0.05 s, doubling, five times (1.55 s of waiting at most);
any other answer but success, or a 503 after that, is left to the client's usual path
(its retries, its CSRF handling, its errors).
"""

from __future__ import annotations

from typing import Any

import anyio
import httpx
from prefect.client.orchestration import PrefectClient

FIRST_WAIT_S = 0.05
QUICK_ATTEMPTS = 5


async def promptly(client: PrefectClient, method: str, path: str, *, json: Any = None) -> httpx.Response:
    """The response to ``method path`` (relative to the API URL), a 503 retried quickly."""
    http = client._client
    wait = FIRST_WAIT_S
    for _ in range(QUICK_ATTEMPTS):
        # httpx's own send: the Prefect client's wrapper is what sleeps 2 s on a 503.
        response = await httpx.AsyncClient.send(http, http.build_request(method, path, json=json))
        if response.is_success:
            return response
        if response.status_code != 503:
            break
        await anyio.sleep(wait)
        wait *= 2
    return await http.request(method, path, json=json)
