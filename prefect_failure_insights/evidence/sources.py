"""More log sources: evidence from the systems a failed task was driving.

Prefect's own logs say that a sync task failed; the reason is often only in the
external system's logs. A `LogSource` looks at the failed run and its log lines and
returns extra `LogSection`s, which the evidence builder condenses within a share of
the token budget (lines cited as ``A12`` rather than ``L12``).

Built in: `AirbyteSource`. A failed task that drove an Airbyte sync (its name, state
message or logs mention Airbyte, and its logs name the connection id) -> the latest
failed Airbyte job of that connection -> its last attempt's failure summary and logs,
over Airbyte's configuration API with httpx.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol

import httpx

from prefect_failure_insights.blocks.airbyte import AirbyteLogCredentials
from prefect_failure_insights.models import FailedRun, LogLine, LogSection, TaskRunInfo, bounded
from prefect_failure_insights.redaction import LogRedactor, Redactor

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_CONNECTION = re.compile(rf"(?i)connection(?:[ _-]?id)?\W{{0,20}}({_UUID})")
_AIRBYTE_LINE = re.compile(
    r"^(?P<ts>\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)?\s*"
    r"(?:(?P<src>\S+)\s+>\s+)?(?:\[?(?P<level>ERROR|WARN|WARNING|INFO|DEBUG|TRACE|FATAL)\]?\b)?\s*(?P<msg>.*)$",
    re.DOTALL,
)
_LEVELS = {"FATAL": 50, "ERROR": 40, "WARN": 30, "WARNING": 30, "INFO": 20, "DEBUG": 10, "TRACE": 10}
MAX_SECTION_LINES = 20_000


class LogSource(Protocol):
    """A source of extra evidence for a failed run."""

    name: str

    async def sections(self, failed: FailedRun, lines: Iterable[LogLine]) -> list[LogSection]:
        """Extra log sections for ``failed``; [] when it has nothing to add."""
        ...


def parse_airbyte_line(number: int, text: str, redactor: LogRedactor | None = None) -> LogLine:
    """One Airbyte log line as a `LogLine` (level read from the text), redacted as it enters (by
    ``redactor``, the same for every line of the attempt, in order: see `LogRedactor`)."""
    text = (redactor or LogRedactor(Redactor())).redact(bounded(text), stream="airbyte")
    m = _AIRBYTE_LINE.match(text)
    level = _LEVELS.get((m.group("level") or "").upper()) if m else None
    if level is None:
        level = 40 if re.search(r"(?i)\b(?:error|exception|failed|failure)\b", text) else 20
    return LogLine(lineno=number, timestamp=(m.group("ts") or "") if m else "", level=level,
                   message=text, logger="airbyte")


class AirbyteSource:
    """Logs of the failed Airbyte attempt behind a failed sync task."""

    name = "airbyte"

    def __init__(self, credentials: AirbyteLogCredentials, jobs_to_scan: int = 10) -> None:
        self.credentials = credentials
        self.jobs_to_scan = jobs_to_scan

    @staticmethod
    def _is_airbyte_task(t: TaskRunInfo) -> bool:
        return "airbyte" in f"{t.name} {t.message or ''}".lower() or "sync" in t.name.lower()

    def connections(self, failed: FailedRun, lines: Iterable[LogLine]) -> dict[str, str]:
        """Connection id by failed-task name, read from the tasks' own log lines."""
        tasks = {t.id: t for t in failed.failed_tasks if self._is_airbyte_task(t)}
        by_name = {t.name: t for t in tasks.values()}
        found: dict[str, str] = {}
        for line in lines:
            owner = tasks.get(line.task_run_id or "") or by_name.get(line.task_run_name or "")
            if owner is None or owner.name in found:
                continue
            m = _CONNECTION.search(line.message)
            if m and ("airbyte" in line.message.lower() or "connection" in line.message.lower()):
                found[owner.name] = m.group(1)
        for t in tasks.values():  # or in the state message
            m = _CONNECTION.search(t.message or "")
            if m and t.name not in found:
                found[t.name] = m.group(1)
        return found

    async def _latest_failed_job(self, client: httpx.AsyncClient, connection_id: str) -> dict | None:
        response = await client.post("/v1/jobs/list", json={
            "configTypes": ["sync"], "configId": connection_id, "pagination": {"pageSize": self.jobs_to_scan},
        })
        response.raise_for_status()
        jobs = [j.get("job", j) for j in response.json().get("jobs", [])]
        failed = [j for j in jobs if str(j.get("status", "")).lower() in {"failed", "incomplete", "cancelled"}]
        return max(failed, key=lambda j: (j.get("createdAt") or 0, j.get("id") or 0)) if failed else None

    async def sections(self, failed: FailedRun, lines: Iterable[LogLine]) -> list[LogSection]:
        found = self.connections(failed, lines)
        if not found:
            return []
        out: list[LogSection] = []
        async with self.credentials.get_client() as client:
            for task_name, connection_id in found.items():
                job = await self._latest_failed_job(client, connection_id)
                if job is None:
                    continue
                response = await client.post("/v1/jobs/get", json={"id": job["id"]})
                response.raise_for_status()
                attempts = response.json().get("attempts", [])
                if not attempts:
                    continue
                last = attempts[-1]
                attempt = last.get("attempt", {})
                header = [f"Airbyte connection {connection_id}, job {job['id']} ({job.get('status')}), "
                          f"{len(attempts)} attempt(s); task {task_name}"]
                for failure in (attempt.get("failureSummary") or {}).get("failures", [])[:5]:
                    header.append(
                        f"failure: origin={failure.get('failureOrigin')} type={failure.get('failureType')}: "
                        f"{failure.get('externalMessage') or failure.get('internalMessage') or ''}"
                    )
                raw = ((last.get("logs") or {}).get("logLines") or [])[-MAX_SECTION_LINES:]
                log = LogRedactor(Redactor())  # one for the attempt's lines, in their order
                out.append(LogSection(
                    title=f"Airbyte job {job['id']}, attempt {attempt.get('id', len(attempts) - 1)}",
                    source=self.name,
                    header=header,
                    lines=[parse_airbyte_line(i, text, log) for i, text in enumerate(raw, start=1)],
                ))
        return out


def configured_sources(airbyte: AirbyteLogCredentials | None) -> list[LogSource]:
    return [AirbyteSource(airbyte)] if airbyte is not None else []


async def read_external_logs(failed: FailedRun, logs: Iterable[LogLine], sources: list[LogSource],
                             ) -> tuple[list[LogSection], list[str]]:
    """Each configured source's extra evidence, and a warning for each source that failed
    (it is skipped: a log source never fails the summary)."""
    out: list[LogSection] = []
    warnings: list[str] = []
    for source in sources:
        try:
            out.extend(await source.sections(failed, iter(logs)))
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            detail = f"HTTP {exc.response.status_code}" if isinstance(exc, httpx.HTTPStatusError) else type(exc).__name__
            warnings.append(f"Log source {source.name} failed ({detail}); summarizing without it.")
    return out, warnings
