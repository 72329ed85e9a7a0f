"""Retrying a failed run the way the UI's Retry does, behind a guard that cannot loop.

The guard, in order (`refusal`): the run must be

1. not one of the plugin's own flows (their failures are never summarized either);
2. a run of a deployment (a runner or worker picks a retried run up; nothing picks up a run
   started by calling the flow in a script);
3. still Failed or Crashed (a run retried meanwhile, by hand or by an earlier event, is left alone);
4. a failure whose summary says TRANSIENT, in one of the categories asked for;
5. under ``max_retries`` automatic retries, counted from the run's own state history (the
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

from prefect_failure_insights.defaults import OWN_FLOWS, RETRY_STATE_MARK
from prefect_failure_insights.models import RetryOutcome
from prefect_failure_insights.redaction import Redactor
from prefect_failure_insights.prefect_api.runs import FAILED_TYPES, read_flow_run, automatic_retries


def refusal(run: FlowRun, flow_name: str, states: Iterable[State], *, max_retries: int, transience: str,
            category: str, categories: Sequence[str]) -> str | None:
    """Why ``run`` must not be retried, or None (see the module docstring for the order)."""
    if flow_name in OWN_FLOWS:
        return f"{flow_name} is one of the plugin's own flows: never retried automatically"
    if run.deployment_id is None:
        return "the run is not a deployment's run: no runner or worker would pick up a retry"
    if run.state is None or run.state.type not in FAILED_TYPES:
        state = run.state.name if run.state else "without a state"
        return f"the run is {state} now, not Failed or Crashed: it was retried or resolved meanwhile"
    if transience != "TRANSIENT":
        return f"its failure is {transience or 'UNKNOWN'}, not TRANSIENT: a retry would fail the same way"
    if category not in categories:
        return f"its category {category or 'UNKNOWN'} is not one retried automatically ({', '.join(categories)})"
    done = automatic_retries(states)
    if done >= max_retries:
        return f"{done} of {max_retries} automatic retr{'y' if max_retries == 1 else 'ies'} used already"
    return None


async def retry_failed_run(client: PrefectClient, flow_run_id: UUID | str, max_retries: int, *, delay_s: float,
                           transience: str, category: str, categories: Sequence[str],
                           reason: str = "") -> RetryOutcome:
    """Retry the run (AwaitingRetry at now + ``delay_s``) unless the guard refuses; what was done."""
    run = await read_flow_run(client, flow_run_id)
    flow_name = (await client.read_flow(run.flow_id)).name
    states = await client.read_flow_run_states(run.id)
    why_not = refusal(run, flow_name, states, max_retries=max_retries, transience=transience, category=category,
                      categories=categories)
    done = automatic_retries(states)
    if why_not is not None:
        return RetryOutcome(flow_run_id=str(run.id), retried=False, reason=why_not, retries=done)
    attempt = done + 1
    at = datetime.now(timezone.utc) + timedelta(seconds=delay_s)
    note = f"{RETRY_STATE_MARK} {attempt} of {max_retries}: {transience.lower()} {category} failure"
    message = f"{note} ({Redactor().redact(reason)})" if reason else note
    result = await client.set_flow_run_state(run.id, AwaitingRetry(scheduled_time=at, message=message[:1000]))
    accepted = result.status.value == "ACCEPT"
    return RetryOutcome(flow_run_id=str(run.id), retried=accepted, retries=attempt if accepted else attempt - 1,
                        scheduled_for=at if accepted else None,
                        reason=message if accepted else f"the server refused the retry: {result.details}")
