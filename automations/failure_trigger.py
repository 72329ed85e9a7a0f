"""The automation that starts `summarize-failure` whenever a flow run fails or crashes.

One definition, installed idempotently by ``failure-insights automation install``
(also run by ``failure-insights serve``)::

    trigger: prefect.flow-run.* whose state type is FAILED or CRASHED (whatever the state's
             name: Failed, Crashed, TimedOut, a user's own), any flow run,
             except runs of summarize-failure and batch-insights
    action:  run deployment summarize-failure/failure-insights
             with flow_run_id = the failed run's id

Measured pitfalls this definition avoids (docs/guides/getting-started.md, "The automation"):

* ``"{{ flow_run.id }}"`` as a parameter silently creates no run (the server renders
  it through ``tojson`` and a UUID is not JSON-serialisable): ``| string`` is needed;
* excluding several flows needs one ``match_related`` spec per flow (specs are ANDed;
  several ``!`` values in one spec are ORed and exclude nothing);
* a tag-based exclusion would miss untagged runs;
* a failure is a state *type*: Prefect names a timed-out run's Failed-type state ``TimedOut``
  (event ``prefect.flow-run.TimedOut``) and a flow may return ``Failed(name="ContractViolated")``;
  every flow-run event carries the ``prefect.state-type`` resource label, so the trigger matches that.

``covers`` evaluates the trigger on the client, for `serve`'s start at the event: the same rules as
the server's (trailing ``*`` wildcards, ``!`` negations, every ``match_related`` spec must hold), with
no import from ``prefect.server`` (absent from the ``prefect-client`` package).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.events.actions import RunDeployment
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.events.schemas.events import Event, ResourceSpecification
from prefect.exceptions import ObjectNotFound

from prefect_failure_insights.defaults import (
    OWN_FLOWS,
    SUMMARIZER_DEPLOYMENT,
    SUMMARIZER_FLOW,
)
from prefect_failure_insights.automations.installing import InstallResult, delete_named, upsert
from prefect_failure_insights.exceptions import ConfigurationError

AUTOMATION_NAME = "failure-insights: summarize failed flow runs"
FLOW_RUN_EVENTS = "prefect.flow-run.*"
#: The state types a failure summary is made for; state names vary (Failed, Crashed, TimedOut, ...).
FAILURE_STATE_TYPES = ("FAILED", "CRASHED")
STATE_TYPE_LABEL = "prefect.state-type"
FLOW_RUN_ID_TEMPLATE = "{{ event.resource.id | replace('prefect.flow-run.', '') }}"


def failure_trigger() -> EventTrigger:
    """Fires once per flow run entering a FAILED- or CRASHED-type state, except the plugin's own flows."""
    return EventTrigger(
        expect={FLOW_RUN_EVENTS},
        match={"prefect.resource.id": "prefect.flow-run.*", STATE_TYPE_LABEL: list(FAILURE_STATE_TYPES)},
        match_related=[
            {"prefect.resource.role": "flow", "prefect.resource.name": f"!{name}"}
            for name in OWN_FLOWS
        ],
        posture=Posture.Reactive,
        threshold=1,
        within=timedelta(0),
    )


def covers(trigger: EventTrigger, event: Event) -> bool:
    """Whether ``trigger`` fires for ``event``, evaluated as the server does for a reactive trigger
    with no threshold: the event's name against ``expect``/``after``, its resource against ``match``
    and its related resources against every ``match_related`` spec."""
    names = trigger.expect | trigger.after  # an empty ``expect`` matches every name, whatever ``after`` holds
    if trigger.expect and not re.match("|".join(re.escape(n).replace("\\*", ".+") for n in names), event.event):
        return False
    if not trigger.match.includes([event.resource]):
        return False
    related = trigger.match_related if isinstance(trigger.match_related, list) else [trigger.match_related]
    return all(ResourceSpecification.model_validate(spec).includes(event.related) for spec in related)


def build_automation(deployment_id: UUID) -> AutomationCore:
    """The automation running deployment ``deployment_id`` for each failed run.

    Only ``flow_run_id`` is passed; the server merges the deployment's own default
    parameters (e.g. ``settings_block``) into every run.
    """
    return AutomationCore(
        name=AUTOMATION_NAME,
        description=(
            "Installed by prefect-failure-insights: runs summarize-failure for every failed "
            "or crashed flow run, so its page carries a failure summary."
        ),
        enabled=True,
        trigger=failure_trigger(),
        actions=[
            RunDeployment(
                source="selected",
                deployment_id=deployment_id,
                parameters={"flow_run_id": FLOW_RUN_ID_TEMPLATE},
            )
        ],
    )


async def deployment_id(client: PrefectClient, deployment_name: str) -> UUID:
    try:
        return (await client.read_deployment_by_name(deployment_name)).id
    except ObjectNotFound as exc:
        raise ConfigurationError(
            f"No deployment {deployment_name!r} on {client.api_url}: start it with "
            "`failure-insights serve` or `prefect deploy --all` (prefect.yaml) first."
        ) from exc


async def install(client: PrefectClient, deployment_name: str = SUMMARIZER_DEPLOYMENT) -> InstallResult:
    """Create the automation, or update it in place; running it twice changes nothing.

    Duplicates left by earlier manual installs are removed.
    """
    return await upsert(client, build_automation(await deployment_id(client, deployment_name)))


@dataclass(frozen=True)
class AutomationStatus:
    installed: bool
    enabled: bool = False
    automation_id: UUID | None = None
    deployment_name: str | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.installed and self.enabled and self.problem is None


async def status(client: PrefectClient) -> AutomationStatus:
    """Whether the automation is installed, enabled and pointing at an existing deployment."""
    found = await client.read_automations_by_name(AUTOMATION_NAME)
    if not found:
        return AutomationStatus(
            installed=False, problem="not installed: run `failure-insights automation install`"
        )
    automation = found[0]
    deployment_name = None
    problem = None
    action = next((a for a in automation.actions if isinstance(a, RunDeployment)), None)
    if action is None or action.deployment_id is None:
        problem = "it has no run-deployment action: reinstall with `failure-insights automation install`"
    else:
        try:
            deployment = await client.read_deployment(action.deployment_id)
            deployment_name = f"{SUMMARIZER_FLOW}/{deployment.name}"
        except ObjectNotFound:
            problem = (
                "its deployment no longer exists: start `failure-insights serve` (or "
                "`prefect deploy`) and run `failure-insights automation install` again"
            )
    if not automation.enabled and problem is None:
        problem = "it is disabled: enable it in the UI (Automations) or reinstall it"
    if len(found) > 1 and problem is None:
        problem = f"{len(found)} copies are installed: reinstall to keep one"
    return AutomationStatus(
        installed=True,
        enabled=automation.enabled,
        automation_id=automation.id,
        deployment_name=deployment_name,
        problem=problem,
    )


async def uninstall(client: PrefectClient) -> int:
    """Delete the automation (every copy); return how many were deleted."""
    return await delete_named(client, AUTOMATION_NAME)
