"""`promptly`: a busy SQLite server's 503 retried at once, not after the client's 2 s."""

from __future__ import annotations

import asyncio
import time

from prefect.client.orchestration import PrefectClient

from prefect_failure_insights.prefect_api.quick_retry import promptly
from prefect_failure_insights.testing.http import LocalHTTPServer


class Locked(LocalHTTPServer):
    """Answers 503 ("database is locked") ``busy`` times, then 201."""

    def __init__(self, busy: int) -> None:
        super().__init__()
        self.busy = busy
        self.calls = 0

    def handle(self, request) -> None:
        if "csrf-token" in request.path:  # the client's normal path asks; a server without CSRF says 404
            return request.send(404, {"detail": "Not Found"})
        self.calls += 1
        if self.calls <= self.busy:
            request.send(503, {"exception_message": "database is locked"})
        else:
            request.send(201, {"id": "made", "body": request.json()})


def _post(url: str):
    async def go():
        async with PrefectClient(api=f"{url}/api") as client:
            started = time.monotonic()
            response = await promptly(client, "POST", "/artifacts/", json={"key": "k"})
            return response, time.monotonic() - started

    return asyncio.run(go())


def test_a_busy_server_is_asked_again_at_once() -> None:
    with Locked(busy=3) as server:
        response, took = _post(server.base_url)
    assert response.json() == {"id": "made", "body": {"key": "k"}}
    assert server.calls == 4 and took < 6  # the client alone would have slept 2 s, 4 s, then 8 s


def test_a_server_that_stays_busy_is_left_to_the_clients_own_retries() -> None:
    with Locked(busy=5) as server:
        response, took = _post(server.base_url)
    assert response.status_code == 201 and server.calls == 6 and took >= 1.5


class Guarded(LocalHTTPServer):
    """A server with CSRF protection on (`PREFECT_SERVER_CSRF_PROTECTION_ENABLED`), or Prefect Cloud's
    rate limit: what the client's own wrapper handles, so `promptly` must leave such answers to it."""

    def __init__(self, rate_limited: int = 0) -> None:
        super().__init__()
        self.rate_limited = rate_limited
        self.calls: list[dict] = []

    def handle(self, request) -> None:
        if "csrf-token" in request.path:
            return request.send(200, {"token": "tok", "client": "c", "expiration": "2099-01-01T00:00:00Z"})
        self.calls.append(dict(request.headers))
        if request.headers.get("Prefect-Csrf-Token") != "tok":
            return request.send(403, {"detail": "Invalid CSRF token"})
        if self.rate_limited:
            self.rate_limited -= 1
            return request.send(429, {"detail": "slow down"}, headers={"Retry-After": "1"})
        return request.send(201, {"id": "made"})


def test_a_csrf_protected_server_gets_its_token_through_the_clients_wrapper() -> None:
    with Guarded() as server:
        response, _ = _post(server.base_url)
    assert response.status_code == 201
    assert [c.get("Prefect-Csrf-Token") for c in server.calls] == [None, "tok"]  # asked once bare, then the wrapper


def test_a_rate_limit_waits_as_retry_after_says() -> None:
    with Guarded(rate_limited=1) as server:
        response, took = _post(server.base_url)
    assert response.status_code == 201 and took >= 1.0 and len(server.calls) == 3
