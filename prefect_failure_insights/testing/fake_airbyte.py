"""A local fake of Airbyte's configuration API (``/api/v1/jobs/list``, ``/api/v1/jobs/get``)
over real HTTP, with basic auth, for testing the Airbyte log source."""

from __future__ import annotations

import base64
from typing import Any

from prefect_failure_insights.testing.http import LocalHTTPServer, Request


class FakeAirbyte(LocalHTTPServer):
    """Jobs per connection: ``add_job(connection_id, status, attempts=[(failure, [log lines])])``."""

    def __init__(self, username: str = "airbyte", password: str = "password") -> None:
        super().__init__()
        self.username = username
        self.password = password
        self._expected = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self.jobs: dict[int, dict[str, Any]] = {}
        self.requests: list[tuple[str, dict]] = []

    @property
    def url(self) -> str:
        return f"{self.base_url}/api"

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

    def handle(self, request: Request) -> None:
        body = request.json()
        self.requests.append((request.path, body))
        if request.method != "POST":
            return request.send(404, {"message": f"no route {request.path}"})
        if request.headers.get("Authorization") != self._expected:
            return request.send(401, {"message": "Unauthorized"})
        if request.path == "/api/v1/jobs/list":
            jobs = [{"job": j["job"], "attempts": [a["attempt"] for a in j["attempts"]]}
                    for j in self.jobs.values() if j["job"]["configId"] == body.get("configId")]
            jobs.sort(key=lambda j: j["job"]["createdAt"], reverse=True)
            size = (body.get("pagination") or {}).get("pageSize", 20)
            return request.send(200, {"jobs": jobs[:size], "totalJobCount": len(jobs)})
        if request.path == "/api/v1/jobs/get":
            job = self.jobs.get(body.get("id"))
            return request.send(200, job) if job else request.send(404, {"message": "Job not found"})
        return request.send(404, {"message": f"no route {request.path}"})
