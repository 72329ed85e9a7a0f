"""Benchmark: every failure gets its summary, whatever dies.

Each scenario runs on a fresh `prefect server start` (SQLite) with `failure-insights serve`
and a local test LLM, with failures seeded through the API (real failed runs: the
automation fires for each, as for any other failure):

* storm: 40 different and 40 identical failures at once, with an instant LLM; also the
  time from evidence to answer (the analysis task), against a baseline in the same run:
  the same storm served with the global concurrency limit alone (the previous release's
  slot handling, `bench/global_only_serve.py`), where summaries poll the server for slots;
* kill: 10 failures with a slow LLM, `serve` SIGKILLed while they are being summarized,
  then restarted (with an instant LLM);
* database: 10 failures, the database (PostgreSQL: the role loses its login) lost while
  they are being summarized, then back (skipped when PostgreSQL is not reachable);
* server: 10 failures, the Prefect server restarted while they are being summarized.

Reported per scenario: summaries delivered / failures, duplicates (a run with more than one
summary artifact or row), LLM calls, and the time to drain (from the fault, or the last
failure, to the last summary). Usage: python bench/faults.py [storm|kill|database|server ...] [--n N]
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from uuid import uuid4

HERE = Path(__file__).parent
POSTGRES_URL = os.environ.get("FI_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


class System:
    """A server, a test LLM and a `serve` process, for one scenario."""

    def __init__(self, home: Path, fake, serve_command: list[str] | None = None) -> None:
        from prefect_failure_insights.testing.prefect_server import PrefectServer

        self.home = home
        self.fake = fake
        self.server = PrefectServer(home / "prefect").start()
        self.env = {**os.environ, **self.server.env()}
        self.serve_command = serve_command or [sys.executable, "-m", "prefect_failure_insights.cli", "serve",
                                               "--poll-seconds", "1", "--no-batch"]
        self.serve: subprocess.Popen | None = None
        self.log = home / "serve.log"
        self.call(self._blocks)

    async def _blocks(self, _client) -> None:
        from prefect_failure_insights.blocks import LLMCredentials

        await LLMCredentials(base_url=self.fake.url, model="instant", timeout=60, max_retries=0).save(
            "default", overwrite=True)

    def call(self, fn, *args):
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

        async def go():
            async with get_client() as client:
                return await fn(client, *args)

        with temporary_settings(updates={PREFECT_API_URL: self.server.api_url, PREFECT_HOME: str(self.server.home)}):
            return asyncio.run(go())

    def start_serve(self) -> None:
        before = self.log.read_bytes().count(b"Serving summaries") if self.log.exists() else 0
        with open(self.log, "ab") as log:
            self.serve = subprocess.Popen(self.serve_command, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True)
        deadline = time.monotonic() + 90
        while self.log.read_bytes().count(b"Serving summaries") <= before:
            if time.monotonic() > deadline or self.serve.poll() is not None:
                raise RuntimeError(self.log.read_text(errors="replace")[-3000:])
            time.sleep(0.2)

    def kill_serve(self, sig: int = signal.SIGKILL) -> None:
        if self.serve is not None and self.serve.poll() is None:
            os.killpg(self.serve.pid, sig)
            self.serve.wait(timeout=60)

    def seed(self, flows: list[str]) -> list[str]:
        from prefect_failure_insights.testing.seed import seed_failures

        return self.call(lambda client: seed_failures(client, [("vendor-503", i, flow) for i, flow in enumerate(flows)],
                                                      concurrency=4))

    def outcome(self, run_ids: list[str]) -> dict:
        """Per failed run: its summary artifacts and its summarizer runs."""
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowFilter, FlowFilterName

        from prefect_failure_insights.prefect_api.paging import read_all

        async def go(client):
            artifacts = await read_all(lambda offset, size: client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(like_="failure-summary-")),
                limit=size, offset=offset))
            summarizers = await read_all(lambda offset, size: client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=["summarize-failure"])), limit=size, offset=offset))
            return artifacts, summarizers

        artifacts, summarizers = self.call(go)
        wanted = set(run_ids)
        by_run: dict[str, list] = {}
        for a in artifacts:
            if str(a.flow_run_id) in wanted:
                by_run.setdefault(str(a.flow_run_id), []).append(a)
        return {"artifacts": by_run, "summarizers": summarizers}

    def rows(self, run_ids: list[str]) -> dict[str, int]:
        from sqlalchemy import create_engine, text

        engine = create_engine(f"sqlite:///{self.server.home / 'failure_insights.db'}")
        try:
            with engine.connect() as conn:
                found = conn.execute(text("SELECT flow_run_id, count(*) FROM failure_summaries "
                                          "WHERE status NOT IN ('pending', 'provisional') GROUP BY flow_run_id")).all()
        except Exception:  # noqa: BLE001 - no table yet
            return {}
        finally:
            engine.dispose()
        return {r[0]: r[1] for r in found if r[0] in set(run_ids)}

    def wait_delivered(self, run_ids: list[str], timeout_s: float, rows: bool = True) -> float | None:
        """Seconds until every failure has its artifact (and row); None on timeout."""
        start = time.monotonic()
        while time.monotonic() - start < timeout_s:
            got = self.outcome(run_ids)["artifacts"]
            if len(got) == len(run_ids) and (not rows or len(self.rows(run_ids)) == len(run_ids)):
                return time.monotonic() - start
            time.sleep(1)
        return None

    def burst(self, prefix: str, n: int, slow_seconds: float) -> list[str]:
        """Serve with a slow LLM, make ``n`` failures, and return once all are being summarized."""
        self.fake.reset("slow")
        self.fake.slow_seconds = slow_seconds
        self.start_serve()
        run_ids = self.seed([f"{prefix}-{i}" for i in range(n)])
        deadline = time.monotonic() + 120
        while self.running() < n and time.monotonic() < deadline:
            time.sleep(0.5)
        return run_ids

    def running(self) -> int:
        return sum(1 for r in self.outcome([])["summarizers"] if r.state and r.state.type.value == "RUNNING")

    def close(self) -> None:
        self.kill_serve(signal.SIGTERM)
        self.server.stop()


def report(name: str, system: System, run_ids: list[str], drain: float | None, calls: int,
           extra: str = "") -> bool:
    out = system.outcome(run_ids)
    rows = system.rows(run_ids)
    delivered = sum(1 for r in run_ids if out["artifacts"].get(r) and rows.get(r))
    duplicates = sum(1 for r in run_ids if len(out["artifacts"].get(r, [])) > 1 or rows.get(r, 0) > 1)
    drained = f"{drain:.0f} s" if drain is not None else "did not drain"
    print(f"{name:<40} {delivered:>3}/{len(run_ids):<3} delivered  {duplicates} duplicates  {calls:>3} LLM calls  "
          f"drain {drained}{extra}", flush=True)
    return delivered == len(run_ids) and duplicates == 0


def analysis_seconds(system: System, run_ids: list[str]) -> list[float]:
    """How long each summary's analysis task took (evidence in, answer out: the slot wait included)."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from prefect_failure_insights.prefect_api.paging import read_all

    summarizers = [s for s in system.outcome(run_ids)["summarizers"]
                   if s.state and s.state.is_completed() and str(s.parameters.get("flow_run_id")) in set(run_ids)]

    async def go(client):
        out = []
        for at in range(0, len(summarizers), 10):
            ids = [s.id for s in summarizers[at:at + 10]]
            tasks = await read_all(lambda offset, size, ids=ids: client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)), limit=size, offset=offset))
            out += [t.total_run_time.total_seconds() for t in tasks
                    if t.name.startswith("analyze-failure") and t.total_run_time]
        return out

    return system.call(go)


def storm(home: Path, fake, n: int, serve_command: list[str] | None = None, label: str = "storm") -> bool:
    system = System(home / label, fake, serve_command)
    try:
        fake.reset()
        system.start_serve()
        flows = [f"storm-{i}" for i in range(n)] + ["storm-same"] * n
        run_ids = system.seed(flows)
        drain = system.wait_delivered(run_ids, 240 + 4 * n)
        waits = analysis_seconds(system, run_ids)
        median = f", evidence -> answer median {statistics.median(waits):.2f} s, max {max(waits):.2f} s" \
            if waits else ""
        return report(f"{label} ({n} different + {n} identical)", system, run_ids, drain,
                      len(fake.completions()), median)
    finally:
        system.close()


def kill(home: Path, fake, n: int) -> bool:
    system = System(home / "kill", fake)
    try:
        run_ids = system.burst("kill", n, slow_seconds=30)
        system.kill_serve()
        fake.reset()
        system.start_serve()
        drain = system.wait_delivered(run_ids, 240)
        return report(f"kill (SIGKILL of serve, {n} mid-summary)", system, run_ids, drain, len(fake.completions()))
    finally:
        system.close()


def database(home: Path, fake, n: int) -> bool:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError

    admin = create_engine(POSTGRES_URL)
    try:
        with admin.connect():
            pass
    except OperationalError:
        print(f"{'database':<40} skipped: PostgreSQL at {POSTGRES_URL} is not reachable")
        return True
    role, schema = f"fi_bench_{uuid4().hex[:8]}", f"fi_bench_{uuid4().hex[:8]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
        conn.execute(text(f'CREATE SCHEMA "{schema}" AUTHORIZATION "{role}"'))

    def login(allowed: bool) -> None:
        with admin.begin() as conn:
            conn.execute(text(f'ALTER ROLE "{role}" {"LOGIN" if allowed else "NOLOGIN"}'))
            if not allowed:
                conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'"))

    system = System(home / "database", fake)
    try:
        async def blocks(_client):
            from prefect_sqlalchemy import ConnectionComponents, SqlAlchemyConnector

            from prefect_failure_insights.blocks import FailureInsightsSettings

            url = make_url(POSTGRES_URL)
            await SqlAlchemyConnector(connection_info=ConnectionComponents(
                driver=url.drivername, username=role, host=url.host, port=url.port, database=url.database,
                query={"options": f"-csearch_path={schema}"})).save("bench-db", overwrite=True)
            await FailureInsightsSettings(database_block_name="bench-db").save("default", overwrite=True)

        system.call(blocks)
        run_ids = system.burst("db", n, slow_seconds=8)
        login(False)
        time.sleep(15)  # the database stays away while the answers arrive
        login(True)
        fake.reset()
        start = time.monotonic()
        while time.monotonic() - start < 300:
            with admin.connect() as conn:
                try:
                    done = conn.execute(text(f'SELECT count(*) FROM "{schema}".failure_summaries '
                                             "WHERE status NOT IN ('pending', 'provisional')")).scalar()
                except Exception:  # noqa: BLE001
                    done = 0
            if done >= n:
                break
            time.sleep(1)
        drain = time.monotonic() - start if done >= n else None
        out = system.outcome(run_ids)
        with admin.connect() as conn:
            counts = dict(conn.execute(text(f'SELECT flow_run_id, count(*) FROM "{schema}".failure_summaries '
                                            "WHERE status NOT IN ('pending', 'provisional') GROUP BY flow_run_id")).all())
        delivered = sum(1 for r in run_ids if out["artifacts"].get(r) and counts.get(r))
        duplicates = sum(1 for r in run_ids if len(out["artifacts"].get(r, [])) > 1 or counts.get(r, 0) > 1)
        drained = f"{drain:.0f} s" if drain is not None else "did not drain"
        print(f"{f'database (lost for 15 s, {n} mid-summary)':<40} {delivered:>3}/{n:<3} delivered  "
              f"{duplicates} duplicates  {len(fake.completions()):>3} LLM calls  drain {drained} (from its return)")
        return delivered == n and duplicates == 0
    finally:
        system.close()
        with admin.begin() as conn:
            conn.execute(text(f'ALTER ROLE "{role}" LOGIN'))
            conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'"))
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            conn.execute(text(f'DROP ROLE "{role}"'))
        admin.dispose()


def server(home: Path, fake, n: int) -> bool:
    system = System(home / "server", fake)
    try:
        run_ids = system.burst("restart", n, slow_seconds=8)
        system.server.stop()
        time.sleep(5)
        system.server.start()
        fake.reset()
        drain = system.wait_delivered(run_ids, 300)
        return report(f"server (restarted, {n} mid-summary)", system, run_ids, drain, len(fake.completions()))
    finally:
        system.close()


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(sys.argv[sys.argv.index("--n") + 1]) if "--n" in sys.argv else None
    if n is not None:
        args = [a for a in args if a != str(n)]
    chosen = args or ["storm", "kill", "database", "server"]

    from prefect_failure_insights.testing.fake_llm import FakeLLM

    ok = True
    with tempfile.TemporaryDirectory(prefix="fi-faults-") as tmp, FakeLLM(model="instant") as fake:
        home = Path(tmp)
        for name in chosen:
            if name == "storm":
                ok &= storm(home, fake, n or 40)
                storm(home, fake, n or 40, [sys.executable, str(HERE / "global_only_serve.py")],
                      "baseline: global limit only")  # a reference, not a pass/fail
            else:
                ok &= {"kill": kill, "database": database, "server": server}[name](home, fake, n or 10)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
