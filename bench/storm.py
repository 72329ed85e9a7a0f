"""Benchmark: a storm of failures on Prefect's own engine, summarized by replicas or by workers.

N failed runs (default 500) across 50 flows, a third of them the same failure as another
(same flow, task, exception and message: one LLM answer serves both), seeded through the API
as fast as the server takes them. The summary store is a PostgreSQL schema shared by every
summarizer; the test LLM answers each call after ``--llm-seconds`` (0.5 s), so calls overlap.

Cases, in the same run:

  sqlite-replicas  a SQLite-backed Prefect server (the default install), two `failure-insights serve`
                   replicas: the baseline
  pg-replicas      a PostgreSQL-backed Prefect server (its documented production setup), two replicas
  pg-workers       the PostgreSQL-backed server, `prefect deploy --all` from prefect.yaml to a process
                   work pool, `failure-insights automation install`, two `prefect worker start`
                   processes (``--worker-limit`` flow runs each at once: a new Python process per summary)

Checked per case: exactly one final summary and one card per failure, one LLM call per distinct
failure across all summarizers, the LLM calls at once never above the limit
(``max_concurrent_llm_calls``, default 4). Measured: the seeding time, the drain time (first
failure seeded -> last summary final) and each failure's end -> final summary (p50, p95), as
seen by polling the store every second.

Usage: python bench/storm.py [--failures 500] [--flows 50] [--cases sqlite-replicas,pg-replicas,pg-workers]
                             [--llm-seconds 0.5] [--worker-limit 3]
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

from failure_to_artifact import pct  # bench/, the script's own directory
from sqlalchemy import create_engine, select, text

ROOT = Path(__file__).resolve().parents[1]
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
STORE_BLOCK = "storm-store"


def _arg(name: str, default: str) -> str:
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


def storm_specs(failures: int, flows: int) -> tuple[list[tuple[str, int, str | None]], int]:
    """``failures`` seeds, ``(scenario, i, flow)`` each, and how many distinct failures they hold:
    every third repeats the one before it; the others differ by flow or failed task."""
    from prefect_failure_insights.testing.seed import SCENARIOS

    bases = [name for name, s in SCENARIOS.items() if s.task]  # a failed task names the failure
    specs: list[tuple[str, int, str | None]] = []
    distinct = 0
    for k in range(failures):
        if k % 3 == 2:
            specs.append(specs[-1])
            continue
        base = SCENARIOS[bases[distinct % len(bases)]]
        name = f"storm-{distinct}"
        # The same flow, another task: another failure to the fingerprint (the flow's 50 deployments stay).
        SCENARIOS[name] = replace(base, task=f"{base.task}_{distinct // (len(bases) * flows)}")
        specs.append((name, distinct, f"storm-flow-{distinct % flows:02d}"))
        distinct += 1
    return specs, distinct


@dataclass
class Case:
    name: str
    home: Path
    processes: list[subprocess.Popen] = field(default_factory=list)
    database: str | None = None
    schema: str = field(default_factory=lambda: f"fi_storm_{uuid.uuid4().hex[:8]}")

    def start(self, command: list[str], log: str, env: dict[str, str], cwd: Path | None = None) -> None:
        with open(self.home / log, "ab") as out:
            self.processes.append(subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                                   start_new_session=True))

    def stop(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.processes:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def wait(predicate, timeout_s: float, what: str, interval_s: float = 0.5):  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise TimeoutError(f"{what}: not within {timeout_s:.0f}s")


async def save_blocks(fake_url: str, schema: str) -> None:
    from prefect_sqlalchemy import ConnectionComponents, SqlAlchemyConnector

    from prefect_failure_insights.blocks import FailureInsightsSettings, LLMCredentials

    await LLMCredentials(base_url=fake_url, model="fake-model", timeout=120, max_retries=0).save(
        "default", overwrite=True)
    await SqlAlchemyConnector(connection_info=ConnectionComponents(
        driver="postgresql+psycopg", username="postgres", host="127.0.0.1", port=5432, database="test",
        query={"options": f"-csearch_path={schema}"})).save(STORE_BLOCK, overwrite=True)
    await FailureInsightsSettings(database_block_name=STORE_BLOCK).save("default", overwrite=True)


async def seed(specs: list) -> list[str]:
    from prefect.client.orchestration import get_client

    from prefect_failure_insights.testing.seed import seed_failures

    async with get_client() as client:
        return await seed_failures(client, specs, concurrency=4)


async def cards(run_ids: list[str]) -> dict[str, int]:
    """How many failure-summary cards each run has."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    counts = dict.fromkeys(run_ids, 0)
    async with get_client() as client:
        for at in range(0, len(run_ids), 50):
            chunk = run_ids[at:at + 50]
            offset = 0
            while True:
                found = await client.read_artifacts(artifact_filter=ArtifactFilter(
                    flow_run_id=ArtifactFilterFlowRunId(any_=chunk)), limit=200, offset=offset)
                for artifact in found:
                    if (artifact.key or "").startswith("failure-summary-"):
                        counts[str(artifact.flow_run_id)] += 1
                if len(found) < 200:
                    break
                offset += 200
    return counts


def run_case(kind: str, specs: list, distinct: int, fake, llm_seconds: float, worker_limit: int) -> dict:  # noqa: ANN001
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

    from prefect_failure_insights.defaults import MAX_CONCURRENT_LLM_CALLS
    from prefect_failure_insights.store.tables import summaries
    from prefect_failure_insights.testing.prefect_server import PrefectServer

    case = Case(kind, Path(tempfile.mkdtemp(prefix=f"storm-{kind}-")))
    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    database_url = None
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{case.schema}"'))
        if kind.startswith("pg"):
            case.database = f"fi_storm_{uuid.uuid4().hex[:8]}"
            conn.execute(text(f'CREATE DATABASE "{case.database}"'))
            database_url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{case.database}"
    server = PrefectServer(case.home, database_url=database_url).start()
    store = create_engine(f"{POSTGRES}?options=-csearch_path%3D{case.schema}")
    env = {**os.environ, **server.env(), "PREFECT_CLI_PROMPT": "false", "PREFECT_WORKER_QUERY_SECONDS": "1"}
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url, PREFECT_HOME: str(server.home)}):
            asyncio.run(save_blocks(fake.url, case.schema))
            cli = [sys.executable, "-m", "prefect_failure_insights.cli"]
            if kind.endswith("replicas"):
                for name in ("a", "b"):
                    case.start([*cli, "serve", "--poll-seconds", "1", "--no-batch"], f"serve-{name}.log", env)
                    wait(lambda n=name: "Serving summaries" in (case.home / f"serve-{n}.log").read_text(
                        errors="replace"), 120, f"replica {name} to start")
            else:
                shutil.copy(ROOT / "prefect.yaml", case.home / "prefect.yaml")
                prefect = [sys.executable, "-m", "prefect"]
                for command in ([*prefect, "work-pool", "create", "failure-insights", "--type", "process"],
                                [*prefect, "--no-prompt", "deploy", "--all"], [*cli, "automation", "install"]):
                    done = subprocess.run(command, env=env, cwd=case.home, capture_output=True, text=True,
                                          timeout=300)
                    if done.returncode:
                        raise RuntimeError(f"{' '.join(command[2:])} failed: {done.stdout}{done.stderr}")
                for name in ("w1", "w2"):
                    case.start([*prefect, "worker", "start", "--pool", "failure-insights", "--name", name,
                                "--limit", str(worker_limit)], f"worker-{name}.log", env, cwd=case.home)
            fake.reset("slow")
            fake.slow_seconds = llm_seconds
            started = time.time()
            run_ids = asyncio.run(seed(specs))
            seeded_s = time.time() - started

            seen: dict[str, float] = {}  # run -> when its summary was first seen final

            def final() -> list | None:
                with store.connect() as conn:
                    rows = conn.execute(select(summaries.c.flow_run_id, summaries.c.failed_at, summaries.c.status,
                                               summaries.c.artifact_id)
                                        .where(summaries.c.flow_run_id.in_(run_ids))).all()
                for r in rows:
                    if r.status not in ("pending", "provisional") and r.artifact_id:
                        seen.setdefault(r.flow_run_id, time.time())
                return rows if len(seen) == len(run_ids) else None

            rows = wait(final, 3600, f"{kind}: every summary final", interval_s=1)
            time.sleep(5)  # a late second card or LLM call would show now
            per_run = asyncio.run(cards(run_ids))
            drain_s = max(seen.values()) - started
            lag = [seen[r.flow_run_id] - r.failed_at.timestamp() for r in rows if r.failed_at]
            return {
                "case": kind, "failures": len(run_ids), "distinct": distinct, "summaries": len(rows),
                "statuses": sorted({r.status for r in rows}),
                "one_card_each": all(n == 1 for n in per_run.values()),
                "cards": sum(per_run.values()), "llm_calls": len(fake.completions()),
                "max_at_once": fake.max_in_flight, "limit": MAX_CONCURRENT_LLM_CALLS,
                "seed_s": seeded_s, "drain_s": drain_s, "p50_s": pct(lag, 0.5), "p95_s": pct(lag, 0.95),
            }
    finally:
        case.stop()
        store.dispose()
        server.stop()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{case.schema}" CASCADE'))
            if case.database:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{case.database}" WITH (FORCE)'))
        admin.dispose()
        shutil.rmtree(case.home, ignore_errors=True)


def main() -> None:
    from prefect_failure_insights.testing.fake_llm import FakeLLM

    failures, flows = int(_arg("--failures", "500")), int(_arg("--flows", "50"))
    kinds = _arg("--cases", "sqlite-replicas,pg-replicas,pg-workers").split(",")
    llm_seconds, worker_limit = float(_arg("--llm-seconds", "0.5")), int(_arg("--worker-limit", "3"))
    specs, distinct = storm_specs(failures, flows)
    print(f"Storm: {failures} failures across {flows} flows, {distinct} distinct; LLM answers in {llm_seconds} s; "
          f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    results = []
    with FakeLLM() as fake:
        for kind in kinds:
            result = run_case(kind, specs, distinct, fake, llm_seconds, worker_limit)
            print(result, flush=True)
            results.append(result)
    header = (f"{'case':<16} {'failures':>8} {'summaries':>9} {'cards':>6} {'LLM calls':>9} {'distinct':>8} "
              f"{'at once':>7} {'seed s':>7} {'drain s':>7} {'p50 s':>6} {'p95 s':>6}")
    print(header)
    for r in results:
        print(f"{r['case']:<16} {r['failures']:>8} {r['summaries']:>9} {r['cards']:>6} {r['llm_calls']:>9} "
              f"{r['distinct']:>8} {r['max_at_once']:>3}/{r['limit']:<3} {r['seed_s']:>7.1f} {r['drain_s']:>7.1f} "
              f"{r['p50_s']:>6.1f} {r['p95_s']:>6.1f}")
    ok = all(r["summaries"] == r["failures"] and r["one_card_each"] and r["llm_calls"] == r["distinct"]
             and r["max_at_once"] <= r["limit"] for r in results)
    print("every case: one summary and one card per failure, one LLM call per distinct failure, "
          f"the limit held: {'yes' if ok else 'NO'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
