"""Benchmark: the first answer at once, the final answer once it can exist.

A real Prefect server and `failure-insights serve`; failed runs of 1,000, 20,000 and
100,000 log lines seeded through the API, whose last log records (the error and the
final-state record among them) are stored late, as Prefect's log worker ships them, in
order, in batches every 2 s after the run ends: half the lines, over 2 s plus 1 s per
2,000 lines (simulated here; a real 20,000-line run's records landed 24.5 s late).
``--arrival out-of-order`` stores the error record before the run ends and the lines
logged before it afterwards (what a timestamp cursor cannot follow: the run is read again).
A test LLM that answers at once, after 20 s, or never (the block's 30 s timeout ends the
wait). Reported per case: the failed run's end -> provisional artifact, -> final artifact
(the same card, updated), and the final artifact after the last log record was stored.

Baseline in the same run: the same failures with ``provisional_summary`` off (the previous
release's path: wait for the final record, read everything, then answer), instant LLM.

Every (size, LLM speed) case runs ``--repeat`` times (default 2); the provisional answer does not
wait for the LLM, so its p95 per size is over every speed and repetition.

``--processes``: the failures are real flows run as ordinary processes (`bench/failing_flow.py`: N lines
logged, then the task raises), whose logs Prefect's own log worker ships; the baseline in the same run
is the same sizes seeded through the API. The first card of a flow run as a process is what a user sees.

Usage: python bench/first_answer.py [--sizes 1000,20000,100000] [--llm instant,20s,never] [--repeat 2]
                                    [--arrival in-order|out-of-order] [--processes]
       python bench/first_answer.py --memory [--memory-sizes 1000,100000,1000000]
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from uuid import uuid4

from failure_to_artifact import pct  # bench/, the script's own directory

LATE_BASE_S = 2.0
LATE_PER_LINE_S = 1 / 2000
SHIP_INTERVAL_S = 2.0  # PREFECT_LOGGING_TO_API_BATCH_INTERVAL's default
# Stages of the summarizer, by its task runs' names (a task not listed here fails the benchmark).
STAGES = {
    "load-settings": "setup", "load-database": "setup", "resolve-failed-run": "setup", "claim-summary": "setup",
    "load-secret-values": "setup", "follow-run-logs": "late logs", "wait-for-final-records": "late logs",
    "log-summary-record": "delivery", "read-failed-run": "reads",
    "read-run-logs": "reads", "compare-with-last-good-run": "reads", "load-log-sources": "reads",
    "read-external-logs": "reads", "build-evidence": "evidence", "provisional-summary": "analysis",
    "load-llm": "setup", "analyze-failure": "analysis", "store-summary": "delivery",
    "publish-artifact": "delivery", "record-artifact": "delivery", "release-summary": "delivery",
    "emit-summary-event": "delivery", "find-similar-failures": "analysis", "recall-resolutions": "analysis",
}


def _arg(name: str, default: str) -> list[str]:
    return (sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default).split(",")


async def seed(client, flow: str, lines: int, arrival: str = "in-order",
               database: Path | None = None) -> tuple[str, datetime, float]:
    """A failed run of ``lines`` log lines; returns its id, its end, and how late (s) its last
    records were stored.

    ``arrival``: ``in-order`` (as Prefect's log worker ships them: half the lines stored while
    the run runs, the rest, then the error and the final-state record, in batches every 2 s
    after it ends), ``out-of-order`` (the error record stored before the run ends, the lines
    logged before it only after: what a cursor cannot follow), ``stored`` (all before the end).
    ``database``: the server's SQLite file, to write the bulk of the lines into its ``log`` table
    directly (the API stores ~700 records/s on this machine: 1,000,000 would take 25 minutes).
    """
    from prefect.client.schemas.actions import LogCreate
    from prefect.states import Failed, Running

    from prefect_failure_insights.testing.seed import SCENARIOS, _deployment, _placeholder

    deployment = await _deployment(client, replace(SCENARIOS["vendor-503"], flow=flow), {})
    run = await client.create_flow_run_from_deployment(deployment, name=f"{flow}-{lines}")
    await client.set_flow_run_state(run.id, Running(), force=True)
    start = datetime.now(timezone.utc)
    task = await client.create_task_run(_placeholder.with_options(name="extract_orders"), run.id,
                                        dynamic_key="0", name="extract_orders-000")

    def store_directly(first: int, last: int) -> None:
        with sqlite3.connect(database, timeout=60) as db:
            for at in range(first, last, 50_000):
                db.executemany(
                    "INSERT INTO log (id, name, level, flow_run_id, task_run_id, message, timestamp) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(str(uuid4()), "prefect.task_runs", 20, str(run.id), str(task.id),
                      f"Processed batch {i} of {lines} ({(i * 37) % 900} rows)",
                      (start + timedelta(microseconds=i)).strftime("%Y-%m-%d %H:%M:%S.%f"))
                     for i in range(at, min(at + 50_000, last))])
                db.commit()

    async def store(first: int, last: int) -> None:  # in batches, never all in memory
        if database is not None:
            return await asyncio.to_thread(store_directly, first, last)
        for at in range(first, last, 5000):
            await client.create_logs([LogCreate(
                name="prefect.task_runs", level=20, message=f"Processed batch {i} of {lines} ({(i * 37) % 900} rows)",
                timestamp=start + timedelta(microseconds=i), flow_run_id=run.id, task_run_id=task.id)
                for i in range(at, min(at + 5000, last))])

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
    half = (lines - 3) // 2 if arrival != "stored" else lines - 3
    await store(0, half)
    if arrival == "stored":
        await client.create_logs(last)
    elif arrival == "out-of-order":
        await client.create_logs(last[:1])  # the error is stored before the run ends
    await client.set_task_run_state(task.id, Failed(message="Task run encountered an exception HTTPError: 503 "
                                                            "Server Error: Service Unavailable"), force=True)
    await client.set_flow_run_state(run.id, Failed(message="Flow run encountered an exception. HTTPError: 503 Server "
                                                           "Error: Service Unavailable"), force=True)
    ended = time.monotonic()
    if arrival != "stored":
        delay = LATE_BASE_S + LATE_PER_LINE_S * lines
        batches = max(1, round(delay / SHIP_INTERVAL_S))
        step = -(-(lines - 3 - half) // batches)
        for b in range(batches):
            await asyncio.sleep(max(0.0, ended + (b + 1) * delay / batches - time.monotonic() - 0.5))
            await store(half + b * step, min(half + (b + 1) * step, lines - 3))
        await asyncio.sleep(max(0.0, delay - (time.monotonic() - ended)))
        await client.create_logs(last if arrival == "in-order" else last[1:])  # the final-state record, last
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


async def stages(client, run_id: str, ended: datetime) -> dict[str, float]:
    """Seconds by stage of the summarizer of ``run_id``: ``trigger``, then ``first <stage>`` for the
    tasks up to the provisional card's delivery and ``final <stage>`` after it (wall time from the
    stage's first task start to its last task end; the late-log wait overlaps the first answer)."""
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterId

    from prefect_failure_insights.defaults import SUMMARIZER_FLOW

    runs = await client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[SUMMARIZER_FLOW])), limit=200)
    mine = [r for r in runs if str(r.parameters.get("flow_run_id")) == run_id and r.start_time]
    if not mine:
        return {}
    summarizer = min(mine, key=lambda r: r.start_time)
    tasks = sorted((t for t in await client.read_task_runs(flow_run_filter=FlowRunFilter(
        id=FlowRunFilterId(any_=[summarizer.id]))) if t.start_time and t.end_time), key=lambda t: t.start_time)
    out = {"trigger": (summarizer.start_time - ended).total_seconds()}
    spans: dict[str, list[datetime]] = {}
    phase = "first"
    for t in tasks:
        name = t.name.rsplit("-", 1)[0]
        if name not in STAGES:
            raise SystemExit(f"the summarizer has a task this benchmark does not know: {name}")
        stage = STAGES[name] if STAGES[name] in ("setup", "late logs") else f"{phase} {STAGES[name]}"
        span = spans.setdefault(stage, [t.start_time, t.end_time])
        span[0], span[1] = min(span[0], t.start_time), max(span[1], t.end_time)
        if name == "emit-summary-event" and phase == "first":
            phase = "final"
    out.update({stage: (b - a).total_seconds() for stage, (a, b) in spans.items()})
    return out


async def as_processes(client, env: dict[str, str], sizes: list[int], repeat: int, rows: list) -> None:
    """Each size as a real flow process (Prefect's log worker ships its logs) and, as the baseline
    in the same run, seeded through the API; the instant test LLM."""
    here = Path(__file__).parent
    for _ in range(repeat):
        for n in sizes:
            for how in ("process", "seeded"):
                if how == "process":
                    out = await asyncio.to_thread(subprocess.run, [sys.executable, str(here / "failing_flow.py"),
                                                                   str(n), f"proc-{n}-{uuid4().hex[:6]}"],
                                                  env=env, capture_output=True, text=True, timeout=600)
                    m = [ln for ln in out.stdout.splitlines() if ln.startswith("FLOW_RUN_ID=")]
                    if not m:
                        raise SystemExit(f"the flow process failed: {out.stderr[-2000:]}")
                    run_id = m[0].split("=", 1)[1]
                    ended = (await client.read_flow_run(run_id)).end_time
                else:
                    run_id, ended, _ = await seed(client, f"seeded-{n}", n, "in-order")
                first, final = await card_times(client, run_id, ended, 400)
                rows.append((n, how, first, final))
                fmt = lambda v: f"{v:6.2f} s" if v is not None else "  none  "  # noqa: E731
                print(f"{n:>7,} lines  {how:<8} first card {fmt(first)}   final {fmt(final)}", flush=True)


def report_processes(sizes: list[int], rows: list) -> None:
    print(f"\n{'lines':>7}  {'failure':<8} {'runs':>4} {'first card p50/p95/max s':>26} {'final p50/max s':>16}")
    for n in sizes:
        for how in ("process", "seeded"):
            firsts = [r[2] for r in rows if r[0] == n and r[1] == how and r[2] is not None]
            finals = [r[3] for r in rows if r[0] == n and r[1] == how and r[3] is not None]
            runs = sum(1 for r in rows if r[0] == n and r[1] == how)
            f1 = f"{statistics.median(firsts):6.2f}/{pct(firsts, 0.95):6.2f}/{max(firsts):6.2f}" if firsts else "none"
            f2 = f"{statistics.median(finals):6.2f}/{max(finals):6.2f}" if finals else "none"
            print(f"{n:>7,}  {how:<8} {runs:>4} {f1:>26} {f2:>16}")
    every = [r[2] for r in rows if r[1] == "process" and r[2] is not None]
    if every:
        print(f"flows run as processes, every size: first card median {statistics.median(every):.2f} s, "
              f"max {max(every):.2f} s ({len(every)} runs)")


def memory(sizes: list[int]) -> None:
    """Peak resident memory of `failure-insights summary create` (the whole summarizer, one process)
    on failed runs of ``sizes`` lines, all stored (no late records, the bulk written straight into
    the server's database), with the instant test LLM. The smallest size is the baseline: the
    process itself (Python, Prefect, the SDKs)."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from prefect_failure_insights.blocks import LLMCredentials
    from prefect_failure_insights.testing.fake_llm import FakeLLM
    from prefect_failure_insights.testing.prefect_server import PrefectServer

    with tempfile.TemporaryDirectory(prefix="fi-memory-") as tmp, FakeLLM(model="bench") as fake:
        server = PrefectServer(Path(tmp) / "prefect").start()
        env = {**os.environ, **server.env()}
        try:
            with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
                async def go(n: int) -> str:
                    await LLMCredentials(base_url=fake.url, model="bench", timeout=30, max_retries=0).save(
                        "default", overwrite=True)
                    async with get_client() as client:
                        return (await seed(client, f"memory-{n}", n, "stored", server.home / "prefect.db"))[0]

                for n in sizes:
                    seeded = time.monotonic()
                    run_id = asyncio.run(go(n))
                    print(f"{n:>9,} lines   seeded in {time.monotonic() - seeded:5.1f} s", flush=True)
                    started = time.monotonic()
                    log = Path(tmp) / f"summarize-{n}.log"  # a file, not a pipe nobody reads while it waits
                    with open(log, "wb") as out:
                        child = subprocess.Popen([sys.executable, "-m", "prefect_failure_insights.cli", "summary",
                                                  "create", run_id, "--format", "json"], env=env,
                                                 stdout=subprocess.DEVNULL, stderr=out)
                        _, status, usage = os.wait4(child.pid, 0)
                        child.returncode = os.waitstatus_to_exitcode(status)
                    if child.returncode:
                        raise SystemExit(f"summarize failed on {n:,} lines: {log.read_text(errors='replace')[-500:]}")
                    print(f"{n:>9,} lines   summarizer peak memory {usage.ru_maxrss / 1024:6.0f} MB   "
                          f"{time.monotonic() - started:5.1f} s", flush=True)
        finally:
            server.stop()


def main() -> None:
    if "--memory" in sys.argv:
        return memory([int(s) for s in _arg("--memory-sizes", "1000,100000,1000000")])
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from prefect_failure_insights.blocks import FailureInsightsSettings, LLMCredentials
    from prefect_failure_insights.testing.fake_llm import FakeLLM
    from prefect_failure_insights.testing.prefect_server import PrefectServer

    sizes = [int(s) for s in _arg("--sizes", "1000,20000,100000")]
    speeds = _arg("--llm", "instant,20s,never")
    repeat = int(_arg("--repeat", "2")[0])
    arrival = _arg("--arrival", "in-order")[0]
    processes = "--processes" in sys.argv
    if arrival not in ("in-order", "out-of-order"):
        raise SystemExit(f"--arrival must be in-order or out-of-order, not {arrival!r}")
    print(f"late records arrive {arrival}", flush=True)
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
                        if processes:
                            return await as_processes(client, env, sizes, repeat, rows)
                        cases = [(n, s, True) for n in sizes for s in speeds for _ in range(repeat)]
                        cases += [(n, "instant", False) for n in sizes for _ in range(repeat)]
                        for n, speed, provisional in cases:
                            await FailureInsightsSettings(provisional_summary=provisional).save("default",
                                                                                               overwrite=True)
                            fake.reset("slow" if speed != "instant" else "ok")
                            fake.slow_seconds = 20 if speed == "20s" else 600
                            run_id, ended, late = await seed(client, f"first-{n}-{speed}-{int(provisional)}", n, arrival)
                            first, final = await card_times(client, run_id, ended, 240)
                            await asyncio.sleep(1)  # the summarizer's last task runs are reported
                            by_stage = await stages(client, run_id, ended)
                            rows.append((n, speed, provisional, late, first, final, by_stage))
                            label = "ours" if provisional else "baseline (no provisional)"
                            fmt = lambda v: f"{v:6.2f} s" if v is not None else "  none  "  # noqa: E731
                            print(f"{n:>7,} lines  LLM {speed:<8} {label:<26} last records stored {late:5.1f} s late"
                                  f"   first card {fmt(first)}   final {fmt(final)}"
                                  f"   final after last record {fmt(final - late if final else None)}", flush=True)
                            print("          " + "  ".join(f"{k} {v:.2f}" for k, v in by_stage.items()), flush=True)

                asyncio.run(go())
        finally:
            serve.terminate()
            try:
                serve.wait(timeout=60)
            except subprocess.TimeoutExpired:
                serve.kill()
            server.stop()
    if processes:
        return report_processes(sizes, rows)
    print(f"\n{'lines':>7}  {'LLM':<8} {'path':<9} {'runs':>4} {'first card p50/p95 s':>21} "
          f"{'final p50/p95 s':>16} {'final after last record p50 s':>31} {'records late s':>15}")
    for n in sizes:
        for speed, provisional in [(s, True) for s in speeds] + [("instant", False)]:
            group = [r for r in rows if r[0] == n and r[1] == speed and r[2] == provisional]
            firsts = [r[4] for r in group if r[4] is not None]
            finals = [r[5] for r in group if r[5] is not None]
            after = [r[5] - r[3] for r in group if r[5] is not None]
            cell = lambda v: f"{statistics.median(v):6.2f}/{pct(v, 0.95):6.2f}" if v else "  none/  none"  # noqa: E731
            print(f"{n:>7,}  {speed:<8} {'ours' if provisional else 'baseline':<9} {len(group):>4} {cell(firsts):>21} "
                  f"{cell(finals):>16} {statistics.median(after) if after else float('nan'):>31.2f} "
                  f"{statistics.median(r[3] for r in group):>15.1f}")
        ours = [r[4] for r in rows if r[0] == n and r[2] and r[4] is not None]
        if ours:
            print(f"{n:>7,}  provisional card over every LLM speed: p50 {statistics.median(ours):.2f} s, "
                  f"p95 {pct(ours, 0.95):.2f} s ({len(ours)} runs)")
    print("\nmedian seconds by stage (the late-log wait overlaps the first answer):")
    names = list(dict.fromkeys(k for r in rows for k in r[6]))
    print(f"{'lines':>7}  {'path':<9} " + " ".join(f"{k:>15}" for k in names))
    for n in sizes:
        for provisional in (True, False):
            group = [r[6] for r in rows if r[0] == n and r[2] == provisional and r[1] == "instant"]
            print(f"{n:>7,}  {'ours' if provisional else 'baseline':<9} " + " ".join(
                f"{statistics.median(g[k] for g in group if k in g) if any(k in g for g in group) else float('nan'):>15.2f}"
                for k in names))


if __name__ == "__main__":
    main()
