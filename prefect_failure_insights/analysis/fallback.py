"""The deterministic analysis: used when no LLM is configured or the LLM failed.

Built only from the (already redacted) evidence and the run's facts: the failed
task, the exception, the root error line, a rule-based category and the rule's
generic fix steps. Always succeeds.
"""

from __future__ import annotations

from prefect_failure_insights.analysis.rules import classify
from prefect_failure_insights.models import Evidence, FailedRun, FailureAnalysis

GENERIC_FIX = (
    "Open the failed run's logs at the root error line and read the traceback from the last frame in your code.",
    "Fix the cause, then re-run the flow (or retry it from the Prefect UI).",
)


def deterministic_analysis(evidence: Evidence, failed: FailedRun) -> FailureAnalysis:
    """Summarize a failure without an LLM.

    Example:
        >>> deterministic_analysis(evidence, failed).category
        <Category.THIRD_PARTY_SYSTEM: 'THIRD_PARTY_SYSTEM'>
    """
    run = failed.run
    task = evidence.failed_task
    exc_type = evidence.exception_type
    exc_short = exc_type.rsplit(".", 1)[-1] if exc_type else None
    message = evidence.exception_message
    # The root error decides; the failed tasks' and the run's state messages only if
    # it says nothing recognisable. Never the whole excerpt: an INFO line such as
    # "loaded 429 orders" must not make a KeyError a rate limit. All of it is redacted.
    match = classify("\n".join(filter(None, [evidence.root_error, message, exc_type])), exc_type)
    if match.rule is None:
        context = [t.message for t in failed.failed_tasks if t.message]
        context += [s.state_message for s in (*failed.subflows, run) if s.state_message]
        match = classify("\n".join(context), exc_type)

    if exc_short:
        error = f"{exc_short}: {message}" if message else exc_short
    elif evidence.root_error:
        error = evidence.root_error
    else:
        error = None
    where = f"Task '{task}'" if task else f"Flow run '{run.name}'"
    cite = f" (L{evidence.root_error_line})" if evidence.root_error_line else ""

    if error:
        title = f"{task or run.flow_name} failed: {error}"
        what = f"{where} failed with {error}{cite}."
    elif run.crashed:
        title = f"{run.flow_name} crashed"
        what = f"Flow run '{run.name}' crashed without a traceback in its logs."
    else:
        title = f"{run.flow_name} failed"
        what = f"Flow run '{run.name}' failed; no error line was found in its logs."
    if failed.subflows:
        what += f" It failed inside subflow '{failed.subflows[-1].name}' ({failed.subflows[-1].flow_name})."
    what += f" The flow run ended {run.state}."

    if match.rule:
        root_cause = match.rule.why
        fix = list(match.rule.fix)
    else:
        root_cause = (
            "The cause could not be determined without an LLM; the root error above is the best lead."
        )
        fix = list(GENERIC_FIX)
    if evidence.root_error_line:
        fix.append(f"Details: the run's logs around L{evidence.root_error_line}.")
    elif run.state_message:
        fix.append("Details: the run's final state message and the worker's logs.")

    tags = [t for t in (exc_short, match.rule.name if match.rule else None,
                        "crashed" if run.crashed else None) if t]
    return FailureAnalysis(
        title=title,
        what_happened=what,
        how_to_fix=fix,
        root_cause=root_cause,
        category=match.category,
        confidence=round(match.confidence * 0.8, 2),
        failed_task=task,
        tags=tags,
    )
