"""Scale-out on Prefect's own engine: a PostgreSQL-backed Prefect server (its documented production
setup), two `failure-insights serve` replicas sharing it and a PostgreSQL summary store.

Failures of three kinds, three each (identical failures of a kind share one LLM answer): every
failure gets exactly one summary and one card, the LLM is asked once per distinct failure across
both replicas; then one replica is killed while summaries are in flight, and the other summarizes
every failure all the same. Last, the replicas gone, the documented worker path: `prefect deploy
--all` from prefect.yaml to a process work pool, `failure-insights automation install`, and two
`prefect worker start` processes that execute the summaries.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL, PREFECT_HOME, PREFECT_UI_URL, temporary_settings
from sqlalchemy import create_engine, text

from prefect_failure_insights.blocks import FailureInsightsSettings, LLMCredentials
from prefect_failure_insights.store.migrations import ensure_schema
from prefect_failure_insights.store.summaries import get_summary
from prefect_failure_insights.testing.fake_llm import FakeLLM
from prefect_failure_insights.testing.prefect_server import PrefectServer

from .conftest import E2E, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

KINDS = ["vendor", "carrier", "subflow"]


class Replicas(E2E):
    """A PostgreSQL-backed server and the `serve` replicas the test starts and kills."""

    replicas: dict[str, subprocess.Popen]
    store_engine = None

    def start(self, name: str, *options: str) -> None:
        log = self.server.home / f"serve-{name}.log"
        with open(log, "ab") as out:
            self.replicas[name] = subprocess.Popen(
                [sys.executable, "-m", "prefect_failure_insights.cli", "serve", "--poll-seconds", "1", "--no-batch",
                 *options], env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: self.replicas[name].poll() is not None
                 or "Serving summaries" in log.read_text(errors="replace"), 90)
        assert self.replicas[name].poll() is None, log.read_text()

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.replicas.pop(name, None)
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=30)

    def final(self, run_ids: list[str]) -> dict | None:
        found = {r: get_summary(self.store_engine, r) for r in run_ids}
        return found if all(s is not None and s.status not in ("pending", "provisional") and s.delivery.artifact_id
                            for s in found.values()) else None

    def wait_final(self, run_ids: list[str], timeout_s: float) -> dict:
        """Every run's final summary; on timeout, a failure that says where each one stands and
        what the replicas and the server logged (CI keeps nothing else)."""
        try:
            return wait_for(lambda: self.final(run_ids), timeout_s)
        except pytest.fail.Exception:
            found = {r: get_summary(self.store_engine, r) for r in run_ids}
            where = {r: (s.status, bool(s.delivery.artifact_id)) if s else None for r, s in found.items()}
            logs = "\n".join(f"--- {path.name} (last 60 lines)\n" + "\n".join(
                path.read_text(errors="replace").splitlines()[-60:])
                for path in sorted(self.server.home.glob("*.log")))
            pytest.fail(f"not every summary final within {timeout_s:.0f}s: {where}\n{logs}")


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory, fake_llm_server: FakeLLM):
    from prefect_sqlalchemy import ConnectionComponents, SqlAlchemyConnector

    from tests.conftest import POSTGRES_URL

    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"fi_prefect_{uuid.uuid4().hex[:8]}"
    schema = f"fi_store_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = admin.url
    server = PrefectServer(tmp_path_factory.mktemp("scale-out-home"),
                           database_url=f"postgresql+asyncpg://{url.username}@{url.host}:{url.port}/{name}").start()
    system = Replicas(server, fake_llm_server, server.home / "serve.log")
    system.replicas = {}
    store = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    system.store_engine = create_engine(store)
    ensure_schema(system.store_engine)  # the tests read it before any summarizer has written to it
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url, PREFECT_UI_URL: server.ui_url,
                                         PREFECT_HOME: str(server.home)}):
            system.save_block(LLMCredentials(base_url=fake_llm_server.url, model="fake-model", timeout=60,
                                             max_retries=0), "default")
            system.save_block(SqlAlchemyConnector(connection_info=ConnectionComponents(
                driver=url.drivername, username=url.username, host=url.host, port=url.port, database=url.database,
                query={"options": f"-csearch_path={schema}"})), "scale-out-store")
            system.save_block(FailureInsightsSettings(database_block_name="scale-out-store"), "default")
            yield system
    finally:
        for replica in list(system.replicas):
            system.kill(replica)
        system.store_engine.dispose()
        server.stop()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.mark.timeout(900)
def test_two_replicas_give_one_summary_per_failure_and_one_llm_call_per_distinct_failure(replicas, fake_llm) -> None:
    replicas.start("a")
    replicas.start("b")
    asked = len(replicas.fake.completions())
    with ThreadPoolExecutor(3) as pool:
        failures = list(pool.map(replicas.run_pipeline, [k for k in KINDS for _ in range(3)]))
    found = replicas.wait_final(failures, 300)
    assert all(s.status == "llm" for s in found.values()), {r: s.status for r, s in found.items()}
    for run_id in failures:
        assert len(replicas.summary_artifacts(run_id)) == 1, run_id
    # One LLM call per distinct failure across both replicas: the rest reuse its answer.
    assert len(replicas.fake.completions()) - asked == len(KINDS)
    assert sum(s.recurrence.cache_hit for s in found.values()) == len(failures) - len(KINDS)


@pytest.mark.timeout(900)
def test_a_replica_killed_mid_storm_loses_nothing(replicas, fake_llm) -> None:
    for name in ("a", "b"):
        if name not in replicas.replicas:
            replicas.start(name)
    with replicas.store_engine.begin() as conn:  # asked afresh, not answered from the first test's cache
        conn.execute(text("DELETE FROM failure_fingerprints"))
    replicas.fake.default, replicas.fake.slow_seconds = "slow", 20  # answers in flight when "a" dies
    with ThreadPoolExecutor(3) as pool:
        failures = list(pool.map(replicas.run_pipeline, ["vendor", "carrier", "subflow", "vendor", "carrier",
                                                         "subflow"]))
    replicas.kill("a")
    replicas.fake.reset()
    # The survivor's reconciler replaces the dead replica's summarizers (their lease runs out in 30 s).
    found = replicas.wait_final(failures, 420)
    assert set(found) == set(failures)
    for run_id in failures:
        assert len(replicas.summary_artifacts(run_id)) == 1, run_id


@pytest.mark.timeout(900)
def test_process_workers_run_the_prefect_yaml_deployments_and_summarize_every_failure(replicas, fake_llm,
                                                                                        tmp_path) -> None:
    import shutil

    for name in list(replicas.replicas):
        replicas.kill(name, signal.SIGTERM)
    shutil.copy(Path(__file__).resolve().parents[2] / "prefect.yaml", tmp_path / "prefect.yaml")
    env = {**replicas.env, "PREFECT_CLI_PROMPT": "false", "PREFECT_WORKER_QUERY_SECONDS": "1"}
    prefect = [sys.executable, "-m", "prefect"]
    for command in (["work-pool", "create", "failure-insights", "--type", "process", "--overwrite"],
                    ["--no-prompt", "deploy", "--all"]):
        done = subprocess.run([*prefect, *command], env=env, cwd=tmp_path, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
    assert replicas.cli("automation", "install").returncode == 0
    workers = []
    try:
        for name in ("w1", "w2"):
            log = replicas.server.home / f"worker-{name}.log"
            with open(log, "ab") as out:
                workers.append(subprocess.Popen([*prefect, "worker", "start", "--pool", "failure-insights",
                                                 "--name", name], env=env, cwd=tmp_path, stdout=out,
                                                stderr=subprocess.STDOUT, start_new_session=True))
        with ThreadPoolExecutor(3) as pool:
            failures = list(pool.map(replicas.run_pipeline, KINDS))
        found = replicas.wait_final(failures, 300)
        assert all(s.status == "llm" for s in found.values()), {r: s.status for r, s in found.items()}
        for run_id in failures:
            assert len(replicas.summary_artifacts(run_id)) == 1, run_id
            # The row is final before its run is: the run still logs its record and reports Completed.
            (summarizer,) = wait_for(lambda: [r for r in replicas.summarizer_runs(run_id)
                                              if r.state and r.state.is_completed()], 120)
            # Executed by a worker of the pool, not by a `serve` replica.
            assert summarizer.work_pool_name == "failure-insights", summarizer
    finally:
        for worker in workers:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)


@pytest.mark.timeout(300)
def test_the_reconcile_pass_deletes_what_is_past_its_retention_and_nothing_else(replicas) -> None:
    """Retention end to end: `failure-insights summary reconcile` (what cron or the reconcile-summaries
    deployment runs) against the PostgreSQL-backed server and store, with the default 90 days."""
    import json
    from datetime import datetime, timedelta, timezone

    from sqlalchemy import func, select

    from prefect_failure_insights.store.tables import summaries
    from tests.store.test_retention import _summaries

    def count() -> int:
        with replicas.store_engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(summaries)).scalar()

    recent = count()
    assert recent >= len(KINDS)  # the summaries the tests before made, minutes ago
    old = _summaries(replicas.store_engine, 3, made=datetime.now(timezone.utc) - timedelta(days=400), first=900)
    done = replicas.cli("summary", "reconcile", "--hours", "1", "--format", "json", timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["deleted"]["failure_summaries"] == len(old)
    with replicas.store_engine.connect() as conn:
        left = set(conn.execute(select(summaries.c.flow_run_id)).scalars())
    assert not left & set(old) and count() == recent  # (a held row, a pattern in use: tests/store/test_retention.py)
