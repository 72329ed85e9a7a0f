"""``make demo`` / ``failure-insights demo``: the whole product, end to end, on a private server.

Starts a Prefect server on 127.0.0.1 (state in ``./.failure-insights-demo``), serves
the summarizer with its automation, runs a pipeline that fails against a vendor
API answering 503, waits for the failure summary, prints it, classifies the hour's
failures with batch insights, and stops everything it started (``--keep-server``
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


def run_demo(keep_server: bool = False) -> int:
    """Run the demo; return the process exit code (0 when a summary was printed)."""
    from prefect_failure_insights.blocks import LLMCredentials
    from prefect_failure_insights.demo.vendor import VendorAPI
    from prefect_failure_insights.testing.prefect_server import PrefectServer

    home = DEMO_DIR.resolve() / "prefect"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    server = PrefectServer(home, ui=True)
    vendor = VendorAPI()
    serve_process: subprocess.Popen | None = None
    try:
        _say("[1/7]", f"Starting a local Prefect server on {server.ui_url} (state in {home}) ...")
        started = time.monotonic()
        server.start()
        _say("     ", f"ready in {time.monotonic() - started:.1f}s")
        env = {
            **os.environ,
            **server.env(),
            "PREFECT_RUNNER_POLL_FREQUENCY": "1",
            "PREFECT_LOGGING_LEVEL": "INFO",
        }

        _say("[2/7]", "Registering the plugin's blocks ...")
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

        _say("[3/7]", "Serving the summarizer and installing the automation ...")
        serve_log = open(home / "serve.log", "wb")  # noqa: SIM115 - closed below
        serve_process = subprocess.Popen(
            [sys.executable, "-m", "prefect_failure_insights.cli", "serve", "--poll-seconds", "1"],
            env=env, stdout=serve_log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        serve_log.close()
        if not _wait_for_log(home / "serve.log", "Serving summaries", serve_process, 60):
            _say("ERROR", f"the summarizer did not start; see {home / 'serve.log'}")
            return 1

        vendor.start()
        _say("[4/7]", f"Running the example pipeline 'nightly-orders-sync' against a vendor API "
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

        _say("[5/7]", "Waiting for the failure summary on the failed run ...")
        summary = _wait_for_summary(server, home, run_id)
        if summary is None:
            _say("ERROR", f"no summary within {SUMMARY_TIMEOUT_S:.0f}s; see {home / 'serve.log'}")
            return 1
        _say("     ", f"artifact on the run {time.monotonic() - failed_at:.1f}s after the pipeline returned")

        from prefect_failure_insights.reporting.summary import render_text

        _say("[6/7]", "The failure summary:\n")
        print(render_text(summary))
        print(f"\nOn the run's page (Artifacts tab): {server.ui_url}/runs/flow-run/{run_id}")

        _say("\n[7/7]", "Batch insights over the last hour: `failure-insights insights --hours 1` "
             "(`serve` also runs them daily at 06:00 UTC):\n")
        batch = subprocess.run(
            [sys.executable, "-m", "prefect_failure_insights.cli", "insights", "--hours", "1", "--verbose"],
            env=env, capture_output=True, text=True, timeout=180,
        )
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
        _stop(serve_process)
        vendor.stop()
        server.stop()
        print("Stopped the summarizer, the vendor API and the Prefect server.", flush=True)


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
