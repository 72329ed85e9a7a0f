"""The summary reaches the people who are paged (issue 15): a Prefect event per delivered summary,
and a real `CustomWebhookNotificationBlock` posting it, through the automation `notify install`
sets up, to a local HTTP receiver standing in for Slack."""

from __future__ import annotations

import re
import time

import pytest

from prefect_failure_insights.testing.receiver import NotificationReceiver

from .pipelines import SECRETS

pytestmark = pytest.mark.e2e

BLOCK = "custom-webhook/e2e-receiver"
#: After the expected notification arrived, how long to wait for a wrong second one.
SETTLE_S = 6.0


@pytest.fixture(scope="module")
def receiver(system):
    with NotificationReceiver() as receiver:
        system.save_block(receiver.block("e2e-receiver"), "e2e-receiver")
        installed = system.cli("notify", "install", "--block", BLOCK)
        assert installed.returncode == 0, installed.stderr
        try:
            yield receiver
        finally:
            system.cli("notify", "uninstall", "--block", BLOCK)


def _about(receiver: NotificationReceiver, run_id: str) -> list[dict]:
    return [n for n in receiver.received if run_id in n.get("body", "")]


def _wait_for_notifications(e2e, receiver: NotificationReceiver, run_id: str) -> list[dict]:
    e2e.wait_for_row(e2e.sqlite_engine(), run_id)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not _about(receiver, run_id):
        time.sleep(0.2)
    time.sleep(SETTLE_S)  # a second notification, if one were coming, would be here by now
    return _about(receiver, run_id)


def test_one_notification_per_failure_with_the_summary_its_links_and_no_secret(e2e, receiver) -> None:
    run_id = e2e.run_pipeline("vendor")
    got = _wait_for_notifications(e2e, receiver, run_id)
    summary = e2e.wait_for_row(e2e.sqlite_engine(), run_id)

    # A provisional summary came first and was announced too: only the final one notifies.
    events = e2e.summary_events(run_id)
    assert [(e["event"], e["resource"]["failure-insights.status"]) for e in events] == [
        ("failure-insights.summary.created", "provisional"), ("failure-insights.summary.updated", "llm")]
    assert len(got) == 1, got
    note = got[0]
    assert "Vendor API answered 503" in note["subject"] and "Vendor API answered 503" in note["body"]
    assert f"{e2e.server.ui_url}/runs/flow-run/{run_id}" in note["body"]
    assert f"/artifacts/artifact/{summary.delivery.artifact_id}" in note["body"]
    assert "How to fix it:\n1. Retry later." in note["body"]
    for secret in SECRETS.values():
        assert secret not in str(note) and secret not in str(events)

    # The event relates the summary to the failed run with Prefect's own roles.
    final = events[-1]
    roles = {r["prefect.resource.role"]: r["prefect.resource.id"] for r in final["related"]}
    assert roles["flow-run"] == f"prefect.flow-run.{run_id}"
    assert roles["flow"].startswith("prefect.flow.")
    assert final["resource"]["failure-insights.category"] == "THIRD_PARTY_SYSTEM"
    assert final["payload"]["artifact_id"] == summary.delivery.artifact_id


def test_two_triggers_at_once_still_notify_once(e2e, receiver) -> None:
    """A failing subflow emits its own Failed event, then its parent does: two summarizer runs."""
    run_id = e2e.run_pipeline("subflow")
    e2e.wait_for_summarizers_done(run_id)
    got = _wait_for_notifications(e2e, receiver, run_id)
    assert len(got) == 1, got
    assert "e2e-parent-load" in got[0]["subject"]


def test_planted_markup_reaches_the_notification_as_text(e2e, receiver) -> None:
    e2e.fake.answer = {**e2e.fake.answer, "title": "Refused <img src=https://attacker.example/p.png> @channel",
                       "what_happened": "[click](https://attacker.example/x) <!here>"}
    run_id = e2e.run_pipeline("markup")
    got = _wait_for_notifications(e2e, receiver, run_id)
    assert len(got) == 1
    body = got[0]["body"] + got[0]["subject"]
    for live in ("<img", "<!here>", "](https://attacker", "@channel"):
        assert live not in body, live
    assert "&lt;img src=`https://attacker.example/p.png`&gt;" in body


def test_notify_commands_are_idempotent_refuse_bad_input_and_doctor_reports(e2e, receiver) -> None:
    again = e2e.cli("notify", "install", "--block", BLOCK)
    assert again.returncode == 0 and "unchanged" in again.stdout, again.stdout + again.stderr
    status = e2e.cli("notify", "status")
    assert status.returncode == 0 and f"{BLOCK}: enabled, final summaries" in status.stdout
    doctor = e2e.cli("doctor").stdout
    assert re.search(rf"\[ ok \] Notifications +{re.escape(BLOCK)}: final summaries", doctor), doctor
    assert re.search(r"\[ ok \] Retries +not installed", doctor), doctor

    for args, message in [
        (("--block", "slack-webhook/nope"), "No block slack-webhook/nope"),
        (("--block", "nope"), "is not SLUG/NAME"),
        (("--block", "llm-credentials/default"), "cannot send notifications"),
        (("--block", BLOCK, "--deployment", "nope/nope"), "No deployment nope/nope"),
        (("--block", BLOCK, "--category", "VENDOR"), "is not a category"),
    ]:
        bad = e2e.cli("notify", "install", *args)
        assert bad.returncode == 2 and message in bad.stderr, (args, bad.stderr)
        assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    # Nothing half-written: the bad calls left the one automation as it was.
    assert e2e.cli("notify", "status").stdout.count("custom-webhook/") == 1
