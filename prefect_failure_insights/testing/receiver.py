"""A local HTTP endpoint standing in for Slack or a pager: it records every notification posted
to it (by a Prefect `CustomWebhookNotificationBlock`), for the demo to print and tests to check."""

from __future__ import annotations

import threading
import time
from typing import Any

from prefect_failure_insights.testing.http import LocalHTTPServer, Request

#: The JSON a `CustomWebhookNotificationBlock` pointed at the receiver posts: Prefect fills
#: ``{{subject}}`` and ``{{body}}`` in.
WEBHOOK_JSON = {"subject": "{{subject}}", "body": "{{body}}"}


class NotificationReceiver(LocalHTTPServer):
    """``POST /hook``: recorded in `received`, answered 200."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"{self.base_url}/hook"

    def handle(self, request: Request) -> None:
        with self._lock:
            self.received.append(request.json())
        request.send(200, {"ok": True})

    def clear(self) -> None:
        with self._lock:
            self.received.clear()

    def wait_for(self, count: int, timeout_s: float) -> list[dict[str, Any]]:
        """The notifications received once there are ``count`` (or all there are after ``timeout_s``)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.2)
        with self._lock:
            return list(self.received)

    def block(self, name: str = "failure-insights-receiver"):
        """A Prefect notification block posting to this receiver (not saved)."""
        from prefect.blocks.notifications import CustomWebhookNotificationBlock

        return CustomWebhookNotificationBlock(name=name, url=self.url, method="POST", json_data=WEBHOOK_JSON)
