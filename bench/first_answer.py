"""Benchmark: the first answer at once, the final answer once it can exist.

A real Prefect server and `failure-insights serve`; failed runs of 1,000, 20,000 and
100,000 log lines seeded through the API, whose last log records (the final-state record
among them) are stored late, as Prefect ships logs in batches after the run ends: 2 s plus
1 s per 2,000 lines (simulated here; a real 20,000-line run's records landed 24.5 s late).
A test LLM that answers at once, after 20 s, or never (the block's 30 s timeout ends the
wait). Reported per case: the failed run's end -> provisional artifact, -> final artifact
(the same card, updated), and the final artifact after the last log record was stored.

Baseline in the same run: the same failures with ``provisional_summary`` off (the previous
release's path: wait for the final record, read everything, then answer), instant LLM.

Usage: python bench/first_answer.py [--sizes 1000,20000,100000] [--llm instant,20s,never]
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

LATE_BASE_S = 2.0
LATE_PER_LINE_S = 1 / 2000


def _arg(name: str, default: str) -> list[str]:
    return (sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default).split(",")


async def seed(client, flow: str, lines: int) -> tuple[str, datetime, float]:
    """A failed run of ``lines`` log lines; returns its id, its end, and how late (s) its last
    records were stored."""
    from prefect.client.schemas.actions import LogCreate
    from prefect.states import Failed, Running

    from prefect_failure_insights.testing.seed import SCENARIOS, _deployment, _placeholder

    deployment = await _deployment(client, replace(SCENARIOS["vendor-503"], flow=flow), {})
    run = await client.create_flow_run_from_deployment(deployment, name=f"{flow}-{lines}")
    await client.set_flow_run_state(run.id, Running(), force=True)
    start = datetime.now(timezone.utc)
    task = await client.create_task_run(_placeholder.with_options(name="extract_orders"), run.id,
                                        dynamic_key="0", name="extract_orders-000")
    records = [LogCreate(name="prefect.task_runs", level=20, message=f"Processed batch {i} of {lines} "
                         f"({(i * 37) % 900} rows)", timestamp=start + timedelta(microseconds=i), flow_run_id=run.id,
                         task_run_id=task.id) for i in range(lines - 3)]
    error = ("Task run failed with exception: HTTPError('503 Server Error: Service Unavailable for url: "
             "https://api.vendor.example/v2/orders') - Retries are exhausted\nTraceback (most recent call last):\n"
             '  File "/app/pipelines/orders.py", line 42, in extract_orders\n    response.raise_for_status()\n'
             "requests.exceptions.HTTPError: 503 Server Error: Service Unavailable for url: "
             "https://api.vendor.example/v2/orders")
    end = start + timedelta(microseconds=lines + 10)
    last = [LogCreate(name="prefect.task_runs", level=40, message=error, timestamp=end, flow_run_id=run.id,
                      task_run_id=task.id),
            LogCreate(name="prefect.flow_runs", level=40, message="Finished in state Failed('Flow run encountered "
                      "an exception. HTTPError: 503 Server Error')", timestamp=end, flow_run_id=run.id)]
    early, late = records[: len(records) // 2], records[len(records) // 2:]
    for at in range(0, len(early), 5000):
        await client.create_logs(early[at:at + 5000])
    await client.create_logs(last[:1])  # the error itself is stored before the run ends
    await client.set_task_run_state(task.id, Failed(message="Task run encountered an exception HTTPError: 503 "
                                                            "Server Error: Service Unavailable"), force=True)
    await client.set_flow_run_state(run.id, Failed(message="Flow run encountered an exception. HTTPError: 503 Server "
                                                           "Error: Service Unavailable"), force=True)
    ended = time.monotonic()
    delay = LATE_BASE_S + LATE_PER_LINE_S * lines
    for at in range(0, len(late), 5000):
        await client.create_logs(late[at:at + 5000])
    await asyncio.sleep(max(0.0, delay - (time.monotonic() - ended)))
    await client.create_logs(last[1:])  # the final-state record, late
    return str(run.id), (await client.read_flow_run(run.id)).state.timestamp, time.monotonic() - ended


async def card_times(client, run_id: str, ended: datetime, timeout_s: float) -> tuple[float | None, float | None]:
    """Seconds from the run's end to its summary card (created), and to the card's final content."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    deadline = time.monotonic() + timeout_s
    first = None
    while time.monotonic() < deadline:
        found = [a for a in await client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))) if (a.key or "").startswith("failure-summary-")]
        if found:
            card = found[0]
            first = first or (card.created - ended).total_seconds()
            if "**Provisional**" not in (card.data or ""):
                return first, (card.updated - ended).total_seconds()
        await asyncio.sleep(0.2)
    return first, None


def main() -> None:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from prefect_failure_insights.blocks import FailureInsightsSettings, LLMCredentials
    from prefect_failure_insights.testing.fake_llm import FakeLLM
    from prefect_failure_insights.testing.prefect_server import PrefectServer

    sizes = [int(s) for s in _arg("--sizes", "1000,20000,100000")]
    speeds = _arg("--llm", "instant,20s,never")
    with tempfile.TemporaryDirectory(prefix="fi-first-") as tmp, FakeLLM(model="bench") as fake:
        server = PrefectServer(Path(tmp) / "prefect").start()
        env = {**os.environ, **server.env()}
        serve = subprocess.Popen([sys.executable, "-m", "prefect_failure_insights.cli", "serve", "--poll-seconds",
                                  "1", "--no-batch", "--reconcile-hours", "0"], env=env,
                                 stdout=open(Path(tmp) / "serve.log", "wb"), stderr=subprocess.STDOUT,  # noqa: SIM115
                                 start_new_session=True)
        rows = []
        try:
            with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
                async def go():
                    await LLMCredentials(base_url=fake.url, model="bench", timeout=30, max_retries=0).save(
                        "default", overwrite=True)
                    while b"Serving summaries" not in (Path(tmp) / "serve.log").read_bytes():
                        await asyncio.sleep(0.2)
                    async with get_client() as client:
                        cases = [(n, s, True) for n in sizes for s in speeds] + [(n, "instant", False) for n in sizes]
                        for n, speed, provisional in cases:
                            await FailureInsightsSettings(provisional_summary=provisional).save("default",
                                                                                               overwrite=True)
                            fake.reset("slow" if speed != "instant" else "ok")
                            fake.slow_seconds = 20 if speed == "20s" else 600
                            run_id, ended, late = await seed(client, f"first-{n}-{speed}-{int(provisional)}", n)
                            first, final = await card_times(client, run_id, ended, 240)
                            rows.append((n, speed, provisional, late, first, final))
                            label = "ours" if provisional else "baseline (no provisional)"
                            fmt = lambda v: f"{v:6.2f} s" if v is not None else "  none  "  # noqa: E731
                            print(f"{n:>7,} lines  LLM {speed:<8} {label:<26} last records stored {late:5.1f} s late"
                                  f"   first card {fmt(first)}   final {fmt(final)}"
                                  f"   final after last record {fmt(final - late if final else None)}", flush=True)

                asyncio.run(go())
        finally:
            serve.terminate()
            try:
                serve.wait(timeout=60)
            except subprocess.TimeoutExpired:
                serve.kill()
            server.stop()
    ours = [r[4] for r in rows if r[2] and r[4] is not None]
    if ours:
        print(f"\nprovisional card: median {statistics.median(ours):.2f} s, max {max(ours):.2f} s after the run's end "
              f"({len(ours)} cases)")


if __name__ == "__main__":
    main()
