"""Notifications that carry the summary: an automation on the summary events that sends it
through any Prefect notification block (Slack, Microsoft Teams, e-mail, PagerDuty, a webhook).

One per notification block, installed idempotently by ``failure-insights notify install``::

    trigger: failure-insights.summary.created | .updated, of final summaries (or also of
             provisional ones), optionally only some categories, tags or deployments
    action:  send-notification through the block: title, category, what happened, how to
             fix it, links to the run and to the summary

A failure gets one notification: its final summary is announced once (a provisional summary
is announced too, but only ``--include-provisional`` notifies about it). A run that fails again
after a retry is a new failure, with a new final summary and a new notification.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.events.actions import SendNotification
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.exceptions import ObjectNotFound

from prefect_failure_insights.automations.installing import InstallResult, delete_named, upsert
from prefect_failure_insights.defaults import (
    SUMMARY_CREATED_EVENT,
    SUMMARY_RESOURCE_PREFIX,
    SUMMARY_UPDATED_EVENT,
)
from prefect_failure_insights.exceptions import InputError

NAME_PREFIX = "failure-insights: notify via "

#: The notification's subject and body: Jinja templates the server renders with the event.
#: Every value from a run or an LLM in the payload is redacted and made safe for messages.
SUBJECT = "Flow run failed: {{ event.payload.flow_name }}: {{ event.payload.title }}"
BODY = """\
{{ event.payload.title }}
{% if not event.payload.final %}Provisional summary (the final one follows).
{% endif %}{% if event.payload.logs_complete is false %}Made before the run's last log records arrived: an update follows when they do.
{% endif %}Flow run {{ event.payload.flow_run_name }} of {{ event.payload.flow_name }}\
{% if event.payload.deployment %} (deployment {{ event.payload.deployment }}){% endif %} \
ended {{ event.payload.state }}.
Category: {{ event.payload.category }}, {{ event.payload.transience | lower }}, \
confidence {{ (event.payload.confidence * 100) | round | int }}%\
{% if event.payload.auto_retries %}, retried automatically {{ event.payload.auto_retries }} time(s){% endif %}
{% if event.payload.similar_count %}Seen before: similar to {{ event.payload.similar_count }} earlier failure(s) in {{ event.payload.similar_flows | join(", ") }}.
{% endif %}{% if event.payload.history %}What ended them: {{ event.payload.history }}
{% endif %}
What happened: {{ event.payload.what_happened }}

How to fix it:
{% for step in event.payload.how_to_fix %}{{ loop.index }}. {{ step }}
{% endfor %}
{% if event.payload.run_url %}Run: {{ event.payload.run_url }}
{% endif %}{% if event.payload.artifact_url %}Summary: {{ event.payload.artifact_url }}
{% endif %}"""


@dataclass(frozen=True)
class Scope:
    """Which summaries notify: all final ones unless narrowed (values within a field are ORed,
    fields are ANDed)."""

    categories: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    deployment_ids: tuple[str, ...] = field(default=())
    include_provisional: bool = False


def automation_name(block: str) -> str:
    return f"{NAME_PREFIX}{block}"


def notification_trigger(scope: Scope) -> EventTrigger:
    """Fires once per summary event in ``scope``."""
    match: dict[str, str | list[str]] = {"prefect.resource.id": f"{SUMMARY_RESOURCE_PREFIX}*"}
    if not scope.include_provisional:
        match["failure-insights.final"] = "true"
    if scope.categories:
        match["failure-insights.category"] = list(scope.categories)
    related: list[dict[str, str | list[str]]] = []
    if scope.tags:
        related.append({"prefect.resource.role": "tag", "prefect.resource.id": [f"prefect.tag.{t}" for t in scope.tags]})
    if scope.deployment_ids:
        related.append({"prefect.resource.role": "deployment",
                        "prefect.resource.id": [f"prefect.deployment.{d}" for d in scope.deployment_ids]})
    return EventTrigger(expect={SUMMARY_CREATED_EVENT, SUMMARY_UPDATED_EVENT}, match=match,
                        match_related=related, posture=Posture.Reactive, threshold=1, within=0)


def build_automation(block: str, block_document_id: UUID, scope: Scope) -> AutomationCore:
    return AutomationCore(
        name=automation_name(block),
        description=("Installed by prefect-failure-insights (`failure-insights notify install`): sends each "
                     f"failure summary through the notification block {block}."),
        enabled=True,
        trigger=notification_trigger(scope),
        actions=[SendNotification(block_document_id=block_document_id, subject=SUBJECT, body=BODY)],
    )


async def notification_block_id(client: PrefectClient, block: str) -> UUID:
    """The id of the notification block ``block`` (``slug/name``); InputError when there is none."""
    slug, _, name = block.partition("/")
    if not slug or not name:
        raise InputError(f"--block {block!r} is not SLUG/NAME: e.g. slack-webhook/ops-alerts "
                         "(`prefect block ls` lists them).")
    try:
        document = await client.read_block_document_by_name(name, slug, include_secrets=False)
    except ObjectNotFound:
        raise InputError(f"No block {block} on {client.api_url}: create it (UI: Blocks, or "
                         "`SlackWebhook(url=...).save(...)`), or pick one from `prefect block ls`.") from None
    capabilities = document.block_schema.capabilities if document.block_schema else []
    if "notify" not in capabilities:
        raise InputError(f"Block {block} cannot send notifications: use a notification block "
                         "(slack-webhook, ms-teams-webhook, email, pager-duty-webhook, custom-webhook, ...).")
    return document.id


async def resolve_deployments(client: PrefectClient, names: tuple[str, ...]) -> tuple[str, ...]:
    """The ids of these ``flow/deployment`` names; InputError for one that does not exist."""
    ids = []
    for name in names:
        if "/" not in name:
            raise InputError(f"--deployment {name!r} is not FLOW/DEPLOYMENT (`prefect deployment ls` lists them).")
        try:
            ids.append(str((await client.read_deployment_by_name(name)).id))
        except ObjectNotFound:
            raise InputError(f"No deployment {name} on {client.api_url}: see `prefect deployment ls`.") from None
    return tuple(ids)


async def install(client: PrefectClient, block: str, categories: tuple[str, ...] = (), *, tags: tuple[str, ...] = (),
                  deployments: tuple[str, ...] = (), include_provisional: bool = False) -> InstallResult:
    """Install (or update in place) the notification automation of ``block``."""
    block_id = await notification_block_id(client, block)
    scope = Scope(categories=categories, tags=tags, deployment_ids=await resolve_deployments(client, deployments),
                  include_provisional=include_provisional)
    return await upsert(client, build_automation(block, block_id, scope))


@dataclass(frozen=True)
class NotifyStatus:
    name: str
    enabled: bool
    block: str
    scope: str
    problem: str | None = None


def _describe(trigger: EventTrigger) -> str:
    match = trigger.match.model_dump() if hasattr(trigger.match, "model_dump") else dict(trigger.match)
    parts = ["final summaries" if match.get("failure-insights.final") == "true" else "provisional and final summaries"]
    if match.get("failure-insights.category"):
        parts.append("categories " + ", ".join(_values(match["failure-insights.category"])))
    for spec in trigger.match_related if isinstance(trigger.match_related, list) else [trigger.match_related]:
        spec = spec.model_dump() if hasattr(spec, "model_dump") else dict(spec)
        role, ids = spec.get("prefect.resource.role"), _values(spec.get("prefect.resource.id", []))
        if role == "tag":
            parts.append("tags " + ", ".join(i.removeprefix("prefect.tag.") for i in ids))
        elif role == "deployment":
            parts.append(f"{len(ids)} deployment(s)")
    return "; ".join(parts)


def _values(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


async def status(client: PrefectClient) -> list[NotifyStatus]:
    """Every notification automation of the plugin, with what it notifies about and what is wrong."""
    out = []
    for automation in await client.read_automations():
        if not automation.name.startswith(NAME_PREFIX):
            continue
        block = automation.name.removeprefix(NAME_PREFIX)
        problem = None
        action = next((a for a in automation.actions if isinstance(a, SendNotification)), None)
        if action is None:
            problem = f"it has no send-notification action: reinstall with `failure-insights notify install --block {block}`"
        else:
            try:
                await client.read_block_document(action.block_document_id)
            except ObjectNotFound:
                problem = f"its block {block} no longer exists: create it again and reinstall"
        if problem is None and not automation.enabled:
            problem = "it is disabled: enable it in the UI (Automations) or reinstall it"
        scope = _describe(automation.trigger) if isinstance(automation.trigger, EventTrigger) else "?"
        out.append(NotifyStatus(automation.name, automation.enabled, block, scope, problem))
    return out


async def uninstall(client: PrefectClient, block: str | None = None) -> int:
    """Delete the notification automation of ``block`` (of every block when None); how many."""
    if block is not None:
        return await delete_named(client, automation_name(block))
    return sum([await delete_named(client, s.name) for s in await status(client)])
