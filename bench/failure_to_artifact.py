"""Benchmark: time from a failed run's end to its failure-summary artifact.

Starts a real Prefect server, serves the summarizer (runner polling every second),
points the default llm-credentials block at an instantly answering local test LLM,
runs N failing flows of ~LINES log lines one after another, and reports, per
failure and as median / p95:

  total       failed run's end -> artifact created
  trigger     failed run's end -> summarizer run started, made of:
  automation    failed run's end -> summarizer run created (by `serve` at the failure event, else the automation)
  start         created -> started (runner poll + new Python process)
  logs        following the failed run's logs until they are complete (read as they arrive)
  read        reading the run and its task runs
  llm         the analysis task (LLM call included)
  deliver     claim + row + artifact

Baselines in the same run: the same failures with the summarizer served by Prefect's
own Runner (a new process per run) instead of `failure-insights serve`; and reading
each run's logs with the CSV download endpoint (what the summarizer does) against
paging ``/logs/filter`` 200 rows at a time.

Usage: python bench/failure_to_artifact.py [N=12] [LINES=1000]
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def collect(run_ids: list[str]) -> list[dict]:
    from prefect_failure_insights.tasks import analysis, claims, delivery, loading, reading

    KNOWN_TASKS = {t.name for module in (analysis, claims, delivery, loading, reading)  # noqa: N806
                   for t in vars(module).values() if hasattr(t, "fn") and hasattr(t, "name")}
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterId,
    )

    rows = []
    async with get_client() as client:
        summarizers = await client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["summarize-failure"])), limit=200)
        by_target = {}
        for s in summarizers:
            if s.state and s.state.is_completed():
                by_target.setdefault(str(s.parameters.get("flow_run_id")), []).append(s)
        for run_id in run_ids:
            failed = await client.read_flow_run(run_id)
            arts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])))
            arts = [a for a in arts if (a.key or "").startswith("failure-summary-")]
            runs = [s for s in by_target.get(run_id, []) if s.start_time]
            if not arts or not runs:
                rows.append({"run": run_id, "missing": True})
                continue
            summarizer = min(runs, key=lambda s: s.start_time)
            tasks = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[summarizer.id])))
            dur: dict[str, float] = {}
            for t in tasks:
                name = t.name.rsplit("-", 1)[0]
                dur[name] = dur.get(name, 0.0) + (t.total_run_time.total_seconds() if t.total_run_time else 0.0)
            unknown = set(dur) - KNOWN_TASKS
            assert not unknown, f"the summarizer has tasks this benchmark does not know: {unknown}"
            end = failed.end_time
            rows.append({
                "run": run_id,
                "total": (arts[0].created - end).total_seconds(),
                "trigger": (summarizer.start_time - end).total_seconds(),
                "automation": (summarizer.created - end).total_seconds(),
                "start": (summarizer.start_time - summarizer.created).total_seconds(),
                "logs": dur.get(reading.follow_run_logs.name, 0.0),
                "read": dur.get(reading.read_failed_run.name, 0.0),
                "llm": dur.get(analysis.analyze_failure.name, 0.0),
                "deliver": sum(dur.get(t.name, 0.0) for t in (claims.claim_summary, delivery.store_summary,
                                                              delivery.publish_artifact, delivery.record_artifact)),
            })
    return rows


async def log_read_baseline(run_ids: list[str]) -> dict[str, float]:
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    from prefect_failure_insights.prefect_api.logs import _download_csv

    csv_t, page_t, lines = [], [], 0
    async with get_client() as client:
        for run_id in run_ids:
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                lines += await _download_csv(client, run_id, Path(tmp) / "logs.csv")
                csv_t.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            offset, paged = 0, 0
            while True:
                page = await client.read_logs(
                    log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[UUID(run_id)])),
                    limit=200, offset=offset)
                paged += len(page)
                if len(page) < 200:
                    break
                offset += 200
            page_t.append(time.perf_counter() - t0)
    return {"lines_per_run": lines / len(run_ids), "csv_median_s": statistics.median(csv_t),
            "paged_median_s": statistics.median(page_t)}


def measure(mode: str, server, home: Path, n: int, lines: int) -> tuple[list[dict], dict]:
    """Serve the summarizer in ``mode``, run ``n`` failures, collect their timings."""
    import os
    import signal

    env = {**os.environ, **server.env(), "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
    command = ([sys.executable, "-m", "prefect_failure_insights.cli", "serve", "--poll-seconds", "1"]
               if mode == "in-process" else [sys.executable, str(HERE / "runner_serve.py")])
    log_path = home / f"serve-{mode}.log"
    with open(log_path, "wb") as log:
        serve = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while b"Serving summaries" not in log_path.read_bytes():
            if time.monotonic() > deadline or serve.poll() is not None:
                raise RuntimeError(log_path.read_text())
            time.sleep(0.2)
        time.sleep(2)  # let the poll loop settle
        print(f"[{mode}] running {n} failures of ~{lines} log lines, one every ~8 s ...", flush=True)
        out = subprocess.run([sys.executable, str(HERE / "pipelines.py"), str(n), str(lines), "8"],
                             env=env, capture_output=True, text=True, timeout=120 + n * 30)
        run_ids = [ln.split()[1] for ln in out.stdout.splitlines() if ln.startswith("RUN ")]
        time.sleep(6)
        return asyncio.run(collect(run_ids)), asyncio.run(log_read_baseline(run_ids))
    finally:
        try:
            os.killpg(serve.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass  # it had already exited (its log was raised above)
        serve.wait(timeout=60)


def report(mode: str, rows: list[dict]) -> list[dict]:
    done = [r for r in rows if not r.get("missing")]
    print(f"\n[{mode}] {len(done)}/{len(rows)} failures got an artifact.")
    print(f"{'stage':<10} {'median s':>9} {'p95 s':>8} {'max s':>8}")
    for k in ["total", "trigger", "automation", "start", "logs", "read", "llm", "deliver"]:
        vals = [r[k] for r in done]
        print(f"{k:<10} {statistics.median(vals):>9.2f} {pct(vals, 0.95):>8.2f} {max(vals):>8.2f}")
    return done


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 12
    lines = int(sys.argv[2]) if len(sys.argv) > 2 else 1000

    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings
    from prefect_failure_insights.blocks import LLMCredentials

    from prefect_failure_insights.testing.fake_llm import FakeLLM
    from prefect_failure_insights.testing.prefect_server import PrefectServer

    results = {}
    with tempfile.TemporaryDirectory(prefix="fi-bench-") as tmp:
        home = Path(tmp)
        with PrefectServer(home / "prefect") as server, FakeLLM() as llm, temporary_settings(
            updates={PREFECT_API_URL: server.api_url, PREFECT_HOME: str(server.home)}
        ):
            LLMCredentials(base_url=llm.url, model="instant", max_retries=0).save("default")
            for mode in ("in-process", "runner"):
                results[mode] = measure(mode, server, home, n, lines)

    ok = True
    for mode, (rows, _) in results.items():
        ok &= len(report(mode, rows)) == len(rows)
    baseline = results["in-process"][1]
    print(f"\nReading {baseline['lines_per_run']:.0f} log lines per run:")
    print(f"  CSV download endpoint (used): median {baseline['csv_median_s'] * 1000:.0f} ms")
    print(f"  /logs/filter, 200 per page:   median {baseline['paged_median_s'] * 1000:.0f} ms")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
