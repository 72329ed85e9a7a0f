"""The automations acting on summary events match what they promise: checked with Prefect's own
server-side trigger matching against the events the summarizer really builds."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from uuid import uuid4

import pytest
from prefect.server.events.schemas.automations import EventTrigger as ServerTrigger
from prefect.server.events.schemas.events import ReceivedEvent
from prefect_failure_insights.automations import notify, retry
from prefect_failure_insights.automations.installing import same
from prefect_failure_insights.blocks import FailureInsightsSettings

from prefect_failure_insights.analysis.answer import analyze
from prefect_failure_insights.analysis.compose import compose_summary
from prefect_failure_insights.evidence.builder import build_evidence
from prefect_failure_insights.models import Summary, Transience
from prefect_failure_insights.prefect_api.events import summary_event
from prefect_failure_insights.testing.samples import failed_run

FLOW, DEPLOYMENT = str(uuid4()), str(uuid4())


def _summary(status: str = "llm", transience: Transience = Transience.TRANSIENT, flow_name: str = "nightly-orders",
             deployment: bool = True, tags: tuple[str, ...] = ("critical",)) -> Summary:
    failed, lines = failed_run(flow_name=flow_name)
    evidence = build_evidence(failed, lines)
    result = asyncio.run(analyze(failed, evidence, FailureInsightsSettings(), llm=None, no_llm_reason="no LLM"))
    summary = compose_summary(failed, evidence, result)
    run = summary.run.model_copy(update={"flow_id": FLOW, "tags": list(tags),
                                         "deployment_id": DEPLOYMENT if deployment else None,
                                         "deployment": f"{flow_name}/prod" if deployment else None})
    return summary.model_copy(update={"run": run, "status": status,
                                      "analysis": summary.analysis.model_copy(update={"transience": transience})})


def _fires(trigger, event) -> bool:
    server = ServerTrigger.model_validate(trigger.model_dump(mode="json"))
    received = ReceivedEvent.model_validate({**event.model_dump(mode="json"),
                                             "received": datetime.now(timezone.utc).isoformat()})
    return server.covers(received)


def test_the_fixture_is_a_transient_vendor_failure() -> None:
    assert _summary().analysis.category.value == "THIRD_PARTY_SYSTEM"


def test_notifications_fire_for_final_summaries_only_unless_asked() -> None:
    final_only, both = notify.notification_trigger(notify.Scope()), notify.notification_trigger(
        notify.Scope(include_provisional=True))
    provisional, final = summary_event(_summary("provisional"), "created"), summary_event(_summary("llm"), "updated")
    fallback = summary_event(_summary("fallback"), "created")
    assert (_fires(final_only, provisional), _fires(final_only, final), _fires(final_only, fallback)) == (
        False, True, True)
    assert _fires(both, provisional) and _fires(both, final)


def test_notification_scopes_narrow_by_category_tag_and_deployment() -> None:
    event = summary_event(_summary(tags=("critical", "nightly")), "created")
    cases = {
        notify.Scope(categories=("THIRD_PARTY_SYSTEM",)): True,
        notify.Scope(categories=("INPUT_DATA_QUALITY", "WORKFLOW_ENGINE")): False,
        notify.Scope(tags=("nightly",)): True,
        notify.Scope(tags=("other",)): False,
        notify.Scope(deployment_ids=(DEPLOYMENT,)): True,
        notify.Scope(deployment_ids=(str(uuid4()),)): False,
        notify.Scope(categories=("THIRD_PARTY_SYSTEM",), tags=("other",)): False,  # fields are ANDed
    }
    for scope, expected in cases.items():
        assert _fires(notify.notification_trigger(scope), event) is expected, scope


def test_retries_decide_on_every_final_summary_of_a_deployment_run_not_our_flows() -> None:
    """Issue 29: a permanent failure reaches the retry flow too, which records why it is not retried."""
    trigger = retry.retry_trigger()
    for fired in (_summary(), _summary(transience=Transience.PERMANENT), _summary(transience=Transience.INTERMITTENT)):
        assert _fires(trigger, summary_event(fired, "created")) and _fires(trigger, summary_event(fired, "updated"))
    refused = {
        "provisional": _summary("provisional"),
        "no deployment": _summary(deployment=False),
        "own flow": _summary(flow_name="summarize-failure"),
        "retry flow": _summary(flow_name="retry-transient-failure"),
    }
    for why, summary in refused.items():
        assert not _fires(trigger, summary_event(summary, "created")), why


def test_a_retry_decision_never_starts_the_retry_flow_again() -> None:
    """The loop guard: the decision's event names the same summary, but is not a summary event."""
    from prefect_failure_insights.models import RetryDecision, RetryOutcome
    from prefect_failure_insights.prefect_api.events import decision_event

    summary = _summary()
    for verdict in ("retried", "not_retried"):
        outcome = RetryOutcome(flow_run_id=summary.run.id, decision=RetryDecision(
            decision=verdict, rule="transient", reason="x (rule transient)", attempt=1, retries=1, max_retries=1))
        assert not _fires(retry.retry_trigger(), decision_event(outcome, summary))


def test_the_retry_action_passes_the_failed_run_and_the_policy_only() -> None:
    """Issue 25: the event's fields (transience, category, title) are not passed on: anyone can
    emit an event, so the retry flow reads what the failure is from the stored summary."""
    automation = retry.build_automation(uuid4(), 3, 30.0, categories=("THIRD_PARTY_SYSTEM",), crashed=True)
    params = automation.actions[0].parameters
    assert params["flow_run_id"] == "{{ event.resource.id | replace('failure-insights.summary.', '') }}"
    assert (params["max_retries"], params["delay_seconds"], params["categories"]) == (3, 30.0, ["THIRD_PARTY_SYSTEM"])
    assert (params["crashed"], params["oom"]) == (True, False)
    assert set(params) == {"flow_run_id", "max_retries", "delay_seconds", "categories", "crashed", "oom"}
    assert not any("event.payload" in str(v) for v in params.values())
    assert "not out of memory, SIGKILL" in automation.description


def test_the_retry_flow_takes_no_field_of_the_event() -> None:
    """The deployed retry flow's parameters: the run and the policy, nothing an event could forge."""
    from prefect_failure_insights.flows.retry_transient_failure import retry_transient_failure

    assert set(retry_transient_failure.parameters.properties) == {
        "flow_run_id", "max_retries", "delay_seconds", "categories", "crashed", "oom", "settings_block"}


def test_oom_alone_is_refused() -> None:
    from prefect_failure_insights.exceptions import InputError

    with pytest.raises(InputError, match="use it with --crashed"):
        retry.check_limits(1, 60, crashed=False, oom=True)
    retry.check_limits(1, 60, crashed=True, oom=True)


@pytest.mark.parametrize(("max_retries", "delay"), [(0, 1), (11, 1), (1, -1), (1, 86401)])
def test_retry_limits_nobody_means_are_refused(max_retries: int, delay: float) -> None:
    from prefect_failure_insights.exceptions import InputError

    with pytest.raises(InputError, match="out of range"):
        retry.check_limits(max_retries, delay)


def test_the_notification_template_renders_the_summary_with_prefects_own_renderer() -> None:
    from prefect.server.utilities.user_templates import render_user_template_sync, validate_user_template

    event = summary_event(_summary(), "updated")
    for template in (notify.SUBJECT, notify.BODY):
        validate_user_template(template)
    body = render_user_template_sync(notify.BODY, {"event": event})
    assert body.startswith(event.payload["title"])
    assert "How to fix it:\n1. " in body and "Category: THIRD_PARTY_SYSTEM, transient, confidence" in body
    assert "Provisional" not in body
    provisional = render_user_template_sync(notify.BODY, {"event": summary_event(_summary("provisional"), "created")})
    assert "Provisional summary (the final one follows)." in provisional
    assert "What ended them" not in body


def test_the_notification_says_what_ended_the_similar_failures() -> None:
    from datetime import timedelta

    from prefect.server.utilities.user_templates import render_user_template_sync

    from prefect_failure_insights.models import Resolution, SimilarFailures

    at = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
    history = [Resolution(flow_run_id=f"r{i}", failed_at=at, outcome="retry", automatic=True,
                          resolved_at=at + timedelta(minutes=3)) for i in range(2)]
    summary = _summary()
    summary = summary.model_copy(update={"similar": SimilarFailures(checked=True, count=2, flows=["nightly-orders"],
                                                                    history=history)})
    event = summary_event(summary, "updated")
    assert event.payload["fixed_by_retry"] == 2
    body = render_user_template_sync(notify.BODY, {"event": event})
    assert ("What ended them: Twice before; each time a retry fixed it (failure-insights' automatic retry), last on "
            "2026-12-01 09:03 UTC, 3 min after it failed.") in body


def test_reinstalling_the_same_automation_is_a_no_op_whatever_the_set_order() -> None:
    block = uuid4()
    a = notify.build_automation("slack-webhook/ops", block, notify.Scope(tags=("a", "b")))
    b = notify.build_automation("slack-webhook/ops", block, notify.Scope(tags=("a", "b")))
    dumped = a.model_dump(mode="json")
    dumped["trigger"]["expect"] = list(reversed(dumped["trigger"]["expect"]))
    assert same(type(a).model_validate(dumped), b)
    assert not same(a, notify.build_automation("slack-webhook/ops", block, notify.Scope(tags=("a",))))


def _status_of(automation) -> retry.RetryStatus:
    class Client:  # the two calls `status` makes
        async def read_automations_by_name(self, name):
            return [automation] if name == retry.AUTOMATION_NAME else []

        async def read_deployment(self, deployment_id):
            return object()

    return asyncio.run(retry.status(Client()))


def test_retry_status_says_whether_crashed_runs_are_retried() -> None:
    from prefect.events.schemas.automations import Automation

    def installed(**kwargs) -> Automation:
        core = retry.build_automation(uuid4(), 2, 1.0, categories=("THIRD_PARTY_SYSTEM",), **kwargs)
        return Automation(id=uuid4(), **core.model_dump())

    off, on, oom = _status_of(installed()), _status_of(installed(crashed=True)), _status_of(installed(crashed=True,
                                                                                                       oom=True))
    assert off.problem is None and not off.crashed and "only when their summary says TRANSIENT" in off.detail
    assert on.crashed and not on.oom and "retried when evicted, preempted" in on.detail and "not out of memory" in on.detail
    assert oom.oom and "SIGTERM, out of memory, SIGKILL" in oom.detail


def test_retry_status_asks_to_reinstall_an_automation_that_decides_on_transient_failures_only() -> None:
    """An automation installed before issue 29 fires for TRANSIENT summaries only: the other failures
    would get no decision, and `retry status` (and `doctor`) say what to do."""
    from prefect.events.schemas.automations import Automation

    core = retry.build_automation(uuid4(), 1, 60.0, categories=("THIRD_PARTY_SYSTEM",))
    old = core.model_copy(update={"trigger": core.trigger.model_copy(update={"match": {
        **core.trigger.match.root, "failure-insights.transience": "TRANSIENT"}})})
    st = _status_of(Automation(id=uuid4(), **old.model_dump()))
    assert st.problem and "transient failures only" in st.problem and "retry install` again" in st.problem
