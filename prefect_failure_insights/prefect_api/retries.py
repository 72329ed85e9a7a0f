"""Retrying a failed run the way the UI's Retry does, behind a guard that cannot loop.

The decision is made here, from what the plugin itself stored and from the run: never from
what the caller says. The retry deployment's parameters are only the run's id and the limits
(an event, a hand-made run of the deployment or a forged ``failure-insights.summary.created``
can name a run, nothing more), and every limit is enforced here too: ``max_retries`` is never
above `RETRY_MAX_RETRIES_LIMIT`, the delay stays within a day.

The guard, in order (`refusal`): the run must be

1. not one of the plugin's own flows (their failures are never summarized either);
2. a run of a deployment (a runner or worker picks a retried run up; nothing picks up a run
   started by calling the flow in a script);
3. still Failed or Crashed (a run retried meanwhile, by hand or by an earlier event, is left alone);
4. summarized: a final summary stored by the plugin, of this very failure (not of an earlier
   attempt of the run), so that an event naming a run with no summary does nothing;
5. a failure whose stored summary says TRANSIENT, in one of the categories asked for;
6. under ``max_retries`` automatic retries, counted from the run's own state history (the
   AwaitingRetry states that carry `RETRY_STATE_MARK`), so that no restart, lost database or
   duplicate event can reset the count.

A retry is the state change the UI's Retry makes: ``AwaitingRetry`` (Scheduled), here at
``now + delay``; the deployment's runner starts the run again when it is due, and its run
count grows. Each retry is in the run's state history with the mark and the reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import FlowRun, State
from prefect.states import AwaitingRetry

from prefect_failure_insights.defaults import (
    OWN_FLOWS,
    RETRY_MAX_DELAY_SECONDS,
    RETRY_MAX_RETRIES_LIMIT,
    RETRY_STATE_MARK,
)
from prefect_failure_insights.models import RetryOutcome, Summary
from prefect_failure_insights.redaction import Redactor
from prefect_failure_insights.prefect_api.runs import FAILED_TYPES, read_flow_run, automatic_retries


def limits(max_retries: int, delay_s: float) -> tuple[int, float]:
    """The limits as enforced, whatever was asked: at most `RETRY_MAX_RETRIES_LIMIT` retries,
    a delay from 0 to `RETRY_MAX_DELAY_SECONDS`."""
    return max(0, min(int(max_retries), RETRY_MAX_RETRIES_LIMIT)), max(0.0, min(float(delay_s),
                                                                                RETRY_MAX_DELAY_SECONDS))


def refusal(run: FlowRun, flow_name: str, states: Iterable[State], *, summary: Summary | None, max_retries: int,
            categories: Sequence[str]) -> str | None:
    """Why ``run`` must not be retried, or None (see the module docstring for the order).
    ``summary``: the run's summary as the plugin stored it (None: there is none)."""
    if flow_name in OWN_FLOWS:
        return f"{flow_name} is one of the plugin's own flows: never retried automatically"
    if run.deployment_id is None:
        return "the run is not a deployment's run: no runner or worker would pick up a retry"
    if run.state is None or run.state.type not in FAILED_TYPES:
        state = run.state.name if run.state else "without a state"
        return f"the run is {state} now, not Failed or Crashed: it was retried or resolved meanwhile"
    if summary is None:
        return "the run has no stored summary: nothing says its failure is transient (a stray or forged event?)"
    if summary.status == "provisional":
        return "its summary is still provisional: the final one decides"
    if summary.run.run_count < (run.run_count or 1):
        return (f"its stored summary is of an earlier attempt (run {summary.run.run_count} of {run.run_count}): the "
                "summary of this failure decides")
    transience, category = summary.analysis.transience.value, summary.analysis.category.value
    if transience != "TRANSIENT":
        return f"its failure is {transience}, not TRANSIENT: a retry would fail the same way"
    if category not in categories:
        return f"its category {category} is not one retried automatically ({', '.join(categories)})"
    max_retries, _ = limits(max_retries, 0)
    done = automatic_retries(states)
    if done >= max_retries:
        return f"{done} of {max_retries} automatic retr{'y' if max_retries == 1 else 'ies'} used already"
    return None


async def retry_failed_run(client: PrefectClient, flow_run_id: UUID | str, summary: Summary | None,
                           *, max_retries: int, delay_s: float, categories: Sequence[str]) -> RetryOutcome:
    """Retry the run (AwaitingRetry at now + ``delay_s``) unless the guard refuses; what was done.
    ``summary``: its summary as stored (`store.summaries.get_summary`), the only source of the
    decision besides the run itself."""
    max_retries, delay_s = limits(max_retries, delay_s)
    run = await read_flow_run(client, flow_run_id)
    flow_name = (await client.read_flow(run.flow_id)).name
    states = await client.read_flow_run_states(run.id)
    why_not = refusal(run, flow_name, states, summary=summary, max_retries=max_retries, categories=categories)
    done = automatic_retries(states)
    if why_not is not None or summary is None:
        return RetryOutcome(flow_run_id=str(run.id), retried=False, reason=why_not or "", retries=done)
    attempt = done + 1
    at = datetime.now(timezone.utc) + timedelta(seconds=delay_s)
    a = summary.analysis
    note = f"{RETRY_STATE_MARK} {attempt} of {max_retries}: {a.transience.value.lower()} {a.category.value} failure"
    message = f"{note} ({Redactor().redact(a.title)})"
    result = await client.set_flow_run_state(run.id, AwaitingRetry(scheduled_time=at, message=message[:1000]))
    accepted = result.status.value == "ACCEPT"
    return RetryOutcome(flow_run_id=str(run.id), retried=accepted, retries=attempt if accepted else attempt - 1,
                        scheduled_for=at if accepted else None,
                        reason=message if accepted else f"the server refused the retry: {result.details}")
