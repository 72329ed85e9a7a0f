"""Automatic retries of transient failures (opt-in): ``failure-insights retry install``.

    trigger: failure-insights.summary.created | .updated of a final summary whose transience is
             TRANSIENT and whose category is retried (THIRD_PARTY_SYSTEM by default), of a
             deployment's run, not of the plugin's own flows
    action:  run deployment retry-transient-failure/failure-insights-retry with the failed run's
             id and the limits, nothing else

The trigger is the first half of the guard, and trusts nothing: any API client can emit an
event. The flow it starts (`flows.retry_transient_failure`) decides from the summary the plugin
stored for that run and from the run itself, enforces the limits itself, and counts the run's
automatic retries from its state history: at most ``max_retries`` per run whatever happens to
events, processes or databases. An automation installed by an earlier version passes the
summary's fields as parameters, which the flow no longer takes: run `retry install` again.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.events.actions import RunDeployment
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.exceptions import ObjectNotFound

from prefect_failure_insights.automations.failure_trigger import deployment_id
from prefect_failure_insights.automations.installing import InstallResult, delete_named, upsert
from prefect_failure_insights.defaults import (
    OWN_FLOWS,
    RETRY_CATEGORIES,
    RETRY_DELAY_SECONDS,
    RETRY_DEPLOYMENT,
    RETRY_MAX_DELAY_SECONDS,
    RETRY_MAX_RETRIES,
    RETRY_MAX_RETRIES_LIMIT,
    SUMMARY_CREATED_EVENT,
    SUMMARY_RESOURCE_PREFIX,
    SUMMARY_UPDATED_EVENT,
)
from prefect_failure_insights.exceptions import InputError

AUTOMATION_NAME = "failure-insights: retry transient failures"
FLOW_RUN_ID_TEMPLATE = "{{ event.resource.id | replace('" + SUMMARY_RESOURCE_PREFIX + "', '') }}"


def check_limits(max_retries: int, delay_s: float) -> None:
    """InputError for limits no one means."""
    if not 1 <= max_retries <= RETRY_MAX_RETRIES_LIMIT:
        raise InputError(f"--max-retries {max_retries} is out of range: use 1 to {RETRY_MAX_RETRIES_LIMIT}.")
    if not 0 <= delay_s <= RETRY_MAX_DELAY_SECONDS:
        raise InputError(f"--delay {delay_s:g} is out of range: use 0 to {RETRY_MAX_DELAY_SECONDS:g} seconds.")


def retry_trigger(categories: tuple[str, ...]) -> EventTrigger:
    """Fires for each final TRANSIENT summary in ``categories`` of a deployment's run, not of our flows."""
    return EventTrigger(
        expect={SUMMARY_CREATED_EVENT, SUMMARY_UPDATED_EVENT},
        match={"prefect.resource.id": f"{SUMMARY_RESOURCE_PREFIX}*", "failure-insights.final": "true",
               "failure-insights.transience": "TRANSIENT", "failure-insights.category": list(categories)},
        match_related=[{"prefect.resource.role": "deployment"},
                       *({"prefect.resource.role": "flow", "prefect.resource.name": f"!{name}"} for name in OWN_FLOWS)],
        posture=Posture.Reactive, threshold=1, within=0,
    )


def build_automation(retry_deployment_id: UUID, max_retries: int, delay_s: float,
                     *, categories: tuple[str, ...]) -> AutomationCore:
    return AutomationCore(
        name=AUTOMATION_NAME,
        description=(f"Installed by prefect-failure-insights (`failure-insights retry install`): retries a "
                     f"deployment's run whose failure is transient ({', '.join(categories)}), at most "
                     f"{max_retries} time(s) per run, {delay_s:g} s after it failed."),
        enabled=True,
        trigger=retry_trigger(categories),
        actions=[RunDeployment(source="selected", deployment_id=retry_deployment_id, parameters={
            "flow_run_id": FLOW_RUN_ID_TEMPLATE,
            "max_retries": max_retries,
            "delay_seconds": delay_s,
            "categories": list(categories),
        })],
    )


async def install(client: PrefectClient, max_retries: int = RETRY_MAX_RETRIES, delay_s: float = RETRY_DELAY_SECONDS,
                  *, categories: tuple[str, ...] = RETRY_CATEGORIES) -> InstallResult:
    """Install (or update in place) the retry automation."""
    check_limits(max_retries, delay_s)
    return await upsert(client, build_automation(await deployment_id(client, RETRY_DEPLOYMENT), max_retries,
                                                 delay_s, categories=tuple(categories)))


@dataclass(frozen=True)
class RetryStatus:
    installed: bool
    enabled: bool = False
    detail: str = ""
    problem: str | None = None


async def status(client: PrefectClient) -> RetryStatus:
    """Whether the retry automation is installed, enabled and starts an existing deployment."""
    found = await client.read_automations_by_name(AUTOMATION_NAME)
    if not found:
        return RetryStatus(installed=False, detail="not installed (opt-in: `failure-insights retry install`)")
    automation = found[0]
    action = next((a for a in automation.actions if isinstance(a, RunDeployment)), None)
    problem = None
    if action is None or action.deployment_id is None:
        problem = "it has no run-deployment action: reinstall with `failure-insights retry install`"
    else:
        try:
            await client.read_deployment(action.deployment_id)
        except ObjectNotFound:
            problem = (f"its deployment {RETRY_DEPLOYMENT} no longer exists: start `failure-insights serve` (or "
                       "`prefect deploy`) and run `failure-insights retry install` again")
    params = (action.parameters or {}) if action is not None else {}
    if problem is None and "transience" in params:
        problem = ("it was installed by an earlier version, whose retry flow trusted the event's fields: run "
                   "`failure-insights retry install` again")
    if problem is None and not automation.enabled:
        problem = "it is disabled: enable it in the UI (Automations) or reinstall it"
    detail = (f"at most {params.get('max_retries')} retr(ies) per run after {params.get('delay_seconds')} s, "
              f"categories {', '.join(params.get('categories') or [])}")
    return RetryStatus(installed=True, enabled=automation.enabled, detail=detail, problem=problem)


async def uninstall(client: PrefectClient) -> int:
    return await delete_named(client, AUTOMATION_NAME)
