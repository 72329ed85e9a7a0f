"""Every failure shape Prefect produces gets exactly one card, whose final version shows the root error.

The shapes (`shapes.py`) run as ordinary flow processes against the real server, with `serve`
summarizing them: a flow timeout and a task's `TimeoutError` (states named `TimedOut`), a
returned `Failed(name="ContractViolated")`, one failing mapped task among twenty, an exception
group, an `on_failure` hook logging after the failure, a failing subflow, a child deployment
started with `run_deployment`, an async flow, SIGTERM, a crash with no logs (what a worker
reports when the infrastructure exits 137), a shell task streaming a dbt-like tool's output, and
20,000 lines whose error arrives last. Each shape's timings (first and final card after the
run's end) are printed; the benchmark (`bench/first_answer.py --processes`) measures them.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .conftest import wait_for
from .shapes import CHILD_DEPLOYMENT, ROOT

pytestmark = pytest.mark.e2e

HERE = Path(__file__).parent
NO_LOGS = "crash-no-logs"
#: What a worker sets when the infrastructure exits 137 (the kernel's OOM killer, an eviction).
NO_LOGS_MESSAGE = "Flow run infrastructure exited with non-zero status code 137."


def _run_shape(env: dict[str, str], shape: str) -> tuple[str, str]:
    out = subprocess.run([sys.executable, str(HERE / "shapes.py"), shape], env=env, capture_output=True, text=True,
                         timeout=300)
    m = re.search(r"FLOW_RUN_ID=([0-9a-f-]{36})", out.stdout)
    assert m, f"{shape}: {out.stdout[-2000:]}{out.stderr[-3000:]}"
    return shape, m.group(1)


def _crash_without_logs(e2e) -> str:
    """A run its infrastructure lost before it logged anything, set Crashed as a worker does."""
    from prefect import flow
    from prefect.states import Crashed, Pending, Running

    @flow(name="e2e-shape-crash-no-logs")
    def lost() -> None: ...

    async def go(client):
        run = await client.create_flow_run(lost, state=Pending())
        await client.set_flow_run_state(run.id, Running(), force=True)
        await client.set_flow_run_state(run.id, Crashed(message=NO_LOGS_MESSAGE), force=True)
        return str(run.id)

    return e2e.call(go)


@pytest.fixture(scope="module")
def child_server(system):
    """Serves the child deployment that one shape starts with `run_deployment`."""
    env = {**system.env, "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
    proc = subprocess.Popen([sys.executable, str(HERE / "shapes.py"), "serve"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)

    async def deployed(client):
        try:
            return await client.read_deployment_by_name(CHILD_DEPLOYMENT)
        except Exception:  # noqa: BLE001 - not yet
            return None

    try:
        wait_for(lambda: system.call(deployed), 90)
        yield
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


# Thirteen flow processes, four at a time, and a 20,000-line run's late logs: minutes on a busy machine.
@pytest.mark.timeout(1200)
def test_every_failure_shape_gets_one_card_showing_its_root_error(e2e, child_server) -> None:
    # Failing processes flush their logs into a busy SQLite server: let the client retry its 503s.
    env = {**e2e.env, "PREFECT_CLIENT_MAX_RETRIES": "12"}
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = dict(pool.map(lambda shape: _run_shape(env, shape), list(ROOT)))
    runs[NO_LOGS] = _crash_without_logs(e2e)
    roots = {**ROOT, NO_LOGS: "137"}

    engine = e2e.sqlite_engine()
    report, problems = [], []
    for shape, run_id in runs.items():
        summary = e2e.wait_for_row(engine, run_id, timeout_s=420)
        cards = e2e.summary_artifacts(run_id)
        run = e2e.flow_run(run_id)
        card = cards[0].data if cards else ""
        if len(cards) != 1:
            problems.append(f"{shape}: {len(cards)} cards")
        if roots[shape].lower() not in card.lower():
            problems.append(f"{shape}: the final card does not show {roots[shape]!r}: {summary.analysis.title!r}")
        if not summary.evidence.logs_complete:
            problems.append(f"{shape}: the final summary says its logs were incomplete")
        if "no error line" in card and shape != NO_LOGS:
            problems.append(f"{shape}: the final card says its logs hold no error line")
        ended = run.end_time
        first = (cards[0].created - ended).total_seconds() if cards and ended else None
        final = (cards[0].updated - ended).total_seconds() if cards and ended else None
        report.append(f"{shape:18} {run.state.name:16} first card {first:6.1f} s  final {final:6.1f} s")
    print("\n".join(report))
    assert problems == [], "\n".join(problems + report)
