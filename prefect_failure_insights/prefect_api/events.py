"""The Prefect events of a delivered summary, for automations to act on (notifications, retries),
and of each retry decision.

    event     failure-insights.summary.created   the run's first summary (provisional or final)
              failure-insights.summary.updated   the same summary replaced: provisional -> final,
                                                 regenerated, or the run failed again after a retry
    resource  failure-insights.summary.<failed run id>, labelled with the summary's status,
              category, transience and whether it is final
    related   the failed flow run, its flow, deployment, work pool and tags, with the roles
              Prefect's own flow-run events use (so ``match_related`` works the same way)
    payload   title, category, transience, confidence, status, what happened, how to fix, the
              run's and the summary artifact's addresses in the UI

    event     failure-insights.retry.decided     the retry automation's decision on a failure:
                                                 retried, or why not (`decision_event`)

Every text in them is redacted (again) and made safe for the messages it becomes
(`reporting.markdown.message`), and bounded: the event stays small whatever the run logged.
It is sent with an events client of its own rather than `emit_event`, which would add the
*summarizer's* run, flow and deployment as related resources with the same roles as the failed
run's, and automations matching on ``flow`` or ``deployment`` could no longer tell them apart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any
from uuid import uuid4

from prefect.events import Event
from prefect.events.clients import get_events_client

from prefect_failure_insights.defaults import (
    EVENT_MAX_STEPS,
    EVENT_MAX_TAGS,
    EVENT_STEP_CHARS,
    EVENT_TEXT_CHARS,
    RETRY_DECIDED_EVENT,
    SUMMARY_CREATED_EVENT,
    SUMMARY_RESOURCE_PREFIX,
    SUMMARY_UPDATED_EVENT,
)
from prefect_failure_insights.models import EventAction, FlowRunInfo, RetryOutcome, Summary
from prefect_failure_insights.reporting.history import describe_history
from prefect_failure_insights.redaction import Redactor
from prefect_failure_insights.reporting.markdown import message
from prefect_failure_insights.reporting.card import artifact_url, run_url

EVENT_NAMES: Mapping[str, str] = MappingProxyType({"created": SUMMARY_CREATED_EVENT, "updated": SUMMARY_UPDATED_EVENT})


def _safe(value: object, limit: int) -> str:
    return message(Redactor().redact(str(value)), limit)


def _run_related(run: FlowRunInfo) -> list[dict[str, str]]:
    """The failed run, its flow, deployment, work pool and tags, with the roles of Prefect's own events."""
    redact = Redactor().redact  # a second pass over every name from the run
    related: list[dict[str, str]] = [
        {"prefect.resource.id": f"prefect.flow-run.{run.id}", "prefect.resource.role": "flow-run",
         "prefect.resource.name": redact(run.name)},
    ]
    if run.flow_id:
        related.append({"prefect.resource.id": f"prefect.flow.{run.flow_id}", "prefect.resource.role": "flow",
                        "prefect.resource.name": redact(run.flow_name)})
    if run.deployment_id:
        related.append({"prefect.resource.id": f"prefect.deployment.{run.deployment_id}",
                        "prefect.resource.role": "deployment",
                        "prefect.resource.name": redact((run.deployment or "").split("/", 1)[-1])})
    if run.work_pool_id:
        related.append({"prefect.resource.id": f"prefect.work-pool.{run.work_pool_id}",
                        "prefect.resource.role": "work-pool",
                        "prefect.resource.name": redact(run.work_pool or "")})
    related += [{"prefect.resource.id": f"prefect.tag.{redact(tag)}", "prefect.resource.role": "tag"}
                for tag in run.tags[:EVENT_MAX_TAGS]]
    return related


def summary_event(summary: Summary, action: EventAction, summarizer_id: str | None = None) -> Event:
    """The event announcing ``summary`` (``action``: its first delivery, or a replacement)."""
    run, a = summary.run, summary.analysis
    final = summary.status != "provisional"
    resource = {
        "prefect.resource.id": f"{SUMMARY_RESOURCE_PREFIX}{run.id}",
        "prefect.resource.name": _safe(a.title, 120),
        "failure-insights.status": summary.status,
        "failure-insights.final": str(final).lower(),
        "failure-insights.category": a.category.value,
        "failure-insights.transience": a.transience.value,
    }
    related = _run_related(run)
    if summarizer_id:
        related.append({"prefect.resource.id": f"prefect.flow-run.{summarizer_id}",
                        "prefect.resource.role": "summarizer"})
    payload: dict[str, Any] = {
        "title": _safe(a.title, 200),
        "category": a.category.value,
        "transience": a.transience.value,
        "confidence": round(a.confidence, 2),
        "evidence_status": a.evidence_status,
        "citations_verified": summary.verification.root_cause_verified if summary.verification.checked else None,
        "status": summary.status,
        "final": final,
        "what_happened": _safe(a.what_happened, EVENT_TEXT_CHARS),
        "how_to_fix": [_safe(step, EVENT_STEP_CHARS) for step in a.how_to_fix[:EVENT_MAX_STEPS]],
        "failed_task": _safe(a.failed_task, 200) if a.failed_task else None,
        "flow_run_id": run.id,
        "flow_run_name": _safe(run.name, 200),
        "flow_name": _safe(run.flow_name, 200),
        "deployment": _safe(run.deployment, 200) if run.deployment else None,
        "state": _safe(run.state, 60),
        "crashed": run.crashed,
        "logs_complete": summary.evidence.logs_complete,
        "auto_retries": run.auto_retries,
        "similar_count": summary.similar.count,
        "similar_flows": [_safe(f, 100) for f in summary.similar.flows[:5]],
        "history": _safe(said, EVENT_TEXT_CHARS) if (said := describe_history(summary.similar.history)) else None,
        "fixed_by_retry": sum(r.outcome == "retry" for r in summary.similar.history),
        "run_url": run_url(run.id),
        "artifact_id": summary.delivery.artifact_id,
        "artifact_url": artifact_url(summary.delivery.artifact_id),
    }
    return Event(id=uuid4(), event=EVENT_NAMES[action], resource=resource, related=related, payload=payload)


async def emit_summary_event(summary: Summary, action: EventAction,
                             summarizer_id: str | None = None) -> Event | None:
    """Build the summary's event and send it to the Prefect API (or Cloud) now; None without an
    API address (a temporary local API has no automations to tell)."""
    return await _send(lambda: summary_event(summary, action, summarizer_id))


def decision_event(outcome: RetryOutcome, summary: Summary | None = None, retry_flow_run_id: str | None = None) -> Event:
    """The event of the retry automation's decision on a failure (``failure-insights.retry.decided``).

    Its resource is the failure's summary (labelled with the decision, the rule and the attempt);
    the failed run (and, with its ``summary``, its flow, deployment, work pool and tags) and the
    retry flow's own run (role ``retry-flow-run``) are related. Not a summary event: the retry
    automation listens to those, and must not hear its own decisions.
    """
    d = outcome.decision
    run = summary.run if summary is not None else None
    resource = {
        "prefect.resource.id": f"{SUMMARY_RESOURCE_PREFIX}{outcome.flow_run_id}",
        "failure-insights.retry.decision": d.decision or "none",
        "failure-insights.retry.rule": d.rule or "none",
        "failure-insights.retry.attempt": str(d.attempt or 0),
    }
    if summary is not None:
        resource["prefect.resource.name"] = _safe(summary.analysis.title, 120)
    related = _run_related(run) if run is not None else [
        {"prefect.resource.id": f"prefect.flow-run.{outcome.flow_run_id}", "prefect.resource.role": "flow-run"}]
    if retry_flow_run_id:
        related.append({"prefect.resource.id": f"prefect.flow-run.{retry_flow_run_id}",
                        "prefect.resource.role": "retry-flow-run"})
    payload: dict[str, Any] = {
        "decision": d.decision,
        "retried": d.retried,
        "rule": d.rule,
        "reason": _safe(d.reason or "", EVENT_TEXT_CHARS),
        "transience": d.transience,
        "category": summary.analysis.category.value if summary is not None else None,
        "attempt": d.attempt,
        "retries": d.retries,
        "max_retries": d.max_retries,
        "scheduled_for": outcome.scheduled_for.isoformat() if outcome.scheduled_for else None,
        "recorded": outcome.recorded,
        "flow_run_id": outcome.flow_run_id,
        "flow_name": _safe(run.flow_name, 200) if run is not None else None,
        "deployment": _safe(run.deployment, 200) if run is not None and run.deployment else None,
        "run_url": run_url(outcome.flow_run_id),
        "artifact_url": artifact_url(summary.delivery.artifact_id) if summary is not None else None,
    }
    return Event(id=uuid4(), event=RETRY_DECIDED_EVENT, resource=resource, related=related, payload=payload)


async def emit_decision_event(outcome: RetryOutcome, summary: Summary | None = None,
                              retry_flow_run_id: str | None = None) -> Event | None:
    """Send the decision's event to the Prefect API now; None without an API address."""
    return await _send(lambda: decision_event(outcome, summary, retry_flow_run_id))


async def _send(build: Callable[[], Event]) -> Event | None:
    """Build the event and send it to the Prefect API (or Cloud) now; None without an API address."""
    from prefect.settings import get_current_settings

    if not get_current_settings().api.url:
        return None
    event = build()
    async with get_events_client() as events:
        await events.emit(event)
    return event
