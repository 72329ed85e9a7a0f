"""End-to-end fixtures: a real `prefect server start`, the served summarizer, the fake LLM.

The summarizer is started exactly as a user starts it (`failure-insights serve`), in
its own process; failing pipelines run in their own processes too. The test process
talks to the same server through the Prefect client.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_HOME,
    PREFECT_UI_URL,
    temporary_settings,
)
from prefect_failure_insights.blocks import LLMCredentials

from prefect_failure_insights.testing.fake_llm import FakeLLM
from prefect_failure_insights.testing.prefect_server import PrefectServer
from prefect_failure_insights.testing.seed import seed_failure

HERE = Path(__file__).parent
pytestmark = pytest.mark.e2e


def wait_for(predicate: Callable[[], Any], timeout_s: float = 60.0, interval_s: float = 0.25) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test on timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    pytest.fail(f"condition not met within {timeout_s:.0f}s")


class E2E:
    """Handles on the running system, for tests."""

    def __init__(self, server: PrefectServer, fake: FakeLLM, serve_log: Path) -> None:
        self.server = server
        self.fake = fake
        self.serve_log = serve_log
        self.env = {**os.environ, **server.env()}

    # -- processes -----------------------------------------------------------------
    def run_pipeline(self, scenario: str) -> str:
        out = subprocess.run(
            [sys.executable, str(HERE / "pipelines.py"), scenario],
            env=self.env, capture_output=True, text=True, timeout=120,
        )
        m = re.search(r"FLOW_RUN_ID=([0-9a-f-]{36})", out.stdout)
        assert m, out.stdout + out.stderr
        return m.group(1)

    def cli(self, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "prefect_failure_insights.cli", *args],
            env=env or self.env, capture_output=True, text=True, timeout=timeout,
        )

    # -- the API ---------------------------------------------------------------------
    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``await fn(client, ...)`` against the test server."""
        from prefect.client.orchestration import get_client

        async def go():
            async with get_client() as client:
                return await fn(client, *args, **kwargs)

        return asyncio.run(go())

    def summary_artifacts(self, run_id: str) -> list:
        from prefect.client.schemas.filters import (
            ArtifactFilter,
            ArtifactFilterFlowRunId,
        )

        async def read(client):
            found = await client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
            )
            return [a for a in found if (a.key or "").startswith("failure-summary-")]

        return self.call(read)

    def flow_run_logs(self, run_id: str) -> list:
        from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
        from prefect.client.schemas.sorting import LogSort

        async def read(client):
            return await client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])),
                                          sort=LogSort.TIMESTAMP_ASC, limit=200)

        return self.call(read)

    def summarizer_runs(self, target_id: str | None = None) -> list:
        from prefect.client.schemas.filters import FlowFilter, FlowFilterName

        async def read(client):
            runs = await client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=["summarize-failure"])), limit=200
            )
            return [r for r in runs if target_id is None or str(r.parameters.get("flow_run_id")) == target_id]

        return self.call(read)

    def wait_for_summarizers_done(self, target_id: str, count: int = 1, timeout_s: float = 60) -> list:
        def done():
            runs = self.summarizer_runs(target_id)
            if len(runs) >= count and all(r.state and r.state.is_final() for r in runs):
                return runs
            return None

        return wait_for(done, timeout_s)

    def subflow_of(self, run_id: str) -> str:
        from prefect.client.schemas.filters import (
            FlowRunFilter,
            FlowRunFilterParentFlowRunId,
        )

        async def read(client):
            return await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[run_id]))
            )

        children = self.call(read)
        assert len(children) == 1
        return str(children[0].id)

    def save_block(self, block, name: str) -> None:
        async def save(_client):
            await block.save(name, overwrite=True)

        self.call(save)

    def delete_block(self, slug: str, name: str) -> None:
        from prefect.exceptions import ObjectNotFound

        async def delete(client):
            try:
                doc = await client.read_block_document_by_name(name, slug)
            except ObjectNotFound:
                return
            await client.delete_block_document(doc.id)

        self.call(delete)

    def summary_events(self, run_id: str, prefix: str = "failure-insights.summary.") -> list[dict]:
        """The events named ``prefix...`` (the summary's by default) on ``run_id``'s summary, oldest
        first, as the API returns them."""
        import httpx
        from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

        wanted = EventFilter(event=EventNameFilter(prefix=[prefix]),
                             resource=EventResourceFilter(id=[f"failure-insights.summary.{run_id}"]))
        response = httpx.post(f"{self.server.api_url}/events/filter",
                              json={"filter": wanted.model_dump(mode="json"), "limit": 50}, timeout=30)
        response.raise_for_status()
        return sorted(response.json()["events"], key=lambda e: e["occurred"])

    def automation_actions(self, name: str, since: datetime) -> list[dict]:
        """The actions the automation ``name`` executed (or failed to) since ``since``, as events."""
        import httpx
        from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

        (automation,) = self.call(lambda client: client.read_automations_by_name(name))
        wanted = EventFilter(
            event=EventNameFilter(name=["prefect.automation.action.executed", "prefect.automation.action.failed"]),
            resource=EventResourceFilter(id=[f"prefect.automation.{automation.id}"]))
        response = httpx.post(f"{self.server.api_url}/events/filter",
                              json={"filter": wanted.model_dump(mode="json"), "limit": 50}, timeout=30)
        response.raise_for_status()
        return [e for e in response.json()["events"] if datetime.fromisoformat(e["occurred"]) >= since]

    def flow_run(self, run_id: str):
        from uuid import UUID

        return self.call(lambda client: client.read_flow_run(UUID(run_id)))

    def flow_run_states(self, run_id: str) -> list:
        from uuid import UUID

        states = self.call(lambda client: client.read_flow_run_states(UUID(run_id)))
        return sorted(states, key=lambda s: s.timestamp)

    # -- the default SQLite database -------------------------------------------------
    def sqlite_engine(self):
        from prefect_failure_insights.blocks.loading import default_database

        return default_database().engine

    def rows(self, engine, run_id: str) -> list:
        from prefect_failure_insights.store.tables import summaries

        with engine.connect() as conn:
            return conn.execute(summaries.select().where(summaries.c.flow_run_id == run_id)).all()

    def wait_for_row(self, engine, run_id: str, timeout_s: float = 60):
        from prefect_failure_insights.store.summaries import get_summary

        # The final summary: a provisional one comes first and is replaced in place, the row
        # first (it keeps the provisional card's id), then the card.
        def final():
            s = get_summary(engine, run_id)
            if s is None or not s.delivery.artifact_id or s.status == "provisional":
                return None
            cards = self.summary_artifacts(run_id)
            return s if cards and all("**Provisional**" not in (c.data or "") for c in cards) else None

        try:
            return wait_for(final, timeout_s)
        except pytest.fail.Exception:
            pytest.fail(f"no final summary of {run_id} within {timeout_s:.0f}s\n{self.where(engine, run_id)}")

    def where(self, engine, run_id: str) -> str:
        """Where a run's summary stands, for a test's failure message (CI keeps nothing else): the
        row, the cards, the summarizer runs and the end of serve's log."""
        from prefect_failure_insights.store.summaries import get_summary

        s = get_summary(engine, run_id)
        row = f"row: {s.status}, logs complete {s.evidence.logs_complete}, artifact {s.delivery.artifact_id}" if s \
            else "row: none"
        cards = [("provisional" if "**Provisional**" in (c.data or "") else "final", str(c.updated))
                 for c in self.summary_artifacts(run_id)]
        runs = [(r.name, r.state.name if r.state else None, str(r.start_time), str(r.end_time))
                for r in self.summarizer_runs(run_id)]
        run = self.flow_run(run_id)
        log = self.serve_log.read_text(errors="replace").splitlines()[-80:] if self.serve_log.exists() else []
        return "\n".join([f"run: {run.name} {run.state.type.value if run.state else None} "
                           f"{run.state.name if run.state else None}, ended {run.end_time}",
                           row, f"cards: {cards}", f"summarizer runs: {runs}", "--- serve log (last 80 lines)",
                           *log])


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory):
    server = PrefectServer(tmp_path_factory.mktemp("prefect-home"))
    server.start()
    try:
        with temporary_settings(updates={
            PREFECT_API_URL: server.api_url, PREFECT_UI_URL: server.ui_url, PREFECT_HOME: str(server.home),
        }):
            yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def system(prefect_server: PrefectServer, fake_llm_server: FakeLLM):
    """The server, a default llm-credentials block on the fake LLM, and `failure-insights serve`."""
    e2e = E2E(prefect_server, fake_llm_server, prefect_server.home / "serve.log")
    e2e.save_block(LLMCredentials(base_url=fake_llm_server.url, model="fake-model", timeout=3, max_retries=1),
                   "default")
    log = open(e2e.serve_log, "wb")  # noqa: SIM115
    serve = subprocess.Popen(
        # No look-back: the tests' failures that are meant to stay unsummarized stay so (the
        # reconciler's own tests run on a server of their own, test_faults.py).
        [sys.executable, "-m", "prefect_failure_insights.cli", "serve", "--poll-seconds", "1",
         "--reconcile-hours", "0"],
        env={**e2e.env, "PREFECT_RUNNER_POLL_FREQUENCY": "1"},
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    log.close()
    try:
        wait_for(lambda: serve.poll() is not None or "Serving summaries" in e2e.serve_log.read_text(errors="replace"), 60)
        assert serve.poll() is None, e2e.serve_log.read_text()
        yield e2e
    finally:
        import signal

        try:
            os.killpg(serve.pid, signal.SIGTERM)
            serve.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(serve.pid, signal.SIGKILL)


@pytest.fixture
def e2e(system: E2E, fake_llm: FakeLLM) -> E2E:
    """The running system with the fake LLM reset to answer correctly and an empty fingerprint cache.

    Scenarios repeat across tests with the same signature; without the reset a test would
    reuse an earlier test's analysis instead of exercising the LLM path it is about.
    """
    from prefect_failure_insights.store.tables import fingerprints

    with system.sqlite_engine().begin() as conn:
        conn.execute(fingerprints.delete())
    return system


class Batch(E2E):
    """A server of its own with no summarizer serving it (its automation would ask the test LLM
    about every seeded failure), and failures seeded straight through the API."""

    def seed(self, mix: dict[str, int], start: int = 0, extra_tags: tuple[str, ...] = ()) -> list[str]:
        async def go(client):
            cache: dict = {}
            return [await seed_failure(client, name, start + i, cache, extra_tags)
                    for name, n in mix.items() for i in range(n)]

        return self.call(go)

    def run(self, since: datetime, until: datetime, **kwargs):
        from prefect_failure_insights.flows.batch_insights import batch_insights

        return asyncio.run(batch_insights(since=since, until=until, **kwargs))



@pytest.fixture(scope="module")
def batch_system(tmp_path_factory: pytest.TempPathFactory, fake_llm_server: FakeLLM):
    server = PrefectServer(tmp_path_factory.mktemp("batch-home")).start()
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url, PREFECT_UI_URL: server.ui_url,
                                         PREFECT_HOME: str(server.home)}):
            system = Batch(server, fake_llm_server, server.home / "serve.log")
            system.call(lambda _c: LLMCredentials(base_url=fake_llm_server.url, model="fake-model", timeout=5,
                                                  max_retries=0).save("default", overwrite=True))
            yield system
    finally:
        server.stop()


@pytest.fixture
def batch(batch_system: Batch, fake_llm: FakeLLM) -> Batch:
    """The batch system with the test LLM reset."""
    return batch_system
