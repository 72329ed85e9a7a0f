"""Benchmark: batch insights over 50,000 failed runs in one window: time and peak memory, with and
without ``partition_by`` fanning out to workers (issue 28).

The Prefect server is a real `prefect server start` backed by PostgreSQL (a fresh database, dropped
after), Prefect's production setup, and the plugin's store is a schema of the same database. A
SQLite-backed server is not the baseline: it stores ~5 seeded failures a second (1,000 took 222 s, see
docs/benchmarks.md) and answers concurrent writes with "database is locked", so neither the window nor
a fan-out's concurrent children are practical on it.

The window (the hour before the benchmark started, to its seeding's end) holds N failed and crashed
runs (default 50,000) of `testing.seed.seed_failure`'s scenarios, across 40 flows, their deployments,
8 work pools (``--pools``) and the scenarios' team tags plus a region tag: each run a failed task run
(its state message, an ERROR log with a traceback) or a crash with no task. The first ``--api-runs``
(default 250) are made through the API, and timed: the API's rate is what decides how the rest are
made. The rest are copies of those API-made runs written straight into the server's tables (flow_run,
flow_run_state, task_run, task_run_state, log; the events of their state changes are not copied, the
batch does not read them), with new ids, their own numbers in names and messages, and end times
spread over the window; a sample of copies is read back through the batch's own reader
(`prefect_api.failures.extract_errors`) and must give the same errors as their originals up to ids
and numbers. Seeding is timed apart: it is not part of the figures.

Then, each case in a process of its own, the ``batch-insights`` flow over the whole window
(``max_runs`` = N: the default, 5,000, would read only the newest 5,000), without an LLM (the rules and
the learned model classify; ``--llm`` adds the in-process case with the local test LLM answering at
once, over a window one second longer: the same runs, another batch, not a re-run):

  empty window  the baseline: the same flow over a window with no runs (the process's own size)
  in-process    partition_by="none": one process reads, classifies, groups, reports and stores all
  work_pool     partition_by="work_pool": the coordinator starts one child run of the batch-insights
                deployment (prefect.yaml's, without its schedule) per work pool, at most 4 at once
                (the default ``max_parallel``), executed by 2 `prefect worker start` process workers,
                each child a process of its own

Per case: the flow's wall time, runs/s, the peak RSS of the process that ran the flow (getrusage,
RUSAGE_SELF) and of the largest worker-started child (VmHWM read from /proc every 0.2 s), the most
memory of all of them at one time (VmRSS summed over the same samples), and the rows the batch wrote
to the store (``batch_errors`` and ``batch_runs``).

Usage: python bench/batch_scale.py [--runs 50000] [--api-runs 250] [--pools 8] [--quick] [--llm]
                                   [--cases empty,in-process,work_pool] [--workers 2]
                                   [--postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FLOWS = 40
REGIONS = ("eu", "us", "ap")
STORE_SCHEMA = "fi_store"
STORE_BLOCK = "batch-scale-store"
#: A template's number in its names and messages: unique, so that a copy replaces exactly it.
TEMPLATE_NUMBER = 900_000
SAMPLE = 20


def _mb(kb: float) -> float:
    return kb / 1024


# -- seeding ----------------------------------------------------------------------------------

def _spec(at: int, pools: int) -> dict:
    """The ``at``-th API-made run: a scenario in one of `FLOWS` flows, one of ``pools`` work pools, a region."""
    from prefect_failure_insights.testing.seed import SCENARIOS

    names = sorted(SCENARIOS)
    name = names[at % len(names)]
    flow_no = at % FLOWS
    return {"name": name, "i": TEMPLATE_NUMBER + at, "flow": f"{SCENARIOS[name].flow}-{flow_no:02d}",
            "work_pool": f"pool-{flow_no % pools}", "extra_tags": (f"region-{REGIONS[at % len(REGIONS)]}",)}


async def seed_through_api(n: int, pools: int, concurrency: int = 4) -> list[str]:
    """``n`` runs made through the API (`seed_failure`), ``concurrency`` at once; their ids in order."""
    import anyio
    from prefect.client.orchestration import get_client

    from prefect_failure_insights.testing.seed import seed_failure

    specs = [_spec(at, pools) for at in range(n)]
    ids: list[str] = [""] * n
    cache: dict = {}
    gate = anyio.Semaphore(concurrency)
    async with get_client() as client:
        async def one(at: int) -> None:
            async with gate:
                ids[at] = await seed_failure(client, cache=cache, **specs[at])

        firsts: dict = {}
        for at, spec in enumerate(specs):  # each deployment (and work pool) is created once, first
            firsts.setdefault((spec["flow"], spec["work_pool"]), at)
        for at in firsts.values():
            await one(at)
        async with anyio.create_task_group() as group:
            for at in range(n):
                if not ids[at]:
                    group.start_soon(one, at)
    return ids


def _columns(conn, table: str) -> list[tuple[str, str]]:  # noqa: ANN001
    from sqlalchemy import text

    return [(r[0], r[1]) for r in conn.execute(text(
        "SELECT column_name, udt_name FROM information_schema.columns WHERE table_schema = 'public' "
        "AND table_name = :t ORDER BY ordinal_position"), {"t": table})]


def _copy(conn, table: str, join: str, changed: dict[str, str]) -> int:  # noqa: ANN001
    """INSERT INTO table SELECT each column of the originals, or its ``changed`` expression."""
    from sqlalchemy import text

    times = {"created", "updated", "expected_start_time", "next_scheduled_start_time", "start_time", "end_time",
             "state_timestamp", "timestamp"}
    cols = _columns(conn, table)
    exprs = [changed.get(c) or (f't."{c}" + m.shift' if c in times else f't."{c}"') for c, _ in cols]
    names = ", ".join(f'"{c}"' for c, _ in cols)
    return conn.execute(text(f'INSERT INTO "{table}" ({names}) SELECT {", ".join(exprs)} FROM "{table}" t {join}')
                        ).rowcount


def _new(col: str) -> str:
    """The copy's id of an original's id: the same for every reference to it within one copy."""
    return f"(md5({col}::text || ':' || m.j::text))::uuid"


def _renumbered(col: str) -> str:
    return f"replace({col}, m.num, m.j::text)"


def _json_ids(col: str, udt: str, *ids: str) -> str:
    """A JSON column with the original's ids (flow run, task run) replaced by the copy's."""
    expr = f"{col}::text"
    for i in ids:
        expr = f"replace({expr}, {i}::text, {_new(i)}::text)"
    return f"({expr})::{udt}"


def copy_runs(sync_url: str, templates: list[str], copies: int, start: datetime, end: datetime) -> dict[str, int]:
    """``copies`` runs copied from the API-made ``templates`` (round robin) straight into the server's
    tables, with end times spread evenly over [start, end); rows written per table."""
    from sqlalchemy import create_engine, text

    engine = create_engine(sync_url)
    step = (end - start).total_seconds() / max(copies, 1)
    written: dict[str, int] = {}
    with engine.begin() as conn:
        udt = {t: dict(_columns(conn, t)) for t in ("flow_run_state", "task_run", "task_run_state")}
        conn.execute(text(
            "CREATE TEMP TABLE copy_map ON COMMIT DROP AS "
            "SELECT c.j, o.id AS src, o.num, (:start + (c.j * :step) * interval '1 second') - f.end_time AS shift "
            "FROM generate_series(0, :copies - 1) AS c(j) "
            "JOIN unnest(CAST(:ids AS uuid[]), CAST(:nums AS text[])) WITH ORDINALITY AS o(id, num, k) "
            "  ON o.k - 1 = c.j % :n "
            "JOIN flow_run f ON f.id = o.id"),
            {"start": start, "step": step, "copies": copies, "n": len(templates), "ids": templates,
             "nums": [str(TEMPLATE_NUMBER + at) for at in range(len(templates))]})
        by_run = "JOIN copy_map m ON m.src = t.flow_run_id"
        # A run and its current state refer to each other: the state is set once both exist.
        written["flow_run"] = _copy(conn, "flow_run", "JOIN copy_map m ON m.src = t.id", {
            "id": _new("t.id"), "name": _renumbered("t.name"), "state_id": "NULL"})
        written["flow_run_state"] = _copy(conn, "flow_run_state", by_run, {
            "id": _new("t.id"), "flow_run_id": _new("t.flow_run_id"), "message": _renumbered("t.message"),
            "state_details": _json_ids("t.state_details", udt["flow_run_state"]["state_details"], "t.flow_run_id")})
        written["task_run"] = _copy(conn, "task_run", by_run, {
            "id": _new("t.id"), "flow_run_id": _new("t.flow_run_id"), "state_id": "NULL",
            "dynamic_key": _renumbered("t.dynamic_key"),
            "labels": _json_ids("t.labels", udt["task_run"]["labels"], "t.flow_run_id")})
        written["task_run_state"] = _copy(
            conn, "task_run_state", "JOIN task_run r ON r.id = t.task_run_id JOIN copy_map m ON m.src = r.flow_run_id", {
                "id": _new("t.id"), "task_run_id": _new("t.task_run_id"), "message": _renumbered("t.message"),
                "state_details": _json_ids("t.state_details", udt["task_run_state"]["state_details"],
                                           "r.flow_run_id", "t.task_run_id")})
        for table, join in (("flow_run", "JOIN copy_map m ON m.src = o.id"),
                            ("task_run", "JOIN copy_map m ON m.src = o.flow_run_id")):
            conn.execute(text(f"UPDATE {table} c SET state_id = {_new('o.state_id')} FROM {table} o {join} "
                              f"WHERE c.id = {_new('o.id')}"))
        written["log"] = _copy(conn, "log", by_run, {
            "id": _new("t.id"), "flow_run_id": _new("t.flow_run_id"), "task_run_id": _new("t.task_run_id"),
            "message": _renumbered("t.message")})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))  # as autovacuum would, in time, on a server that grew this way
    engine.dispose()
    return written


async def compare_copies(templates: list[str], copies: int, sample: int = SAMPLE) -> tuple[int, int, list[str]]:
    """Read ``sample`` originals and their first copies through the batch's reader; (same, compared, diffs)."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from prefect_failure_insights.prefect_api.failures import extract_errors

    pairs = [(templates[j], str(uuid.UUID(hex=_md5(f"{templates[j]}:{j}"))), j)
             for j in range(min(sample, len(templates), copies))]
    ids = [i for o, c, _ in pairs for i in (o, c)]
    async with get_client() as client:
        runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(i) for i in ids])),
                                           limit=len(ids))
        errors = await extract_errors(client, runs)
    by_run: dict[str, list[dict]] = {}
    for e in errors:
        by_run.setdefault(e.run.id, []).append(e.model_dump(mode="json"))
    same, diffs = 0, []
    for original, copy, j in pairs:
        num = str(TEMPLATE_NUMBER + j)
        want = [_comparable(json.loads(json.dumps(d).replace(num, str(j)))) for d in by_run.get(original, [])]
        got = [_comparable(d) for d in by_run.get(copy, [])]
        if want and want == got:
            same += 1
        else:
            diffs.append(f"{original} -> {copy}: {want} != {got}")
    return same, len(pairs), diffs


def _md5(text: str) -> str:
    import hashlib

    return hashlib.md5(text.encode()).hexdigest()


def _comparable(error: dict) -> dict:
    """An error without what a copy must change: ids and times."""
    run = {k: v for k, v in error["run"].items() if k not in ("id", "start_time", "end_time")}
    return {**{k: v for k, v in error.items() if k not in ("run", "error_id", "task_run_id")}, "run": run}


# -- measuring ----------------------------------------------------------------------------------

def measure_in_this_process(spec: dict) -> None:
    """The child side: run the flow once, print what it took as one JSON line."""
    from prefect_failure_insights.flows.batch_insights import batch_insights
    from prefect_failure_insights.reporting.batch import table

    started = time.perf_counter()
    result = asyncio.run(batch_insights(
        since=datetime.fromisoformat(spec["since"]), until=datetime.fromisoformat(spec["until"]),
        max_runs=spec["max_runs"], partition_by=spec["partition_by"], use_llm=spec["use_llm"]))
    wall = time.perf_counter() - started
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    m = result.metrics
    print("RESULT " + json.dumps({
        "wall_s": wall, "maxrss_kb": maxrss, "runs": m.runs_queried, "errors": len(result.rows), "capped": m.capped,
        "classified_by": m.classified_by, "unknown": m.unknown, "llm_calls": m.llm_calls,
        "partitions": m.partitions, "failed_partitions": m.failed_partitions, "report_chars": len(result.report),
        "table_mb": round(len(json.dumps(table(result.rows))) / 1e6, 1), "stages_s": asyncio.run(_stages())}),
        flush=True)


async def _stages() -> dict[str, float]:
    """Seconds per task of the newest top-level batch-insights run (this one), by task name; with a
    fan-out, its child runs' tasks added up under ``children: <task>``."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterParentFlowRunId,
        FlowRunFilterParentTaskRunId,
    )
    from prefect.client.schemas.sorting import FlowRunSort

    out: dict[str, float] = {}
    async with get_client() as client:
        (run,) = await client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["batch-insights"])),
            flow_run_filter=FlowRunFilter(parent_task_run_id=FlowRunFilterParentTaskRunId(is_null_=True)),
            sort=FlowRunSort.START_TIME_DESC, limit=1)
        children = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[run.id])), limit=200)
        placeholders = {c.parent_task_run_id for c in children}  # a child run's task run in its parent
        for prefix, ids in (("", [run.id]), ("children: ", [c.id for c in children])):
            if not ids:
                continue
            tasks = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)), limit=200)
            for t in tasks:
                if t.start_time and t.end_time and t.id not in placeholders:
                    name = prefix + t.name.rsplit("-", 1)[0]
                    out[name] = round(out.get(name, 0.0) + (t.end_time - t.start_time).total_seconds(), 1)
    return out


@dataclass
class Sampler:
    """Peak memory of a set of processes and their descendants, from /proc, every ``every`` s."""

    roots: list[int]
    every: float = 0.2
    hwm: dict[int, tuple[int, str]] = field(default_factory=dict)  # pid -> (VmHWM kB, command)
    most_at_once_kb: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> Sampler:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            parents: dict[int, int] = {}
            for entry in os.listdir("/proc"):
                if entry.isdigit():
                    try:
                        stat = Path(f"/proc/{entry}/stat").read_text()
                        parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
                    except (OSError, IndexError, ValueError):
                        continue
            mine = set(self.roots)
            grew = True
            while grew:
                found = {p for p, parent in parents.items() if parent in mine} - mine
                mine |= found
                grew = bool(found)
            total = 0
            for pid in mine:
                try:
                    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                                  if ":" in line)
                    command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
                except OSError:
                    continue
                hwm, rss = int(status.get("VmHWM", "0 kB").split()[0]), int(status.get("VmRSS", "0 kB").split()[0])
                total += rss
                if hwm > self.hwm.get(pid, (0, ""))[0]:
                    self.hwm[pid] = (hwm, command)
            self.most_at_once_kb = max(self.most_at_once_kb, total)


@dataclass
class Case:
    name: str
    runs: int
    wall_s: float
    parent_kb: int
    child_kb: int | None
    at_once_kb: int
    errors_written: int
    batches_written: int
    detail: dict


def store_rows(sync_url: str, since: datetime) -> tuple[int, int]:
    """Rows written to the store's batch tables since ``since``: (batch_errors, batch_runs)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(sync_url)
    with engine.connect() as conn:
        counts = tuple(conn.execute(text(f'SELECT count(*) FROM "{STORE_SCHEMA}".{t} WHERE {col} >= :s'),
                                    {"s": since}).scalar() for t, col in (("batch_errors", "created_at"),
                                                                          ("batch_runs", "updated_at")))
    engine.dispose()
    return counts  # type: ignore[return-value]


def run_case(name: str, spec: dict, env: dict, sync_url: str, workers: list[int], log: Path) -> Case:
    started = datetime.now(timezone.utc)
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, __file__, "--measure", json.dumps(spec)], env=env,
                                stdout=subprocess.PIPE, stderr=out, start_new_session=True)
        with Sampler([proc.pid, *workers]) as sampler:
            stdout, _ = proc.communicate(timeout=4 * 3600)
    lines = [ln for ln in stdout.decode().splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"case {name} failed ({proc.returncode}); see {log}:\n{log.read_text()[-3000:]}")
    got = json.loads(lines[-1].removeprefix("RESULT "))
    children = [kb for pid, (kb, _) in sampler.hwm.items() if pid not in (proc.pid, *workers)]
    errors, batches = store_rows(sync_url, started)
    return Case(name, got["runs"], got["wall_s"], got["maxrss_kb"], max(children) if children else None,
                sampler.most_at_once_kb, errors, batches, got)


# -- the fan-out's workers ---------------------------------------------------------------------

def deploy_batch(env: dict, cwd: Path) -> None:
    """prefect.yaml's batch-insights deployment (its daily schedule left out) in the process pool."""
    import yaml

    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    config["deployments"] = [{k: v for k, v in d.items() if k != "schedules"}
                             for d in config["deployments"] if d["name"] == "batch-insights"]
    (cwd / "prefect.yaml").write_text(yaml.safe_dump(config))
    pool = config["deployments"][0]["work_pool"]["name"]
    for command in (["work-pool", "create", pool, "--type", "process", "--overwrite"], ["--no-prompt", "deploy", "--all"]):
        done = subprocess.run([sys.executable, "-m", "prefect", *command], env=env, cwd=cwd, capture_output=True,
                              text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(done.stdout + done.stderr)


def start_workers(n: int, env: dict, cwd: Path, home: Path) -> list[subprocess.Popen]:
    workers = []
    for at in range(n):
        with open(home / f"worker-{at}.log", "ab") as out:
            workers.append(subprocess.Popen(
                [sys.executable, "-m", "prefect", "worker", "start", "--pool", "failure-insights", "--name", f"w{at}"],
                env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True))
    return workers


def stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


# -- the benchmark -------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50_000)
    parser.add_argument("--api-runs", type=int, default=250, help="Runs made through the API; the rest are copies.")
    parser.add_argument("--pools", type=int, default=8, help="Work pools the runs are spread over (partitions).")
    parser.add_argument("--quick", action="store_true", help="100 runs, 20 through the API, 2 work pools.")
    parser.add_argument("--llm", action="store_true", help="Also the in-process case with the local test LLM.")
    parser.add_argument("--cases", default="empty,in-process,work_pool")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure_in_this_process(json.loads(args.measure))
        return 0
    if args.quick:
        args.runs, args.api_runs, args.pools = 100, 20, 2
    api_runs = min(args.api_runs, args.runs)
    cases = args.cases.split(",") + (["in-process + test LLM"] if args.llm else [])

    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings
    from prefect_sqlalchemy import ConnectionComponents, SqlAlchemyConnector
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from prefect_failure_insights.blocks import FailureInsightsSettings, LLMCredentials
    from prefect_failure_insights.testing.fake_llm import FakeLLM
    from prefect_failure_insights.testing.prefect_server import PrefectServer

    admin_url = make_url(args.postgres_url)
    database = f"fi_batch_{uuid.uuid4().hex[:8]}"
    bench_url = admin_url.set(database=database)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{database}"'))
    workers: list[subprocess.Popen] = []
    results: list[Case] = []
    try:
        with tempfile.TemporaryDirectory(prefix="fi-batch-scale-") as tmp, FakeLLM() as llm:
            home = Path(tmp)
            server = PrefectServer(home / "prefect", database_url=bench_url.set(drivername="postgresql+asyncpg")
                                   .render_as_string(hide_password=False)).start()
            try:
                with temporary_settings(updates={PREFECT_API_URL: server.api_url, PREFECT_HOME: str(server.home)}):
                    store = create_engine(bench_url)
                    with store.begin() as conn:
                        conn.execute(text(f'CREATE SCHEMA "{STORE_SCHEMA}"'))
                    store.dispose()
                    SqlAlchemyConnector(connection_info=ConnectionComponents(
                        driver=bench_url.drivername, username=bench_url.username, host=bench_url.host,
                        port=bench_url.port, database=database, query={"options": f"-csearch_path={STORE_SCHEMA}"},
                    )).save(STORE_BLOCK, overwrite=True)
                    FailureInsightsSettings(database_block_name=STORE_BLOCK).save("default", overwrite=True)
                    LLMCredentials(base_url=llm.url, model="instant", max_retries=0).save("default", overwrite=True)

                    window_start = datetime.now(timezone.utc) - timedelta(hours=1)
                    seed_start = datetime.now(timezone.utc)
                    t0 = time.perf_counter()
                    templates = asyncio.run(seed_through_api(api_runs, args.pools))
                    api_s = time.perf_counter() - t0
                    print(f"Seeded {api_runs:,} runs through the API in {api_s:.1f} s ({api_runs / api_s:.1f} runs/s: "
                          f"{args.runs / (api_runs / api_s) / 60:.0f} min for {args.runs:,})", flush=True)
                    copies = args.runs - api_runs
                    if copies:
                        t0 = time.perf_counter()
                        written = copy_runs(bench_url.render_as_string(hide_password=False), templates, copies,
                                            window_start, seed_start)
                        print(f"Copied {copies:,} runs into the server's tables in {time.perf_counter() - t0:.1f} s "
                              f"({', '.join(f'{v:,} {k}' for k, v in written.items())})", flush=True)
                        same, compared, diffs = asyncio.run(compare_copies(templates, copies))
                        print(f"Copies read like their API-made originals: {same}/{compared} sample pairs give the "
                              f"same errors", flush=True)
                        if same != compared:
                            print("\n".join(diffs[:3]), file=sys.stderr)
                            return 1
                    window_end = datetime.now(timezone.utc) + timedelta(seconds=1)
                    print(f"Window: {window_start.isoformat()} to {window_end.isoformat()}, {args.runs:,} failed runs; "
                          f"load: {_load()}", flush=True)

                    env = {**os.environ, **server.env(), "PREFECT_WORKER_QUERY_SECONDS": "1",
                           "PREFECT_CLI_PROMPT": "false"}
                    sync_url = bench_url.render_as_string(hide_password=False)
                    spec = {"since": (window_start - timedelta(seconds=1)).isoformat(), "until": window_end.isoformat(),
                            "max_runs": max(args.runs, 1), "partition_by": "none", "use_llm": False}
                    for case in cases:
                        this = dict(spec)
                        if case == "empty":
                            this.update(since=(window_start - timedelta(days=2)).isoformat(),
                                        until=(window_start - timedelta(days=1)).isoformat())
                        elif case == "work_pool":
                            if not workers:
                                deploy_batch(env, home)
                                workers = start_workers(args.workers, env, home, server.home)
                            this.update(partition_by="work_pool")
                        elif case == "in-process + test LLM":
                            # The same runs; a window ending a second later is another batch (no rows of
                            # the first case to keep), so this is not a re-run.
                            this.update(use_llm=True, until=(window_end + timedelta(seconds=1)).isoformat())
                        print(f"Running case {case} ...", flush=True)
                        label = {"empty": "empty window"}.get(case, case)
                        results.append(run_case(label, this, env, sync_url, [w.pid for w in workers],
                                                server.home / f"case-{case.split()[0]}.log"))
                        done = results[-1]
                        print(f"  {done.wall_s:.1f} s; {json.dumps(done.detail)}", flush=True)
            finally:
                stop(workers)
                server.stop()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()

    print(f"\nBatch insights over one window of {args.runs:,} failed runs (PostgreSQL-backed Prefect server, "
          f"{os.cpu_count()} cores; load after: {_load()})")
    print(f"{'case':<22} {'runs':>7} {'wall s':>8} {'runs/s':>8} {'peak RSS MB':>12} {'largest child MB':>17} "
          f"{'all at once MB':>15} {'rows written':>13}")
    for r in results:
        child = f"{_mb(r.child_kb):.0f}" if r.child_kb else "-"
        rate = f"{r.runs / r.wall_s:,.0f}" if r.runs else "-"
        print(f"{r.name:<22} {r.runs:>7,} {r.wall_s:>8.1f} {rate:>8} {_mb(r.parent_kb):>12.0f} {child:>17} "
              f"{_mb(r.at_once_kb):>15.0f} {r.errors_written + r.batches_written:>13,}")
    print("\npeak RSS: the process that ran the flow (the coordinator with work_pool); largest child: the largest "
          "worker-started flow run process; all at once: the most memory of those processes (and the workers) "
          "at one time; rows written: batch_errors + batch_runs rows in the store.")
    bad = [r.name for r in results if r.detail.get("failed_partitions") or (r.name != "empty window" and r.runs != args.runs)]
    if bad:
        print(f"Cases that did not read every run: {bad}")
        return 1
    return 0


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
