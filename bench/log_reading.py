"""Benchmark: reading all of a failed run's logs from a real Prefect server.

A failing flow logs N lines (10k and 100k by default) against a fresh local server;
once they are all stored, the same run's logs are read, each in a fresh process:

* ours: streaming ``GET /flow_runs/{id}/logs/download`` into a temporary file
  (`read_logs`), then parsing every line back (`RunLogs`);
* baseline: the Prefect client's ``read_logs``, 200 rows per page (the API's cap),
  all rows kept in memory.

Reported: seconds and peak RSS of the reading process.
Usage: python bench/log_reading.py [10000,100000]
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent


async def _ours(run_id: str) -> int:
    from prefect.client.orchestration import get_client

    from prefect_failure_insights.prefect_api.logs import read_run_logs
    from prefect_failure_insights.redaction import Redactor

    async with get_client() as client:
        logs = await read_run_logs(client, [run_id])
    try:
        return sum(1 for _ in logs.lines(Redactor()))  # read as the summarizer does: redacted
    finally:
        logs.close()


async def _paged(run_id: str) -> int:
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    rows = []
    async with get_client() as client:
        offset = 0
        while True:
            page = await client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[UUID(run_id)])), limit=200, offset=offset)
            rows.extend(page)
            if len(page) < 200:
                return len(rows)
            offset += 200


def one(mode: str, run_id: str) -> None:
    started = time.perf_counter()
    count = asyncio.run(_ours(run_id) if mode == "ours" else _paged(run_id))
    print(json.dumps({"lines": count, "seconds": time.perf_counter() - started,
                      "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main() -> int:
    if sys.argv[1:2] == ["--one"]:
        one(sys.argv[2], sys.argv[3])
        return 0
    sizes = [int(s) for s in (sys.argv[1] if len(sys.argv) > 1 else "10000,100000").split(",")]

    from prefect.settings import PREFECT_API_URL, temporary_settings

    from prefect_failure_insights.testing.prefect_server import PrefectServer

    home = Path(tempfile.mkdtemp(prefix="fi-logs-bench-"))
    with PrefectServer(home / "prefect") as server, temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        env = {**os.environ, **server.env()}
        print(f"{'lines':>8} {'method':<36} {'seconds':>8} {'peak RSS MB':>12}")
        for size in sizes:
            out = subprocess.run([sys.executable, str(HERE / "pipelines.py"), "1", str(size), "0"],
                                 env=env, capture_output=True, text=True, timeout=1800)
            run_id = out.stdout.split()[1]
            # Wait until the server holds every line (they arrive late).
            expected = size + 4
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                got = json.loads(subprocess.run([sys.executable, __file__, "--one", "paged", run_id], env=env,
                                                capture_output=True, text=True, check=True).stdout)["lines"]
                if got >= expected:
                    break
                time.sleep(5)
            for mode, label in (("ours", "CSV download, streamed to disk (ours)"),
                                ("paged", "/logs/filter, 200 per page, in memory")):
                result = json.loads(subprocess.run([sys.executable, __file__, "--one", mode, run_id], env=env,
                                                   capture_output=True, text=True, check=True).stdout)
                print(f"{result['lines']:>8,} {label:<36} {result['seconds']:>8.2f} {result['rss_mb']:>12.0f}",
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
