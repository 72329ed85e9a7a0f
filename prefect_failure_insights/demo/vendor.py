"""A small local "vendor API" for the demo in an outage: requests get HTTP 503 (all of them, or
the first ``fail_first``, after which the outage is over and the orders come back)."""

from __future__ import annotations

from prefect_failure_insights.testing.http import LocalHTTPServer, Request


class VendorAPI(LocalHTTPServer):
    """``GET /v2/orders`` answers 503 Service Unavailable, like a vendor in an outage."""

    def __init__(self, fail_first: int | None = None) -> None:
        super().__init__()
        self.requests = 0
        self.fail_first = fail_first

    @property
    def url(self) -> str:
        return self.base_url

    def handle(self, request: Request) -> None:
        self.requests += 1
        if self.fail_first is None or self.requests <= self.fail_first:
            request.send(503, {"error": "upstream maintenance", "retry_after": 600}, {"Retry-After": "600"})
        else:
            request.send(200, {"orders": [{"id": i, "amount": 10 * i} for i in range(1, 6)]})
