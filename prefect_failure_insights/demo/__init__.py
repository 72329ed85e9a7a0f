"""``make demo`` / ``failure-insights demo``: the whole product, end to end, on a private server.

Starts a Prefect server on 127.0.0.1 (state in ``./.failure-insights-demo``), serves
the summarizer with its automation, sends summaries to a local webhook receiver standing in
for Slack (``notify install``) and turns on automatic retries (``retry install``); runs a
pipeline that fails against a vendor API answering 503, waits for the failure summary and
prints it with the notification received; runs the pipeline as a deployment against a
vendor whose outage ends, and shows it retried automatically and Completed; classifies the
hour's failures with batch insights, and stops everything it started (``--keep-server``
keeps the server up to browse the UI).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

DEMO_DIR = Path(".failure-insights-demo")
SUMMARY_TIMEOUT_S = 120.0
RECOVERY_TIMEOUT_S = 180.0
#: The demo's retry delay (the default is a minute): short, so that the recovery shows at once.
DEMO_RETRY_DELAY_S = 2
STEPS = 9


def _say(step: str, text: str = "") -> None:
    print(f"{step} {text}".rstrip(), flush=True)


def _stop(process: subprocess.Popen | None, timeout_s: float = 15.0) -> None:
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=timeout_s)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=5)


def _step(n: int, text: str) -> None:
    _say(f"[{n}/{STEPS}]", text)


def run_demo(keep_server: bool = False) -> int:
    """Run the demo; return the process exit code (0 when every step showed what it should)."""
    from prefect_failure_insights.blocks import LLMCredentials
    from prefect_failure_insights.demo.vendor import VendorAPI
    from prefect_failure_insights.testing.prefect_server import PrefectServer
    from prefect_failure_insights.testing.receiver import NotificationReceiver

    home = DEMO_DIR.resolve() / "prefect"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    server = PrefectServer(home, ui=True)
    vendor, flaky, receiver = VendorAPI(), VendorAPI(fail_first=3), NotificationReceiver()
    serve_process: subprocess.Popen | None = None
    pipeline_runner: subprocess.Popen | None = None
    try:
        _step(1, f"Starting a local Prefect server on {server.ui_url} (state in {home}) ...")
        started = time.monotonic()
        server.start()
        _say("     ", f"ready in {time.monotonic() - started:.1f}s")
        env = {
            **os.environ,
            **server.env(),
            "PREFECT_RUNNER_POLL_FREQUENCY": "1",
            "PREFECT_LOGGING_LEVEL": "INFO",
        }

        _step(2, "Registering the plugin's blocks ...")
        llm = LLMCredentials.from_env()
        if llm is None:
            _say("     ", "No LLM configured: the summary will be the deterministic analysis.")
            _say("     ", "To use an LLM, set OPENAI_API_KEY (OpenAI), or FAILURE_INSIGHTS_LLM_URL "
                 "(+ FAILURE_INSIGHTS_LLM_MODEL) for any OpenAI-compatible server, e.g. "
                 "http://127.0.0.1:11434/v1 for Ollama.")
        else:
            _say("     ", f"LLM from the environment: {llm.display}")
        subprocess.run(
            [sys.executable, "-m", "prefect", "block", "register", "-m", "prefect_failure_insights.blocks"],
            env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )

        _step(3, "Serving the summarizer and installing the automation ...")
        serve_process = _start(env, home / "serve.log",
                               [sys.executable, "-m", "prefect_failure_insights.cli", "serve", "--poll-seconds", "1"])
        if not _wait_for_log(home / "serve.log", "Serving summaries", serve_process, 60):
            _say("ERROR", f"the summarizer did not start; see {home / 'serve.log'}")
            return 1

        receiver.start()
        _step(4, f"Sending summaries to a local webhook receiver at {receiver.url} (standing in for Slack) "
              "and retrying transient vendor failures automatically ...")
        with _settings(server, home):
            receiver.block().save("demo-receiver", overwrite=True)
        for command in (("notify", "install", "--block", "custom-webhook/demo-receiver"),
                        ("retry", "install", "--max-retries", "1", "--delay", str(DEMO_RETRY_DELAY_S))):
            done = _cli(env, home, *command)
            if done.returncode != 0:
                _say("ERROR", f"`failure-insights {' '.join(command)}` failed: {done.stderr.strip()}")
                return 1
            _say("     ", done.stdout.strip())

        vendor.start()
        _step(5, f"Running the example pipeline 'nightly-orders-sync' against a vendor API "
              f"at {vendor.url} that answers 503 ...")
        pipeline = subprocess.run(
            [sys.executable, "-m", "prefect_failure_insights.demo.pipeline", vendor.url],
            env=env, capture_output=True, text=True, timeout=180,
        )
        (home / "pipeline.log").write_text(pipeline.stdout + pipeline.stderr)
        match = re.search(r"FLOW_RUN_ID=([0-9a-f-]{36})", pipeline.stdout)
        if match is None:
            _say("ERROR", f"the example pipeline did not run; see {home / 'pipeline.log'}")
            return 1
        run_id = match.group(1)
        failed_at = time.monotonic()
        _say("     ", f"failed as expected (run {run_id}, vendor called {vendor.requests} times)")

        _step(6, "Waiting for the failure summary on the failed run ...")
        summary = _wait_for_summary(server, home, run_id)
        if summary is None:
            _say("ERROR", f"no summary within {SUMMARY_TIMEOUT_S:.0f}s; see {home / 'serve.log'}")
            return 1
        _say("     ", f"artifact on the run {time.monotonic() - failed_at:.1f}s after the pipeline returned")

        from prefect_failure_insights.reporting.card import render_text

        print("\nThe failure summary:\n")
        print(render_text(summary))
        print(f"\nOn the run's page (Artifacts tab): {server.ui_url}/runs/flow-run/{run_id}")
        received = receiver.wait_for(1, 30)
        if not received:
            _say("ERROR", f"no notification reached the receiver; see {home / 'serve.log'} and the server's "
                 "Automations page")
            return 1
        print("\nThe notification the webhook receiver got (what Slack would show):\n")
        print(f"Subject: {received[0].get('subject')}\n{received[0].get('body')}")

        flaky.start()
        _step(7, f"Running it as the deployment nightly-orders-sync/demo against a vendor at {flaky.url} "
              "whose outage ends after 3 requests ...")
        pipeline_runner = _start(env, home / "pipeline-serve.log",
                                 [sys.executable, "-m", "prefect_failure_insights.demo.pipeline", "--serve"])
        recovered = _run_until_recovered(server, home, flaky.url)
        if recovered is None:
            _say("ERROR", f"the deployment's run did not recover within {RECOVERY_TIMEOUT_S:.0f}s; see "
                 f"{home / 'serve.log'} and {home / 'pipeline-serve.log'}")
            return 1
        run, states = recovered
        print(f"\nRun {run.name} ({run.id}) ended {run.state.name} after {run.run_count} attempts "
              f"(vendor called {flaky.requests} times). Its state history:")
        for state in states:
            print(f"  {state.timestamp:%H:%M:%S}  {state.name:<13} {state.message or ''}".rstrip())

        _step(8, f"Notifications received: {len(receiver.wait_for(2, 30))} (one per failure, each with its "
              "summary)")

        _say(f"\n[9/{STEPS}]", "Batch insights over the last hour: `failure-insights batch run --hours 1` "
             "(`serve` also runs them daily at 06:00 UTC):\n")
        batch = _cli(env, home, "batch", "run", "--hours", "1", "--verbose")
        (home / "insights.log").write_text(batch.stdout + batch.stderr)
        if batch.returncode != 0:
            _say("ERROR", f"batch insights failed; see {home / 'insights.log'}")
            return 1
        print(batch.stdout.rstrip())
        if re.search(r"^0 failed runs", batch.stdout, re.MULTILINE):
            _say("ERROR", "the batch did not count the failure the demo just made; see "
                 f"{home / 'insights.log'}")
            return 1
        if keep_server:
            print(f"\nThe server stays up at {server.ui_url}: press Ctrl-C to stop it.", flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        return 0
    finally:
        _stop(pipeline_runner)
        _stop(serve_process)
        for local in (vendor, flaky, receiver):
            local.stop()
        server.stop()
        print("Stopped the summarizer, the example deployment, the vendor APIs, the webhook receiver and the "
              "Prefect server.", flush=True)


def _start(env: dict[str, str], log_path: Path, command: list[str]) -> subprocess.Popen:
    """A long-running process of the demo, its output in ``log_path``."""
    log = open(log_path, "wb")  # noqa: SIM115 - the child keeps it
    try:
        return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        log.close()


def _cli(env: dict[str, str], home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "prefect_failure_insights.cli", *args],
                          env=env, capture_output=True, text=True, timeout=180)


def _settings(server, home: Path):
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, PREFECT_UI_URL, temporary_settings

    return temporary_settings(updates={PREFECT_API_URL: server.api_url, PREFECT_UI_URL: server.ui_url,
                                       PREFECT_HOME: str(home)})


def _run_until_recovered(server, home: Path, vendor_url: str):
    """Start a run of the demo deployment; ``(run, states)`` once it is Completed, else None."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    from prefect_failure_insights.demo.pipeline import DEPLOYMENT

    async def go():
        async with get_client() as client:
            deadline = time.monotonic() + 60
            while True:  # the runner registers the deployment when it starts
                try:
                    await client.read_deployment_by_name(DEPLOYMENT)
                    break
                except Exception:  # noqa: BLE001 - not there yet
                    if time.monotonic() > deadline:
                        return None
                    await asyncio.sleep(0.5)
            run = await run_deployment(DEPLOYMENT, parameters={"vendor_url": vendor_url}, timeout=0)
            deadline = time.monotonic() + RECOVERY_TIMEOUT_S
            while time.monotonic() < deadline:
                run = await client.read_flow_run(run.id)
                if run.state is not None and run.state.is_completed():
                    states = sorted(await client.read_flow_run_states(run.id), key=lambda s: s.timestamp)
                    return run, states
                await asyncio.sleep(0.5)
            return None

    with _settings(server, home):
        return asyncio.run(go())


def _wait_for_log(path: Path, needle: str, process: subprocess.Popen, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if path.exists() and needle in path.read_text(errors="replace"):
            return True
        time.sleep(0.2)
    return False


def _wait_for_summary(server, home: Path, run_id: str):
    """Poll the summaries database the summarizer writes (under the demo's Prefect home)."""
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

    from prefect_failure_insights.blocks.loading import default_database
    from prefect_failure_insights.exceptions import StorageError
    from prefect_failure_insights.store.summaries import get_summary

    with temporary_settings(updates={PREFECT_API_URL: server.api_url, PREFECT_HOME: str(home)}):
        database = default_database()
    deadline = time.monotonic() + SUMMARY_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            try:
                summary = database.call(get_summary, run_id)
            except StorageError:
                summary = None
            if summary is not None and summary.delivery.artifact_id and summary.status != "provisional":
                return summary  # the final one (a provisional summary comes first, then is replaced)
            time.sleep(0.25)
    finally:
        database.close()
    return None
