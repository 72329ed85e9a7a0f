"""One scaffold for the local HTTP servers of the tests and the demo (fake LLM, fake Airbyte,
the demo's vendor API): real HTTP on 127.0.0.1, a free port, a thread, JSON answers."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Request:
    """One request as a `LocalHTTPServer` hands it to ``handle``: answer it with `send`."""

    def __init__(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        self._handler = handler
        self.method = method
        self.path = handler.path
        self.headers = handler.headers
        length = int(handler.headers.get("Content-Length") or 0)
        self.raw = handler.rfile.read(length) if length else b""

    def json(self) -> Any:
        """The body as JSON (``{}`` when empty); ``{"_raw": text}`` when it is not JSON."""
        try:
            return json.loads(self.raw or b"{}")
        except json.JSONDecodeError:
            return {"_raw": self.raw.decode(errors="replace")}

    def send(self, status: int, payload: Any = None, headers: dict[str, str] | None = None,
             raw: bytes | None = None) -> None:
        """Answer with ``payload`` as JSON (or ``raw`` bytes as they are)."""
        data = raw if raw is not None else json.dumps(payload).encode()
        h = self._handler
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            h.send_header(key, value)
        h.end_headers()
        try:
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test): nothing to answer


class LocalHTTPServer:
    """A threaded HTTP server on 127.0.0.1; subclasses answer in `handle`.

    Example:
        ```python
        class Down(LocalHTTPServer):
            def handle(self, request):
                request.send(503, {"error": "maintenance"})

        with Down() as server:
            httpx.get(server.base_url)
        ```
    """

    #: "HTTP/1.1" keeps connections alive, as a real endpoint does for SDK clients.
    protocol_version = "HTTP/1.0"

    def __init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None

    def handle(self, request: Request) -> None:  # pragma: no cover - every subclass answers
        request.send(404, {"message": f"no route {request.path}"})

    @property
    def base_url(self) -> str:
        assert self._server is not None, f"{type(self).__name__} is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = owner.protocol_version

            def log_message(self, *args: object) -> None:  # quiet
                return

            def do_GET(self) -> None:  # noqa: N802
                owner.handle(Request(self, "GET"))

            def do_POST(self) -> None:  # noqa: N802
                owner.handle(Request(self, "POST"))

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name=type(self).__name__, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
