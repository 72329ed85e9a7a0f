"""A small local "vendor API" for the demo that is down: every request gets HTTP 503."""

from __future__ import annotations

from prefect_failure_insights.testing.http import LocalHTTPServer, Request


class VendorAPI(LocalHTTPServer):
    """``GET /v2/orders`` answers 503 Service Unavailable, like a vendor in an outage."""

    def __init__(self) -> None:
        super().__init__()
        self.requests = 0

    @property
    def url(self) -> str:
        return self.base_url

    def handle(self, request: Request) -> None:
        self.requests += 1
        request.send(503, {"error": "upstream maintenance", "retry_after": 600}, {"Retry-After": "600"})
