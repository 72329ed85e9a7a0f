"""Retry what a retry would fix (issue 15): the automation `retry install` sets up retries a
deployment's run whose summary says TRANSIENT, the way the UI's Retry does, behind a guard; with
`--crashed`, a run its infrastructure stopped (issue 29); and every failure's summary says whether
it was retried and why, in the row, on the card and in a `failure-insights.retry.decided` event,
without the decision starting the retry flow again.

The pipelines run as deployments served by a runner of their own (`pipelines.py serve`), as
in production: a retried run is picked up again by that runner."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from prefect_failure_insights.defaults import RETRY_STATE_MARK
from prefect_failure_insights.store.summaries import get_summary

from .conftest import HERE, wait_for

pytestmark = pytest.mark.e2e


INSTALL = ("retry", "install", "--max-retries", "2", "--delay", "1", "--crashed")


@pytest.fixture(scope="module")
def deployments(system):
    """The test pipelines served as deployments ``<flow>/e2e``, and the retry automation (2 retries, 1 s,
    infrastructure crashes too)."""
    log_path = system.server.home / "pipelines-serve.log"
    log = open(log_path, "wb")  # noqa: SIM115
    runner = subprocess.Popen([sys.executable, str(HERE / "pipelines.py"), "serve"],
                              env={**system.env, "PREFECT_RUNNER_POLL_FREQUENCY": "1"},
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    installed = system.cli(*INSTALL)
    assert installed.returncode == 0, installed.stderr
    try:
        wait_for(lambda: runner.poll() is not None or "e2e-sigterm-once/e2e" in log_path.read_text(errors="replace"),
                 90)
        assert runner.poll() is None, log_path.read_text()
        yield system
    finally:
        system.cli("retry", "uninstall")
        os.killpg(runner.pid, signal.SIGTERM)
        try:
            runner.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(runner.pid, signal.SIGKILL)


def _start(e2e, deployment: str) -> str:
    from prefect.deployments import run_deployment

    async def go(_client):
        return str((await run_deployment(deployment, timeout=0)).id)

    return e2e.call(go)


def _ended(e2e, run_id: str, state_type: str, timeout_s: float = 150):
    def ended():
        run = e2e.flow_run(run_id)
        return run if run.state and run.state.type.value == state_type else None

    return wait_for(ended, timeout_s, interval_s=0.5)


def _our_retries(e2e, run_id: str) -> list:
    return [s for s in e2e.flow_run_states(run_id)
            if s.name == "AwaitingRetry" and (s.message or "").startswith(RETRY_STATE_MARK)]


def _retry_runs(e2e, run_id: str) -> list:
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    async def read(client):
        runs = await client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["retry-transient-failure"])), limit=200)
        return [r for r in runs if str(r.parameters.get("flow_run_id")) == run_id]

    return e2e.call(read)


def _decided_events(e2e, run_id: str) -> list[dict]:
    """The `failure-insights.retry.decided` events on ``run_id``'s summary, oldest first."""
    return e2e.summary_events(run_id, prefix="failure-insights.retry.decided")


def _settled_retry_runs(e2e, run_id: str, at_least: int = 1) -> list:
    """The retry flow's runs for ``run_id`` once there are ``at_least`` and all have ended."""
    def settled():
        runs = _retry_runs(e2e, run_id)
        return runs if len(runs) >= at_least and all(r.state and r.state.is_final() for r in runs) else None

    return wait_for(settled, 120, interval_s=0.5)


def _no_loop(e2e, run_id: str, quiet_s: float = 8.0) -> list:
    """Issue 29's loop guard: each final summary event of the run started the retry flow once, and
    its decisions started nothing more: after ``quiet_s`` seconds the count is the same."""
    runs = _settled_retry_runs(e2e, run_id)
    time.sleep(quiet_s)  # a loop, if there were one, would have started more runs by now (a run every ~2 s)
    final_events = [ev for ev in e2e.summary_events(run_id) if ev["payload"].get("final")]
    after = _retry_runs(e2e, run_id)
    assert len(after) == len(runs) == len(final_events), (len(runs), len(after), len(final_events))
    return after


def test_a_transient_vendor_failure_is_retried_once_and_ends_completed(deployments, e2e) -> None:
    run_id = _start(e2e, "e2e-flaky-vendor/e2e")
    run = _ended(e2e, run_id, "COMPLETED")
    assert run.run_count == 2
    retries = _our_retries(e2e, run_id)
    assert len(retries) == 1 and "1 of 2" in retries[0].message and "THIRD_PARTY_SYSTEM" in retries[0].message
    # The retry is noted in the summary of the failure, row and card.
    summary = wait_for(lambda: (s := get_summary(e2e.sqlite_engine(), run_id)) and s.run.auto_retries == 1 and s)
    assert (summary.retry.decision, summary.retry.rule, summary.retry.transience) == ("retried", "transient",
                                                                                       "TRANSIENT")
    cards = wait_for(lambda: [c for c in e2e.summary_artifacts(run_id) if "Retried automatically" in (c.data or "")])
    assert len(e2e.summary_artifacts(run_id)) == 1 and cards[0].id.hex == summary.delivery.artifact_id.replace("-", "")
    assert "(1 of 2): its failure is TRANSIENT, THIRD\\_PARTY\\_SYSTEM (rule transient)" in cards[0].data  # escaped


def test_a_rejected_key_is_not_retried_and_its_card_says_why(deployments, e2e) -> None:
    """Issue 29: a permanent failure reaches the retry flow too, which records why it was not retried
    (the rule and the transience) in the row, on the card and in a retry.decided event."""
    e2e.fake.answer = {**e2e.fake.answer, "title": "Vendor rejected the API key (401)",
                       "root_cause": "The API key is invalid.", "transience": "PERMANENT"}
    run_id = _start(e2e, "e2e-vendor-auth/e2e")
    _ended(e2e, run_id, "FAILED")
    summary = e2e.wait_for_row(e2e.sqlite_engine(), run_id)
    assert summary.analysis.transience.value == "PERMANENT"
    decided = wait_for(lambda: (s := get_summary(e2e.sqlite_engine(), run_id)) and s.retry.decision and s, 60)
    assert (decided.retry.decision, decided.retry.rule, decided.retry.transience, decided.retry.attempt) == (
        "not_retried", "not-transient", "PERMANENT", 1)
    why = "its failure is PERMANENT, not TRANSIENT: a retry would fail the same way (rule not-transient)"
    assert decided.retry.reason == why
    card = wait_for(lambda: [c for c in e2e.summary_artifacts(run_id) if "Not retried automatically" in (c.data or "")])
    assert f"**Not retried automatically:** {why}." in card[0].data and len(e2e.summary_artifacts(run_id)) == 1
    [event] = wait_for(lambda: _decided_events(e2e, run_id), 30)
    assert (event["payload"]["decision"], event["payload"]["rule"], event["payload"]["transience"]) == (
        "not_retried", "not-transient", "PERMANENT")
    assert {r["prefect.resource.role"] for r in event["related"]} >= {"flow-run", "deployment", "retry-flow-run"}
    runs = _no_loop(e2e, run_id)
    assert all(r.state.type.value == "COMPLETED" for r in runs)
    run = e2e.flow_run(run_id)
    assert run.state.type.value == "FAILED" and run.run_count == 1 and _our_retries(e2e, run_id) == []
    assert len(_decided_events(e2e, run_id)) == 1  # a decision the summary holds already is not announced again


def test_a_run_its_infrastructure_stopped_is_retried_once_and_ends_completed(deployments, e2e) -> None:
    """Issue 29: a deployment's run stopped by SIGTERM on its first attempt (as an eviction, a drain or
    a spot reclaim does) ends Crashed; `retry install --crashed` retries it once, by the crash rule
    (its summary does not say TRANSIENT), and it ends Completed; its row and card say why."""
    e2e.fake.answer = {**e2e.fake.answer, "title": "The run was stopped by a termination signal",
                       "category": "WORKFLOW_ENGINE", "transience": "UNKNOWN"}
    run_id = _start(e2e, "e2e-sigterm-once/e2e")
    run = _ended(e2e, run_id, "COMPLETED")
    assert run.run_count == 2
    crashed = [s for s in e2e.flow_run_states(run_id) if s.type.value == "CRASHED"]
    assert crashed and crashed[0].message == "Execution was aborted by a termination signal.", crashed
    [retry] = _our_retries(e2e, run_id)
    assert retry.message.startswith(f"{RETRY_STATE_MARK} 1 of 2: crashed: terminated by its infrastructure (SIGTERM) "
                                    "(rule infra-sigterm)"), retry.message
    summary = wait_for(lambda: (s := get_summary(e2e.sqlite_engine(), run_id)) and s.retry.retried and s)
    assert summary.analysis.transience.value == "UNKNOWN" and summary.run.state_type == "CRASHED"
    assert (summary.retry.rule, summary.retry.attempt, summary.retry.retries, summary.run.auto_retries) == (
        "infra-sigterm", 1, 1, 1)
    cards = wait_for(lambda: [c for c in e2e.summary_artifacts(run_id) if "Retried automatically" in (c.data or "")])
    assert "(1 of 2): crashed: terminated by its infrastructure (SIGTERM) (rule infra-sigterm)" in cards[0].data
    [event] = wait_for(lambda: _decided_events(e2e, run_id), 30)
    assert (event["payload"]["retried"], event["payload"]["rule"], event["payload"]["scheduled_for"] is not None) == (
        True, "infra-sigterm", True)
    _no_loop(e2e, run_id)
    assert e2e.flow_run(run_id).run_count == 2 and len(_our_retries(e2e, run_id)) == 1


def test_a_run_that_keeps_failing_is_retried_at_most_n_times(deployments, e2e) -> None:
    run_id = _start(e2e, "e2e-vendor-down/e2e")

    def settled():  # two retries, then a third failure whose retry run refused
        runs = _retry_runs(e2e, run_id)
        done = [r for r in runs if r.state and r.state.is_final()]
        return runs if len(runs) >= 3 and len(done) == len(runs) else None

    runs = wait_for(settled, 240, interval_s=1)
    run = e2e.flow_run(run_id)
    assert run.state.type.value == "FAILED" and run.run_count == 3
    assert [s.message.split(":")[0] for s in _our_retries(e2e, run_id)] == [
        f"{RETRY_STATE_MARK} 1 of 2", f"{RETRY_STATE_MARK} 2 of 2"]
    assert len(runs) == 3  # the third failure's retry run said no
    time.sleep(4)
    assert e2e.flow_run(run_id).run_count == 3 and len(_retry_runs(e2e, run_id)) == 3
    # Each failure got its summary, the last one says the run was retried twice, and why not a third time.
    summary = e2e.wait_for_row(e2e.sqlite_engine(), run_id)
    assert summary.run.run_count == 3 and summary.run.auto_retries == 2
    assert (summary.retry.decision, summary.retry.rule, summary.retry.attempt) == ("not_retried", "limit", 3)
    assert "2 of 2 automatic retries used already" in summary.retry.reason


def test_the_plugins_own_runs_are_never_retried(deployments, e2e) -> None:
    """The guard refuses the plugin's own flows first, whatever their state and summary say."""
    from prefect.states import Failed

    from prefect_failure_insights.models import RetryPolicy
    from prefect_failure_insights.prefect_api.retries import decide_retry

    from prefect_failure_insights.defaults import SUMMARIZER_DEPLOYMENT

    async def failed_own_run(client):  # a Failed run of the summarizer's deployment, as if it had failed
        deployment = await client.read_deployment_by_name(SUMMARIZER_DEPLOYMENT)
        return await client.create_flow_run_from_deployment(
            deployment.id, parameters={"flow_run_id": "00000000-0000-0000-0000-000000000000"},
            state=Failed(message="Server error '503 Service Unavailable'"))

    own = e2e.call(failed_own_run)
    outcome = e2e.call(decide_retry, str(own.id), None, policy=RetryPolicy(
        max_retries=2, delay_s=0, categories=("THIRD_PARTY_SYSTEM",), crashed=True, oom=True))
    assert not outcome.retried and "plugin's own flows" in outcome.reason and outcome.decision.rule == "own-flow"
    assert _our_retries(e2e, str(own.id)) == [] and e2e.flow_run(str(own.id)).state.type.value == "FAILED"


def test_retry_commands_are_idempotent_and_refuse_bad_input(deployments, e2e) -> None:
    again = e2e.cli(*INSTALL)
    assert again.returncode == 0 and "unchanged" in again.stdout, again.stdout + again.stderr
    status = e2e.cli("retry", "status")
    assert status.returncode == 0 and "at most 2 retr(ies) per run after 1.0 s" in status.stdout, status.stdout
    assert "crashed runs: retried when evicted, preempted, node lost, pod never started, SIGTERM; not out of " \
           "memory, SIGKILL (`--oom`)" in status.stdout, status.stdout
    doctor = e2e.cli("doctor").stdout
    assert "[ ok ] Retries" in doctor and "crashed runs: retried when" in doctor, doctor
    for args, message in [(("--max-retries", "0"), "out of range"), (("--delay", "-5"), "out of range"),
                          (("--category", "SOMETHING"), "is not a category"), (("--oom",), "use it with --crashed")]:
        bad = e2e.cli("retry", "install", *args)
        assert bad.returncode == 2 and message in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    assert "at most 2 retr(ies)" in e2e.cli("retry", "status").stdout  # unchanged by the refused calls
