"""Every failure gets its summary, whatever dies: `serve` killed mid-summary, the database lost mid-run.

On a server of its own: these tests kill the summarizer's process, which the shared one
must survive, and run its reconciler with a look-back.
"""

from __future__ import annotations

import json

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from uuid import uuid4

import pytest
from prefect.settings import PREFECT_API_URL, PREFECT_HOME, PREFECT_UI_URL, temporary_settings

from prefect_failure_insights.blocks import FailureInsightsSettings, LLMCredentials
from prefect_failure_insights.store.summaries import get_summary
from prefect_failure_insights.testing.fake_llm import FakeLLM
from prefect_failure_insights.testing.prefect_server import PrefectServer

from .conftest import E2E, wait_for

pytestmark = pytest.mark.e2e


class Faults(E2E):
    """A system whose `serve` the test starts and kills."""

    serve: subprocess.Popen | None = None

    def start_serve(self, *options: str) -> None:
        self.kill_serve()  # one at a time: a failed test must not leave its process behind
        mark = self.serve_log.read_text(errors="replace").count("Serving summaries") if self.serve_log.exists() else 0
        with open(self.serve_log, "ab") as log:
            self.serve = subprocess.Popen(
                [sys.executable, "-m", "prefect_failure_insights.cli", "serve", "--poll-seconds", "1", "--no-batch",
                 *options],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: self.serve.poll() is not None
                 or self.serve_log.read_text(errors="replace").count("Serving summaries") > mark, 60)
        assert self.serve.poll() is None, self.serve_log.read_text()

    def kill_serve(self, sig: int = signal.SIGKILL) -> None:
        serve, self.serve = self.serve, None
        if serve is not None and serve.poll() is None:
            os.killpg(serve.pid, sig)
            try:
                serve.wait(timeout=30)  # a SIGTERM that does not stop it fails the test...
            finally:
                if serve.poll() is None:  # ...and leaves nothing running
                    os.killpg(serve.pid, signal.SIGKILL)

    def running_summarizers(self) -> list:
        return [r for r in self.summarizer_runs() if r.state and r.state.type.value == "RUNNING"]

    def set_crashed(self, run_id: str) -> None:
        from prefect.states import Crashed

        self.call(lambda client: client.set_flow_run_state(run_id, Crashed(message="lost by its worker"),
                                                           force=True))


@pytest.fixture(scope="module")
def faults_system(tmp_path_factory: pytest.TempPathFactory, fake_llm_server: FakeLLM):
    server = PrefectServer(tmp_path_factory.mktemp("faults-home")).start()
    system = Faults(server, fake_llm_server, server.home / "serve.log")
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url, PREFECT_UI_URL: server.ui_url,
                                         PREFECT_HOME: str(server.home)}):
            # An LLM call may outlast the slowest start of four summaries on a loaded machine.
            system.save_block(LLMCredentials(base_url=fake_llm_server.url, model="fake-model", timeout=115,
                                             max_retries=0), "default")
            yield system
    finally:
        system.kill_serve()
        server.stop()


@pytest.fixture
def faults(faults_system: Faults, fake_llm: FakeLLM) -> Faults:
    return faults_system


def test_serve_killed_mid_summary_then_restarted_summarizes_every_failure_once(faults: Faults) -> None:
    # Every summary is mid-LLM when serve dies: the fake answers only when reset, or after 110 s
    # (under the LLM deadline), however far apart the four summaries start.
    faults.fake.default, faults.fake.slow_seconds = "slow", 110
    faults.start_serve()
    with ThreadPoolExecutor(4) as pool:
        failures = list(pool.map(faults.run_pipeline, ["vendor", "vendor", "vendor", "subflow"]))
    wait_for(lambda: len(faults.running_summarizers()) >= len(failures), 100)
    engine = faults.sqlite_engine()
    # Killed between the two answers: every failure has its provisional card already.
    wait_for(lambda: all((s := get_summary(engine, run_id)) is not None and s.status == "provisional"
                         and s.delivery.artifact_id for run_id in failures), 60)
    provisional_cards = {run_id: get_summary(engine, run_id).delivery.artifact_id for run_id in failures}
    faults.kill_serve()
    # Those still Running when the process died (a second summarizer of the subflow's root may
    # have ended on its own just before: it found the root claimed).
    killed = {str(r.id) for r in faults.running_summarizers()}
    faults.fake.reset()
    faults.start_serve()
    for run_id in failures:  # a lease, a reconcile interval and the summaries themselves, with room
        faults.wait_for_row(engine, run_id, timeout_s=240)
    for run_id in failures:
        (card,) = faults.summary_artifacts(run_id)  # no duplicate: the provisional card, made final
        assert str(card.id) == provisional_cards[run_id] and "**Provisional**" not in card.data
        assert len(faults.rows(engine, run_id)) == 1
    dead = [r for r in faults.summarizer_runs() if str(r.id) in killed]
    assert dead and all(r.state.type.value == "CRASHED" and "Reconciled" in r.state.message for r in dead)
    assert faults.running_summarizers() == []
    faults.kill_serve(signal.SIGTERM)


@pytest.mark.postgres
def test_the_database_lost_mid_run_leaves_nothing_half_written(faults: Faults, postgres_schema) -> None:
    from prefect_sqlalchemy import ConnectionComponents, SqlAlchemyConnector
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from tests.conftest import POSTGRES_URL

    role = f"fi_lost_{uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
        conn.execute(text(f'GRANT ALL ON SCHEMA "{postgres_schema}" TO "{role}"'))
    url = make_url(POSTGRES_URL)
    connector = SqlAlchemyConnector(connection_info=ConnectionComponents(
        driver=url.drivername, username=role, host=url.host, port=url.port, database=url.database,
        query={"options": f"-csearch_path={postgres_schema}"}))
    faults.save_block(connector, "lost-db")
    # A summarizer that does not take over the dead one's claims at once would wait out the LLM
    # deadline (240 s) before asking: far beyond what the CLI takes when it does.
    faults.save_block(FailureInsightsSettings(database_block_name="lost-db", llm_deadline_seconds=240), "default")

    def pending_rows(run_id: str | None = None) -> int:
        which = f" AND flow_run_id = '{run_id}'" if run_id else ""
        with admin.connect() as conn:
            return conn.execute(text(f'SELECT count(*) FROM "{postgres_schema}".failure_summaries '
                                     f"WHERE status = 'pending'{which}")).scalar()

    def login(allowed: bool) -> None:
        with admin.begin() as conn:
            conn.execute(text(f'ALTER ROLE "{role}" {"LOGIN" if allowed else "NOLOGIN"}'))
            if not allowed:
                conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'"))

    faults.fake.default, faults.fake.slow_seconds = "slow", 6
    faults.start_serve("--reconcile-hours", "0")  # an earlier test's failures are not in this database
    try:
        # Not "vendor": an earlier test's vendor failures may still be summarized here, and an identical
        # failure waits for their answer instead of asking the LLM about this run.
        run_id = faults.run_pipeline("carrier")
        # The summarizer holds its row and waits on the (slow) LLM, asked about this run: the row is
        # pending, or already carries the provisional card (waiting for "pending" raced that). The
        # LLM slots a killed serve held in an earlier test come back only when their 60 s lease ends.
        wait_for(lambda: any(run_id in json.dumps(body) for body in faults.fake.completions()), 150)
        assert _table_exists(admin, postgres_schema)
        login(False)  # the database goes away while the LLM answers
        runs = faults.wait_for_summarizers_done(run_id, timeout_s=90)
        assert runs[0].state.type.value == "FAILED" and "not stored" in runs[0].state.message
        assert len(faults.summary_artifacts(run_id)) == 1  # the summary still reached the run's page
        login(True)
        faults.fake.reset()
        started = time.monotonic()
        again = faults.cli("summary", "create", run_id)
        assert again.returncode == 0, again.stderr
        assert time.monotonic() - started < 120  # at once: not after the lease, nor the 240 s wait
        assert pending_rows() == 0
        with admin.connect() as conn:
            assert conn.execute(text(f'SELECT count(*) FROM "{postgres_schema}".failure_summaries WHERE '
                                     f"flow_run_id = '{run_id}' AND status = 'llm'")).scalar() == 1
        assert len(faults.summary_artifacts(run_id)) == 1  # updated in place, not a second one
    finally:
        faults.kill_serve(signal.SIGTERM)
        faults.delete_block("failure-insights-settings", "default")
        connector.close()
        with admin.begin() as conn:
            conn.execute(text(f'ALTER ROLE "{role}" LOGIN'))
            conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'"))
            conn.execute(text(f'DROP OWNED BY "{role}" CASCADE'))
            conn.execute(text(f'DROP ROLE "{role}"'))
        admin.dispose()


def test_reconcile_command_summarizes_a_failure_whose_summarizer_was_lost(faults: Faults) -> None:
    """A worker setup: no `serve` reconciling; the summarizer run dies with its worker and
    `failure-insights summary reconcile` (or its scheduled deployment) starts a new one."""
    import json

    run_id = faults.run_pipeline("vendor")
    lost = wait_for(lambda: faults.summarizer_runs(run_id), 60)
    for run in lost:
        faults.set_crashed(str(run.id))
    dry = faults.cli("summary", "reconcile", "--hours", "1", "--dry-run", "--format", "json")
    assert dry.returncode == 0, dry.stderr
    assert run_id in json.loads(dry.stdout)["started"]
    assert len(faults.summarizer_runs(run_id)) == len(lost)  # a dry run changes nothing
    done = faults.cli("summary", "reconcile", "--hours", "1")
    assert done.returncode == 0, done.stderr
    assert "started" in done.stdout and "summarizer run" in done.stdout
    again = faults.cli("summary", "reconcile", "--hours", "1", "--format", "json")
    assert run_id not in json.loads(again.stdout)["started"]  # in progress now: not started twice
    started = [r for r in faults.summarizer_runs(run_id) if str(r.id) not in {str(x.id) for x in lost}]
    assert len(started) == 1 and "reconciled" in started[0].tags
    faults.start_serve("--reconcile-hours", "0")  # executes the run the command started
    try:
        summary = faults.wait_for_row(faults.sqlite_engine(), run_id, timeout_s=60)
        assert summary.status == "llm"
        assert len(faults.summary_artifacts(run_id)) == 1
    finally:
        faults.kill_serve(signal.SIGTERM)


def _table_exists(engine, schema: str) -> bool:
    from sqlalchemy import inspect

    return inspect(engine).has_table("failure_summaries", schema=schema)
