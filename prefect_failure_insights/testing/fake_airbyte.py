"""A local fake of Airbyte's configuration API (``/api/v1/jobs/list``, ``/api/v1/jobs/get``)
over real HTTP, with basic auth, for testing the Airbyte log source."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeAirbyte:
    """Jobs per connection: ``add_job(connection_id, status, attempts=[(failure, [log lines])])``."""

    def __init__(self, username: str = "airbyte", password: str = "password") -> None:
        self.username = username
        self.password = password
        self.jobs: dict[int, dict[str, Any]] = {}
        self.requests: list[tuple[str, dict]] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/api"

    def add_job(self, connection_id: str, status: str, attempts: list[tuple[str | None, list[str]]],
                created_at: int | None = None) -> int:
        job_id = 1000 + len(self.jobs)
        self.jobs[job_id] = {
            "job": {"id": job_id, "configType": "sync", "configId": connection_id, "status": status,
                    "createdAt": created_at or job_id, "updatedAt": created_at or job_id},
            "attempts": [
                {"attempt": {"id": n, "status": "failed" if failure else "succeeded",
                             "failureSummary": {"failures": [{"failureOrigin": "source", "failureType": "system_error",
                                                              "externalMessage": failure}]} if failure else None},
                 "logs": {"logLines": lines}}
                for n, (failure, lines) in enumerate(attempts)
            ],
        }
        return job_id

    def start(self) -> FakeAirbyte:
        fake = self
        expected = "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return

            def _send(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                fake.requests.append((self.path, body))
                if self.headers.get("Authorization") != expected:
                    return self._send(401, {"message": "Unauthorized"})
                if self.path == "/api/v1/jobs/list":
                    jobs = [{"job": j["job"], "attempts": [a["attempt"] for a in j["attempts"]]}
                            for j in fake.jobs.values() if j["job"]["configId"] == body.get("configId")]
                    jobs.sort(key=lambda j: j["job"]["createdAt"], reverse=True)
                    size = (body.get("pagination") or {}).get("pageSize", 20)
                    return self._send(200, {"jobs": jobs[:size], "totalJobCount": len(jobs)})
                if self.path == "/api/v1/jobs/get":
                    job = fake.jobs.get(body.get("id"))
                    return self._send(200, job) if job else self._send(404, {"message": "Job not found"})
                return self._send(404, {"message": f"no route {self.path}"})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeAirbyte:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
