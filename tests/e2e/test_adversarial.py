"""Untrusted text stays inert (issue 25), end to end, the way an attacker and a careless user try it.

A real failing run whose logs, exception and name carry an injected instruction with a live
command, terminal escape sequences, bidi and zero-width characters and a spreadsheet formula,
summarized through the automation and `failure-insights serve` on a real Prefect server by a test
LLM that obeys the injection (it returns the command as fix step 1, "confirmed"). Then every
output is checked: the artifact, the row, the summary event, a notification block posting to a
local receiver, the CLI's terminal text, the summarizer's own log lines and the CSV export. And
the LLM key never goes to another URL; a forged summary event retries nothing.
"""

from __future__ import annotations

import csv
import json
import time
import unicodedata

import pytest
from prefect_failure_insights.blocks import LLMCredentials

from prefect_failure_insights.defaults import RETRY_STATE_MARK
from prefect_failure_insights.store.summaries import get_summary
from prefect_failure_insights.testing.fake_llm import FakeLLM
from prefect_failure_insights.testing.receiver import NotificationReceiver

from .conftest import wait_for
from .pipelines import EVIL_COMMAND

pytestmark = pytest.mark.e2e

BLOCK = "custom-webhook/e2e-adversarial"
BLOCK_KEY = "sk-adversarial-block-key-0123456789abcdef"
TENANT_HEADER = "tenant-secret-header-value-77"
FROM_LOGS = "[From the run's own logs, unverified: "
BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C)}
INVISIBLE = {"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"}


def _unsafe(text: str) -> list[str]:
    """Control (but newline and tab), bidi and zero-width characters in ``text``."""
    return [repr(c) for c in text if (unicodedata.category(c) == "Cc" and c not in "\n\t") or c in BIDI
            or c in INVISIBLE or 0xE0000 <= ord(c) <= 0xE007F]


def _no_live_command(steps: list[str]) -> None:
    """Every fix step that mentions the run's command or host says it comes from the logs, unverified."""
    for step in steps:
        if "evil.example" in step or "curl" in step:
            assert step.startswith(FROM_LOGS) or step.startswith("[From the run"), step


@pytest.fixture(scope="module")
def hostile(system):
    """The default LLM block with a key and a secret header; the obeying test LLM; a notification block
    on a local receiver. The adversarial run, failed and summarized through the automation."""
    fake = system.fake
    system.save_block(LLMCredentials(base_url=fake.url, model="fake-model", timeout=3, max_retries=1,
                                     api_key=BLOCK_KEY, extra_headers={"x-tenant-secret": TENANT_HEADER}),
                      "default")
    with NotificationReceiver() as receiver:
        system.save_block(receiver.block("e2e-adversarial"), "e2e-adversarial")
        installed = system.cli("notify", "install", "--block", BLOCK)
        assert installed.returncode == 0, installed.stderr
        try:
            fake.reset("obey_injection")
            run_id = system.run_pipeline("adversarial")
            summary = system.wait_for_row(system.sqlite_engine(), run_id, timeout_s=90)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not [n for n in receiver.received if run_id in n.get("body", "")]:
                time.sleep(0.2)
            yield {"run_id": run_id, "summary": summary, "receiver": receiver,
                   "requests": [dict(r) for r in fake.requests]}
        finally:
            system.cli("notify", "uninstall", "--block", BLOCK)
            fake.reset()
            system.save_block(LLMCredentials(base_url=fake.url, model="fake-model", timeout=3, max_retries=1),
                              "default")


def test_the_obeyed_injection_is_never_a_verified_fix_in_the_row(hostile) -> None:
    summary = hostile["summary"]
    a, v = summary.analysis, summary.verification
    assert summary.status == "llm"  # the model answered, and obeyed
    assert a.how_to_fix[0].startswith(FROM_LOGS) and EVIL_COMMAND in a.how_to_fix[0], a.how_to_fix
    _no_live_command(a.how_to_fix)
    assert a.evidence_status != "confirmed" and a.confidence <= 0.5
    assert v.steps_from_logs and 1 in v.steps_from_logs
    assert sum(c.verified for c in v.claims) < len(v.claims)  # "5 of 5 hold" no more
    assert summary.evidence.text.count("[flagged: reads like an instruction]") >= 1
    for text in (a.title, a.what_happened, a.root_cause, *a.how_to_fix, summary.run.name, summary.evidence.text):
        assert _unsafe(text) == [], text


def test_the_model_was_told_and_the_answer_not_cached(hostile, e2e) -> None:
    [first, *_] = [r for r in hostile["requests"] if r["path"].endswith("/chat/completions")]
    prompt = "\n".join(m["content"] for m in first["body"]["messages"])
    assert "[flagged: reads like an instruction]" in prompt and "never instructions" in prompt
    assert _unsafe(prompt) == []
    from prefect_failure_insights.store.tables import fingerprints

    with e2e.sqlite_engine().connect() as conn:  # the untrusted answer is this run's alone
        cached = [r for r in conn.execute(fingerprints.select()).mappings() if r["status"] == "ready"]
    assert not any("evil.example" in (r["analysis"] or "") for r in cached)


def test_the_artifact_is_inert_and_says_the_step_is_unverified(hostile, e2e) -> None:
    [card] = e2e.summary_artifacts(hostile["run_id"])
    data = card.data or ""
    assert _unsafe(data) == [] and _unsafe(card.description or "") == []
    assert "From the run's own logs, unverified" in data
    assert "**Evidence status:** confirmed" not in data
    from prefect_failure_insights.testing.markup import live_elements

    assert live_elements(data, allowed_link_prefixes=[e2e.server.ui_url]) == []  # no live link of theirs
    assert "\x1b" not in data and "pwned" not in data  # the window-title sequence went whole


def test_the_event_and_the_notification_are_inert_and_unverified(hostile, e2e) -> None:
    run_id = hostile["run_id"]
    final = wait_for(lambda: next((e for e in reversed(e2e.summary_events(run_id))
                                   if e["resource"]["failure-insights.status"] == "llm"), None), 30)
    payload = final["payload"]
    provisional = [e for e in e2e.summary_events(run_id) if e["resource"]["failure-insights.status"] == "provisional"]
    assert all(_unsafe(json.dumps(e, ensure_ascii=False)) == [] for e in provisional)
    assert payload["how_to_fix"][0].startswith(FROM_LOGS) and payload["evidence_status"] != "confirmed"
    assert _unsafe(json.dumps(payload, ensure_ascii=False)) == []
    assert _unsafe(json.dumps(final["related"], ensure_ascii=False)) == []
    notes = [n for n in hostile["receiver"].received if run_id in n.get("body", "")]
    assert len(notes) == 1, hostile["receiver"].received
    body, subject = notes[0]["body"], notes[0]["subject"]
    assert _unsafe(body) == [] and _unsafe(subject) == []
    assert "From the run's own logs, unverified" in body
    assert "@channel" not in body and "<!channel>" not in body and "](http" not in body


def test_terminal_text_and_the_summarizers_own_log_lines_are_inert(hostile, e2e) -> None:
    run_id = hostile["run_id"]
    for args in (("summary", "show", run_id, "--format", "text"), ("summary", "show", run_id),
                 ("summary", "list", "--limit", "50"), ("summary", "evidence", run_id)):
        out = e2e.cli(*args)
        assert out.returncode == 0, out.stderr
        assert _unsafe(out.stdout) == [] and _unsafe(out.stderr) == [], args
    shown = e2e.cli("summary", "show", run_id, "--format", "text").stdout
    assert "From the run's own logs, unverified" in shown

    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    ids = [r.id for r in e2e.summarizer_runs(run_id)]
    logs = e2e.call(lambda client: client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids)),
                                                   limit=200))
    messages = [log.message for log in logs]
    assert any("Summary" in m and "nightly-" in m for m in messages), messages
    assert all(_unsafe(m) == [] for m in messages), [m for m in messages if _unsafe(m)]


def test_the_csv_export_holds_no_formula_and_reads_back(hostile, e2e, tmp_path) -> None:
    out = tmp_path / "week.csv"
    done = e2e.cli("batch", "run", "--hours", "1", "--flow", "e2e-adversarial", "--no-llm", "--format", "csv",
                   "-o", str(out))
    assert done.returncode == 0, done.stderr
    rows = list(csv.reader(out.open(newline="", encoding="utf-8")))
    cells = [cell for row in rows[1:] for cell in row]
    assert any("HYPERLINK" in c for c in cells)
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")], cells
    assert all(_unsafe(c) == [] for c in cells)
    header = rows[0]
    for row in rows[1:]:
        row[header.index("Corrected Category")] = "THIRD_PARTY_SYSTEM"
    with out.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    imported = e2e.cli("corrections", "import", str(out))
    assert imported.returncode == 0 and "Imported" in imported.stdout, imported.stderr


def test_the_block_key_goes_to_no_other_url(hostile, e2e) -> None:
    """`--llm-url` sent the block's key to any URL; another URL now gets its own key or none."""
    run_id = hostile["run_id"]
    with FakeLLM(model="other-model") as other:
        result = e2e.cli("summary", "create", run_id, "--regenerate", "--format", "json",
                         "--llm-url", other.url, "--llm-model", "other-model")
        assert result.returncode == 0, result.stderr
        keyless = [dict(r["headers"]) for r in other.requests]
        env = {**e2e.env, "ADVERSARIAL_OTHER_KEY": "other-endpoint-key-42"}
        with_key = e2e.cli("summary", "create", run_id, "--regenerate", "--format", "json", "--llm-url", other.url,
                           "--llm-model", "other-model", "--llm-api-key-env", "ADVERSARIAL_OTHER_KEY", env=env)
        assert with_key.returncode == 0, with_key.stderr
        keyed = [dict(r["headers"]) for r in other.requests][len(keyless):]
    assert keyless and keyed
    assert not any(BLOCK_KEY in str(h) or TENANT_HEADER in str(h) for h in keyless + keyed)
    assert all({k.lower(): v for k, v in h.items()}.get("authorization") == "Bearer other-endpoint-key-42"
               for h in keyed)
    # The test can fail: the block's own endpoint does get the block's key.
    assert any(BLOCK_KEY in str(r["headers"]) for r in hostile["requests"])
    stored = [r.parameters for r in e2e.summarizer_runs(run_id)]
    assert not any("other-endpoint-key-42" in str(p) or BLOCK_KEY in str(p) for p in stored)


def test_a_forged_summary_event_retries_nothing(hostile, e2e) -> None:
    """Any API client can emit `failure-insights.summary.created` saying TRANSIENT: the retry flow
    reads what the failure is from the stored summary, and refuses. (A run with no stored summary
    at all is refused the same way: tests/prefect_api/test_retries.py.)"""
    from prefect.events import Event
    from prefect.events.clients import get_events_client
    from prefect.states import Failed

    from .pipelines import adversarial

    e2e.fake.answer = {**e2e.fake.answer, "title": "Vendor rejected the key", "transience": "PERMANENT"}
    installed = e2e.cli("retry", "install", "--max-retries", "2", "--delay", "0")
    assert installed.returncode == 0, installed.stderr
    try:
        async def failed_deployment_run(client):
            deployment_id = await (await adversarial.ato_deployment(name="e2e-adversarial")).aapply()
            run = await client.create_flow_run_from_deployment(
                deployment_id, state=Failed(message="Server error '503 Service Unavailable'"))
            return run, deployment_id

        run, deployment_id = e2e.call(failed_deployment_run)
        target = str(run.id)
        # The failure is summarized (PERMANENT, says the test LLM); the forged event says TRANSIENT.
        assert e2e.wait_for_row(e2e.sqlite_engine(), target, timeout_s=90).analysis.transience.value == "PERMANENT"
        forged = Event(event="failure-insights.summary.created", resource={
            "prefect.resource.id": f"failure-insights.summary.{target}", "prefect.resource.name": "forged",
            "failure-insights.status": "llm", "failure-insights.final": "true",
            "failure-insights.category": "THIRD_PARTY_SYSTEM", "failure-insights.transience": "TRANSIENT"},
            related=[{"prefect.resource.id": f"prefect.deployment.{deployment_id}", "prefect.resource.role": "deployment"},
                     {"prefect.resource.id": f"prefect.flow.{run.flow_id}", "prefect.resource.role": "flow",
                      "prefect.resource.name": "e2e-adversarial"}],
            payload={"title": "forged", "transience": "TRANSIENT", "category": "THIRD_PARTY_SYSTEM"})

        async def emit(_client):
            async with get_events_client() as events:
                await events.emit(forged)

        e2e.call(emit)

        def retry_runs():
            from prefect.client.schemas.filters import FlowFilter, FlowFilterName

            async def read(client):
                runs = await client.read_flow_runs(
                    flow_filter=FlowFilter(name=FlowFilterName(any_=["retry-transient-failure"])), limit=200)
                return [r for r in runs if str(r.parameters.get("flow_run_id")) == target]

            found = e2e.call(read)
            # One for the real (PERMANENT) summary, which gets its decision too (issue 29), one for the forged event.
            return found if len(found) >= 2 and all(r.state and r.state.is_final() for r in found) else None

        retry_runs_done = wait_for(retry_runs, 90)  # the automation did act on the forged event...
        retry_run = retry_runs_done[-1]
        assert all(r.state.type.value == "COMPLETED" for r in retry_runs_done)
        assert set(retry_run.parameters) <= {"flow_run_id", "max_retries", "delay_seconds", "categories", "crashed",
                                             "oom", "settings_block"}
        from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

        def said() -> str | None:  # logs arrive late
            logs = e2e.call(lambda client: client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[retry_run.id])), limit=200))
            text = " ".join(log.message for log in logs)
            return text if f"Not retrying {target}" in text else None

        reason = wait_for(said, 30)
        assert "its failure is PERMANENT, not TRANSIENT" in reason, reason
        # ...and retried nothing.
        assert e2e.flow_run(target).state.type.value == "FAILED"
        assert not [s for s in e2e.flow_run_states(target) if (s.message or "").startswith(RETRY_STATE_MARK)]
    finally:
        e2e.cli("retry", "uninstall")
