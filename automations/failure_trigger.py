"""The automation that starts `summarize-failure` whenever a flow run fails or crashes.

One definition, installed idempotently by ``failure-insights automation install``
(also run by ``failure-insights serve``)::

    trigger: prefect.flow-run.Failed | prefect.flow-run.Crashed, any flow run,
             except runs of summarize-failure and batch-insights
    action:  run deployment summarize-failure/failure-insights
             with flow_run_id = the failed run's id

Measured pitfalls this definition avoids (see the README):

* ``"{{ flow_run.id }}"`` as a parameter silently creates no run (the server renders
  it through ``tojson`` and a UUID is not JSON-serialisable): ``| string`` is needed;
* excluding several flows needs one ``match_related`` spec per flow (specs are ANDed;
  several ``!`` values in one spec are ORed and exclude nothing);
* a tag-based exclusion would miss untagged runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.events.actions import RunDeployment
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.exceptions import ObjectNotFound

from prefect_failure_insights.defaults import (
    OWN_FLOWS,
    SUMMARIZER_DEPLOYMENT,
    SUMMARIZER_FLOW,
)
from prefect_failure_insights.automations.installing import InstallResult, delete_named, upsert
from prefect_failure_insights.exceptions import ConfigurationError

AUTOMATION_NAME = "failure-insights: summarize failed flow runs"
FAILURE_EVENTS = frozenset({"prefect.flow-run.Failed", "prefect.flow-run.Crashed"})
FLOW_RUN_ID_TEMPLATE = "{{ event.resource.id | replace('prefect.flow-run.', '') }}"


def failure_trigger() -> EventTrigger:
    """Fires once per Failed or Crashed flow run, except the plugin's own flows."""
    return EventTrigger(
        expect=set(FAILURE_EVENTS),
        match={"prefect.resource.id": "prefect.flow-run.*"},
        match_related=[
            {"prefect.resource.role": "flow", "prefect.resource.name": f"!{name}"}
            for name in OWN_FLOWS
        ],
        posture=Posture.Reactive,
        threshold=1,
        within=timedelta(0),
    )


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
