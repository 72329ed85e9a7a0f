"""The failure trigger: by state type, and evaluated on the client exactly as the server evaluates it."""

from __future__ import annotations

from uuid import uuid4

from hypothesis import given, settings
from hypothesis import strategies as st
from prefect.events.schemas.automations import EventTrigger, Posture
from prefect.events.schemas.events import Event
from prefect.server.events.schemas.automations import EventTrigger as ServerTrigger
from prefect.server.events.schemas.events import ReceivedEvent

from prefect_failure_insights.automations.failure_trigger import covers, failure_trigger
from prefect_failure_insights.defaults import OWN_FLOWS

STATE_NAMES = ["Failed", "Crashed", "TimedOut", "ContractViolated", "Completed", "Running", "Cancelled", "Late"]
STATE_TYPES = ["FAILED", "CRASHED", "COMPLETED", "RUNNING", "CANCELLED", "SCHEDULED"]
FLOWS = ["etl", "summarize-failure", "batch-insights", "etl-v2", "summarize-failure-2"]


def _event(name: str, state_type: str | None, flow: str | None, resource_kind: str = "prefect.flow-run") -> Event:
    resource = {"prefect.resource.id": f"{resource_kind}.{uuid4()}"}
    if state_type is not None:
        resource |= {"prefect.state-type": state_type, "prefect.state-name": name.rsplit(".", 1)[-1]}
    related = [] if flow is None else [{"prefect.resource.id": f"prefect.flow.{uuid4()}",
                                         "prefect.resource.role": "flow", "prefect.resource.name": flow}]
    return Event(event=name, resource=resource, related=related)


def _server_covers(trigger: EventTrigger, event: Event) -> bool:
    server = ServerTrigger.model_validate(trigger.model_dump(mode="json"))
    return server.covers(ReceivedEvent.model_validate(event.model_dump(mode="json")))


events = st.builds(
    _event,
    name=st.sampled_from(STATE_NAMES).map(lambda n: f"prefect.flow-run.{n}") | st.sampled_from(
        ["prefect.task-run.Failed", "prefect.flow-run", "failure-insights.summary.created", "prefect.flow-run.x.y"]),
    state_type=st.none() | st.sampled_from(STATE_TYPES),
    flow=st.none() | st.sampled_from(FLOWS),
    resource_kind=st.sampled_from(["prefect.flow-run", "prefect.task-run", "prefect.deployment"]),
)

patterns = st.sampled_from(["prefect.flow-run.*", "prefect.flow-run.Failed", "prefect.*", "prefect.task-run.*",
                            "failure-insights.*"])
label_values = st.sampled_from(STATE_TYPES + ["!FAILED", "FAIL*", "!C*"])
triggers = st.builds(
    lambda expect, after, match_type, related_names: EventTrigger(
        expect=set(expect), after=set(after), posture=Posture.Reactive, threshold=1,
        match={"prefect.resource.id": "prefect.flow-run.*"} | (
            {"prefect.state-type": match_type} if match_type else {}),
        match_related=[{"prefect.resource.role": "flow", "prefect.resource.name": n} for n in related_names]),
    expect=st.lists(patterns, max_size=3),
    after=st.lists(patterns, max_size=1),
    match_type=st.lists(label_values, max_size=3),
    related_names=st.lists(st.sampled_from(FLOWS).map(lambda n: f"!{n}") | st.sampled_from(["etl*", "etl"]),
                           max_size=3),
)


@settings(max_examples=400, deadline=None)
@given(trigger=triggers, event=events)
def test_the_client_evaluates_a_trigger_as_the_server_does(trigger: EventTrigger, event: Event) -> None:
    assert covers(trigger, event) == _server_covers(trigger, event)


@settings(max_examples=200, deadline=None)
@given(event=events)
def test_the_installed_trigger_fires_for_every_failed_state_whatever_its_name(event: Event) -> None:
    trigger = failure_trigger()
    expected = (event.resource.id.startswith("prefect.flow-run.") and event.event.startswith("prefect.flow-run.")
                and event.resource.get("prefect.state-type") in ("FAILED", "CRASHED")
                # every flow-run event names its flow; the plugin's own flows are excluded
                and any(r.get("prefect.resource.name") not in OWN_FLOWS for r in event.related))
    assert covers(trigger, event) == expected == _server_covers(trigger, event)


def test_a_timed_out_run_and_a_users_own_failed_state_fire_it() -> None:
    trigger = failure_trigger()
    assert covers(trigger, _event("prefect.flow-run.TimedOut", "FAILED", "etl"))
    assert covers(trigger, _event("prefect.flow-run.ContractViolated", "FAILED", "etl"))
    assert not covers(trigger, _event("prefect.flow-run.Completed", "COMPLETED", "etl"))
    assert not covers(trigger, _event("prefect.flow-run.Failed", "FAILED", "summarize-failure"))
