"""Automatic retries (opt-in): ``failure-insights retry install [--crashed [--oom]]``.

    trigger: failure-insights.summary.created | .updated of every final summary of a deployment's
             run, not of the plugin's own flows
    action:  run deployment retry-transient-failure/failure-insights-retry with the failed run's
             id and the policy (limits, categories, whether crashed runs are retried), nothing else

The trigger only says which failures get a decision; it trusts nothing (any API client can emit
an event). The flow it starts (`flows.retry_transient_failure`) decides from the summary the
plugin stored for that run and from the run itself, records the decision (retried, or why not)
on the summary and in a ``failure-insights.retry.decided`` event, enforces the limits itself, and
counts the run's automatic retries from its state history: at most ``max_retries`` per run
whatever happens to events, processes or databases. The decision event is not one the trigger
expects: a decision cannot start the flow again.

An automation installed by an earlier version fires for TRANSIENT summaries only (the others get
no decision), or passes the summary's fields as parameters, which the flow no longer takes:
`retry status` and `doctor` say so; run `retry install` again.
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
    RETRY_CRASHED,
    RETRY_DELAY_SECONDS,
    RETRY_DEPLOYMENT,
    RETRY_MAX_DELAY_SECONDS,
    RETRY_MAX_RETRIES,
    RETRY_MAX_RETRIES_LIMIT,
    RETRY_OOM,
    SUMMARY_CREATED_EVENT,
    SUMMARY_RESOURCE_PREFIX,
    SUMMARY_UPDATED_EVENT,
)
from prefect_failure_insights.exceptions import InputError

AUTOMATION_NAME = "failure-insights: retry transient failures"
#: What ``--crashed`` retries, and what ``--oom`` adds (`evidence.crashes.CRASH_RULES`).
CRASHED_CAUSES = "evicted, preempted, node lost, pod never started, SIGTERM"
OOM_CAUSES = "out of memory, SIGKILL"
FLOW_RUN_ID_TEMPLATE = "{{ event.resource.id | replace('" + SUMMARY_RESOURCE_PREFIX + "', '') }}"


def check_limits(max_retries: int, delay_s: float, *, crashed: bool = RETRY_CRASHED, oom: bool = RETRY_OOM) -> None:
    """InputError for limits no one means, and for ``--oom`` alone."""
    if oom and not crashed:
        raise InputError("--oom retries crashed runs killed for memory: use it with --crashed.")
    if not 1 <= max_retries <= RETRY_MAX_RETRIES_LIMIT:
        raise InputError(f"--max-retries {max_retries} is out of range: use 1 to {RETRY_MAX_RETRIES_LIMIT}.")
    if not 0 <= delay_s <= RETRY_MAX_DELAY_SECONDS:
        raise InputError(f"--delay {delay_s:g} is out of range: use 0 to {RETRY_MAX_DELAY_SECONDS:g} seconds.")


def retry_trigger() -> EventTrigger:
    """Fires for each final summary of a deployment's run, not of our flows: the flow decides on each."""
    return EventTrigger(
        expect={SUMMARY_CREATED_EVENT, SUMMARY_UPDATED_EVENT},
        match={"prefect.resource.id": f"{SUMMARY_RESOURCE_PREFIX}*", "failure-insights.final": "true"},
        match_related=[{"prefect.resource.role": "deployment"},
                       *({"prefect.resource.role": "flow", "prefect.resource.name": f"!{name}"} for name in OWN_FLOWS)],
        posture=Posture.Reactive, threshold=1, within=0,
    )


def crashed_scope(crashed: bool, oom: bool) -> str:
    """Which crashed runs are retried, in words (`retry status`, `doctor`, the automation's description)."""
    if not crashed:
        return "crashed runs: only when their summary says TRANSIENT (`--crashed` retries infrastructure crashes)"
    return f"crashed runs: retried when {CRASHED_CAUSES}" + (f", {OOM_CAUSES}" if oom else
                                                                   f"; not {OOM_CAUSES} (`--oom`)")


def build_automation(retry_deployment_id: UUID, max_retries: int, delay_s: float, *, categories: tuple[str, ...],
                     crashed: bool = RETRY_CRASHED, oom: bool = RETRY_OOM) -> AutomationCore:
    return AutomationCore(
        name=AUTOMATION_NAME,
        description=(f"Installed by prefect-failure-insights (`failure-insights retry install`): decides on every "
                     f"summarized failure of a deployment's run, and retries one whose failure is transient "
                     f"({', '.join(categories)}) or, if asked, whose infrastructure crashed it; at most "
                     f"{max_retries} time(s) per run, {delay_s:g} s after the decision; "
                     f"{crashed_scope(crashed, oom)}."),
        enabled=True,
        trigger=retry_trigger(),
        actions=[RunDeployment(source="selected", deployment_id=retry_deployment_id, parameters={
            "flow_run_id": FLOW_RUN_ID_TEMPLATE,
            "max_retries": max_retries,
            "delay_seconds": delay_s,
            "categories": list(categories),
            "crashed": crashed,
            "oom": oom,
        })],
    )


async def install(client: PrefectClient, max_retries: int = RETRY_MAX_RETRIES, delay_s: float = RETRY_DELAY_SECONDS,
                  *, categories: tuple[str, ...] = RETRY_CATEGORIES, crashed: bool = RETRY_CRASHED,
                  oom: bool = RETRY_OOM) -> InstallResult:
    """Install (or update in place) the retry automation."""
    check_limits(max_retries, delay_s, crashed=crashed, oom=oom)
    return await upsert(client, build_automation(await deployment_id(client, RETRY_DEPLOYMENT), max_retries,
                                                 delay_s, categories=tuple(categories), crashed=crashed, oom=oom))


@dataclass(frozen=True)
class RetryStatus:
    installed: bool
    enabled: bool = False
    detail: str = ""
    problem: str | None = None
    crashed: bool = False
    oom: bool = False


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
    match = automation.trigger.match if isinstance(automation.trigger, EventTrigger) else None
    if problem is None and match is not None and "failure-insights.transience" in match.root:
        problem = ("it was installed by an earlier version, which starts the retry flow for transient failures only "
                   "(the others get no decision): run `failure-insights retry install` again")
    if problem is None and not automation.enabled:
        problem = "it is disabled: enable it in the UI (Automations) or reinstall it"
    crashed, oom = bool(params.get("crashed")), bool(params.get("oom"))
    detail = (f"at most {params.get('max_retries')} retr(ies) per run after {params.get('delay_seconds')} s, "
              f"categories {', '.join(params.get('categories') or [])}; {crashed_scope(crashed, oom)}")
    return RetryStatus(installed=True, enabled=automation.enabled, detail=detail, problem=problem, crashed=crashed,
                       oom=oom)


async def uninstall(client: PrefectClient) -> int:
    return await delete_named(client, AUTOMATION_NAME)
