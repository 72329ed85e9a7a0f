"""Retrying a failed run the way the UI's Retry does, behind a guard that cannot loop, and the
decision for every failure: retried, or why not.

The decision is made here, from what the plugin itself stored and from the run: never from
what the caller says. The retry deployment's parameters are only the run's id and the policy
(an event, a hand-made run of the deployment or a forged ``failure-insights.summary.created``
can name a run, nothing more), and every limit is enforced here too: ``max_retries`` is never
above `RETRY_MAX_RETRIES_LIMIT`, the delay stays within a day.

The guard, in order (`decide`); each step names its rule in the decision. The run must be

1. not one of the plugin's own flows (``own-flow``; their failures are never summarized either);
2. a run of a deployment (``not-deployment``: a runner or worker picks a retried run up;
   nothing picks up a run started by calling the flow in a script);
3. still Failed or Crashed, by state type (``not-failed``: a run retried meanwhile, by hand or
   by an earlier event, is left alone);
4. summarized: a final summary stored by the plugin, of this very failure (``no-summary``,
   ``provisional``, ``earlier-attempt``), so that an event naming a run with no summary does nothing;
5. retryable, for one of two reasons:
   * a CRASHED run whose state message or log evidence matches a rule of
     `evidence.crashes.CRASH_RULES` (``infra-evicted``, ``infra-sigterm``, ...), when the policy
     retries crashed runs (``--crashed``; out-of-memory and SIGKILL only with ``--oom``; a crash
     after a cancellation request never);
   * a failure whose stored summary says TRANSIENT, in one of the categories asked for
     (``transient``; refused as ``not-transient`` or ``category``);
6. under ``max_retries`` automatic retries (``limit``), counted from the run's own state history
   (the AwaitingRetry states that carry `RETRY_STATE_MARK`), so that no restart, lost database
   or duplicate event can reset the count.

A retry is the state change the UI's Retry makes: ``AwaitingRetry`` (Scheduled), here at
``now + delay``; the deployment's runner starts the run again when it is due, and its run
count grows. Each retry is in the run's state history with the mark and the reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import FlowRun, State, StateType
from prefect.states import AwaitingRetry

from prefect_failure_insights.defaults import (
    OWN_FLOWS,
    RETRY_MAX_DELAY_SECONDS,
    RETRY_MAX_RETRIES_LIMIT,
    RETRY_STATE_MARK,
)
from prefect_failure_insights.evidence.crashes import CrashRule, match_crash
from prefect_failure_insights.models import RETRY_REFUSED_RULE, RetryDecision, RetryOutcome, RetryPolicy, Summary
from prefect_failure_insights.redaction import Redactor
from prefect_failure_insights.prefect_api.runs import FAILED_TYPES, read_flow_run, automatic_retries


def limits(max_retries: int, delay_s: float) -> tuple[int, float]:
    """The limits as enforced, whatever was asked: at most `RETRY_MAX_RETRIES_LIMIT` retries,
    a delay from 0 to `RETRY_MAX_DELAY_SECONDS`."""
    return max(0, min(int(max_retries), RETRY_MAX_RETRIES_LIMIT)), max(0.0, min(float(delay_s),
                                                                                RETRY_MAX_DELAY_SECONDS))


def _retries(n: int) -> str:
    return f"retr{'y' if n == 1 else 'ies'}"


def _crash(rule: CrashRule) -> str:
    return f"crashed: {rule.what}"


def decide(run: FlowRun, flow_name: str, states: Iterable[State], *, summary: Summary | None,
           policy: RetryPolicy) -> RetryDecision:
    """Whether to retry ``run`` now, and why or why not (see the module docstring for the order).
    ``summary``: the run's summary as the plugin stored it (None: there is none)."""
    max_retries, _ = limits(policy.max_retries, policy.delay_s)
    done = automatic_retries(states)
    attempt = summary.run.run_count if summary is not None else (run.run_count or 1)
    transience = summary.analysis.transience.value if summary is not None else None

    def verdict(decision: str, rule: str, reason: str, retries: int = done) -> RetryDecision:
        return RetryDecision(decision=decision, rule=rule, reason=f"{reason} (rule {rule})", transience=transience,
                             attempt=attempt, retries=retries, max_retries=max_retries)

    def no(rule: str, reason: str) -> RetryDecision:
        return verdict("not_retried", rule, reason)

    if flow_name in OWN_FLOWS:
        return no("own-flow", f"{flow_name} is one of the plugin's own flows: never retried automatically")
    if run.deployment_id is None:
        return no("not-deployment", "the run is not a deployment's run: no runner or worker would pick up a retry")
    if run.state is None or run.state.type not in FAILED_TYPES:
        state = run.state.name if run.state else "without a state"
        return no("not-failed", f"the run is {state} now, not Failed or Crashed: it was retried or resolved meanwhile")
    if summary is None:
        return no("no-summary", "the run has no stored summary: nothing says why it failed (a stray or forged event?)")
    if summary.status == "provisional":
        return no("provisional", "its summary is still provisional: the final one decides")
    if summary.run.run_count < (run.run_count or 1):
        return no("earlier-attempt", f"its stored summary is of an earlier attempt (run {summary.run.run_count} of "
                                     f"{run.run_count}): the summary of this failure decides")
    crashed = run.state.type == StateType.CRASHED
    rule = match_crash([run.state.message, summary.run.state_message, summary.evidence.text]) if crashed else None
    category = summary.analysis.category.value
    if rule is not None and rule.kind == "never":
        return no(rule.id, f"{_crash(rule)}: never retried automatically")
    if rule is not None and rule.kind == "oom" and not (policy.crashed and policy.oom):
        return no(rule.id, f"{_crash(rule)}: such crashes are retried only with `retry install --crashed --oom`, "
                           "since a retry may run out of memory again")
    if rule is not None and policy.crashed:
        basis = (rule.id, _crash(rule))
    elif transience == "TRANSIENT" and category in policy.categories:
        basis = ("transient", f"its failure is TRANSIENT, {category}")
    elif rule is not None:
        return no(rule.id, f"{_crash(rule)}, but crashed runs are retried only with `retry install --crashed`")
    elif crashed and policy.crashed and transience != "TRANSIENT":
        return no("crash-no-rule", f"it crashed, but neither its state message nor its logs say its infrastructure "
                                   f"did it (no crash rule matched), and its failure is {transience}, not TRANSIENT")
    elif transience != "TRANSIENT":
        return no("not-transient", f"its failure is {transience}, not TRANSIENT: a retry would fail the same way")
    else:
        return no("category", f"its failure is TRANSIENT, but its category {category} is not one retried "
                              f"automatically ({', '.join(policy.categories)})")
    if done >= max_retries:
        return no("limit", f"{basis[1]}, but {done} of {max_retries} automatic {_retries(max_retries)} used already")
    return verdict("retried", basis[0], basis[1], retries=done + 1)


async def decide_retry(client: PrefectClient, flow_run_id: UUID | str, summary: Summary | None,
                       *, policy: RetryPolicy) -> RetryOutcome:
    """Read the run and its state history, and `decide` (nothing is changed yet)."""
    run = await read_flow_run(client, flow_run_id)
    flow_name = (await client.read_flow(run.flow_id)).name
    states = await client.read_flow_run_states(run.id)
    return RetryOutcome(flow_run_id=str(run.id), decision=decide(run, flow_name, states, summary=summary,
                                                                 policy=policy))


def retry_note(decision: RetryDecision, title: str | None) -> str:
    """The retry's message in the run's state history: the mark, the count and the rule."""
    note = f"{RETRY_STATE_MARK} {decision.retries} of {decision.max_retries}: {decision.reason}"
    return (f"{note} ({Redactor().redact(title)})" if title else note)[:1000]


async def schedule_retry(client: PrefectClient, outcome: RetryOutcome, *, delay_s: float,
                         title: str | None = None) -> RetryOutcome:
    """Set the run AwaitingRetry at now + ``delay_s`` (a decision to retry, recorded first); when
    the server refuses, the decision becomes "not retried" with the rule `RETRY_REFUSED_RULE`."""
    _, delay_s = limits(0, delay_s)
    at = datetime.now(timezone.utc) + timedelta(seconds=delay_s)
    message = retry_note(outcome.decision, title)
    result = await client.set_flow_run_state(UUID(outcome.flow_run_id), AwaitingRetry(scheduled_time=at,
                                                                                      message=message))
    if result.status.value == "ACCEPT":
        return outcome.model_copy(update={"scheduled_for": at})
    refused = outcome.decision.model_copy(update={
        "decision": "not_retried", "rule": RETRY_REFUSED_RULE, "retries": (outcome.decision.retries or 1) - 1,
        "reason": f"{outcome.decision.reason}, but the server refused the retry: {result.details} "
                  f"(rule {RETRY_REFUSED_RULE})"})
    return outcome.model_copy(update={"decision": refused, "recorded": "pending"})
