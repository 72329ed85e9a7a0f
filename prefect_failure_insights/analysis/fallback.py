"""The deterministic analysis: used when no LLM is configured or the LLM failed.

Built only from the (already redacted) evidence and the run's facts: the failed task,
the exception and the root error line, cited; the cause the knowledge base matches
(`analysis.rules`) with its explanation and its fix steps, and its category as a best guess
with the cause's measured confidence (below the calibrated threshold it says "possibly" and
how often such a cause is right: one reader, one failure, unlike the batch, which abstains); a crash's reason; retries
spent on an error that does not go away by itself; and the most informative line of the
error (an API's error body, a database's DETAIL, the columns that do exist beside the
one that is missing). Always succeeds.
"""

from __future__ import annotations

import re

from prefect_failure_insights.analysis.citations import sent_lines
from prefect_failure_insights.analysis.matching import RuleMatch, classify
from prefect_failure_insights.evidence.untrusted import FLAG
from prefect_failure_insights.models import (
    Category,
    Citation,
    Citations,
    Evidence,
    FailedRun,
    FailureAnalysis,
    Transience,
)

GENERIC_FIX = (
    "Open the failed run's logs at the root error line and read the traceback from the last frame in your code.",
    "Fix the cause, then re-run the flow (or retry it from the Prefect UI).",
)
#: HTTP statuses and words that say a retry of the same request cannot pass.
_PERMANENT = re.compile(r"\b(?:400|401|403|404|405|409|410|422)\b|Unauthori[sz]ed|Forbidden|Not Found|"
                        r"validation|invalid|does not exist|not found", re.IGNORECASE)
#: Where errors say *why*, most telling first: an API's error body, a database's DETAIL/HINT,
#: the columns that exist beside a missing one.
_INFORMATIVE = (
    re.compile(r"""(?P<q>["']?)(?:message|error_description|detail|errorMessage|reason)(?P=q)\s*[:=]\s*"""
               r"""(?P<v>["'])(?P<text>(?:(?!(?P=v))[^\n]){12,300})(?P=v)""", re.IGNORECASE),
    re.compile(r"\b(?:DETAIL|HINT|Details?|Reason|Caused by):\s*(?P<text>.{12,300})", re.IGNORECASE),
    re.compile(r"(?P<text>(?:available|existing|present|valid) (?:columns|fields|keys|options)[^\n]{0,300}|"
               r"Did you mean[^\n]{0,200}|columns are:?[^\n]{0,300})", re.IGNORECASE),
)


def informative_line(text: str) -> str | None:
    """The part of an error that says what was wrong, in its own words (None if nothing stands out)."""
    for pattern in _INFORMATIVE:
        found = pattern.search(text)
        if found:
            return " ".join(found.group("text").split())[:300].rstrip(" .,;") or None
    return None


def _match(evidence: Evidence, failed: FailedRun) -> RuleMatch:
    # The root error decides; the failed tasks' and the run's state messages only if it says
    # nothing recognisable. Never the whole excerpt: an INFO line such as "loaded 429 orders"
    # must not make a KeyError a rate limit. All of it is redacted.
    exc_type = evidence.exception_type
    match = classify("\n".join(filter(None, [evidence.root_error, evidence.exception_message, exc_type])), exc_type)
    if match.cause is None:
        context = [t.message for t in failed.failed_tasks if t.message]
        context += [s.state_message for s in (*failed.subflows, failed.run) if s.state_message]
        match = classify("\n".join(context), exc_type)
    return match


def _retries_spent(failed: FailedRun, match: RuleMatch, error_text: str) -> str | None:
    """A fix step when retries were spent on an error a retry cannot fix."""
    cause = match.cause
    permanent = (cause is not None and cause.transience is Transience.PERMANENT) or bool(_PERMANENT.search(error_text))
    tried = [t for t in failed.failed_tasks if t.run_count > 1]
    if not permanent or not (tried or failed.run.run_count > 1):
        return None
    where = (f"task '{tried[0].name}' was tried {tried[0].run_count} times" if tried
             else f"the flow was tried {failed.run.run_count} times")
    return (f"Retries did not help: {where} on an error that fails the same way every time. Retry only what "
            "can pass: give the task a `retry_condition_fn` that returns False for this error (e.g. HTTP "
            "401/403/404 or a validation error) and True for timeouts and 5xx.")


def _root_citation(evidence: Evidence) -> Citation | None:
    """The root error line as a citation, quoting the start of its message as it was sent."""
    if not evidence.root_error_line:
        return None
    line = sent_lines(evidence.text, evidence.line_prefix).get(evidence.root_error_line)
    if line is None:  # the budget left it out: cite it anyway, the check will say it was not sent
        return Citation(line=evidence.root_error_line)
    # "L31 02:00:00.250 ERROR [task] message..." -> the message's first words
    first = line.split("\n", 1)[0]
    message = re.sub(r"^\S+ \S+ [A-Z]+ (?:\[[^\]]*\] )?", "", first).removeprefix(FLAG).lstrip()
    return Citation(line=evidence.root_error_line, quote=" ".join(message.split()[:12])[:120])


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
    match = _match(evidence, failed)
    cause = match.cause

    if exc_short:
        error = f"{exc_short}: {message}" if message else exc_short
    elif evidence.root_error:
        error = evidence.root_error
    else:
        error = None
    where = f"Task '{task}'" if task else f"Flow run '{run.name}'"
    at = f"{evidence.line_prefix}{evidence.root_error_line}" if evidence.root_error_line else None
    cite = f" ({at})" if at else ""

    if error:
        title = f"{task or run.flow_name} failed: {error}"
        what = f"{where} failed with {error}{cite}."
    elif run.crashed:
        title = f"{run.flow_name} crashed"
        what = f"Flow run '{run.name}' crashed without a traceback in its logs."
    else:
        title = f"{run.flow_name} failed"
        what = (f"Flow run '{run.name}' failed; no error line was found in its logs." if evidence.logs_complete else
                f"Flow run '{run.name}' failed; no error line among the log records stored so far (its last "
                "records had not arrived).")
    if failed.subflows:
        what += f" It failed inside subflow '{failed.subflows[-1].name}' ({failed.subflows[-1].flow_name})."
    if run.crashed and run.state_message:
        what += f" The run crashed: {run.state_message.strip().rstrip('.')}."
    else:
        what += f" The flow run ended {run.state}."
    quote = informative_line("\n".join(filter(None, [message, evidence.root_error])))
    if quote:
        what += f" The error says: \u201c{quote}\u201d."

    if match.rule is not None:
        root_cause = f"{cause.cause}: {cause.why}"
        fix = list(cause.fix)
    elif cause is not None:
        root_cause = (f"Possibly {cause.cause[0].lower()}{cause.cause[1:]} (for errors like this one that is right "
                      f"about {round(match.confidence * 100)} % of the time): {cause.why}")
        fix = [*cause.fix, GENERIC_FIX[0]]
    else:
        root_cause = "The cause could not be determined without an LLM; the root error above is the best lead."
        fix = list(GENERIC_FIX)
    spent = _retries_spent(failed, match, "\n".join(filter(None, [error, *(t.message or "" for t in
                                                                           failed.failed_tasks)])))
    if spent:
        fix.insert(0, spent)
    if cause is not None and cause.docs:
        fix.append(f"Documentation: {cause.docs}")
    if evidence.root_error_line:
        fix.append(f"Details: the run's logs around {at}.")
    elif run.state_message:
        fix.append("Details: the run's final state message and the worker's logs.")

    tags = [t for t in (exc_short, cause.name if cause else None, "crashed" if run.crashed else None) if t]
    # Every claim rests on the root error line: the rule matched it, the steps are the rule's.
    root = _root_citation(evidence)
    cites = [root] if root else []
    if root is None:
        status, why = "insufficient", ("no error line was found in the evidence" if evidence.logs_complete else
                                       "no error line among the log records stored so far")
    elif match.rule is not None and match.confidence >= 0.8:
        status, why = "confirmed", (f"the rule {cause.name!r} matched the root error ({at}); errors it matches are "
                                    f"this cause {match.confidence:.0%} of the time")
    elif cause is not None:
        status, why = "hypothesis", (f"the closest known cause ({cause.name!r}) fits the root error ({at}) "
                                     f"{match.confidence:.0%} of the time")
    else:
        status, why = "hypothesis", f"no known cause matches the root error ({at})"
    questions = [] if root else [
        "What ended the run? Its logs hold no error line: read the worker's or the infrastructure's logs "
        "for the run's last minutes." if evidence.logs_complete else
        "What ended the run? Its last log records had not arrived: this summary is made again when they do."]
    return FailureAnalysis(
        title=title,
        what_happened=what,
        how_to_fix=fix,
        root_cause=root_cause,
        citations=Citations(what_happened=cites, root_cause=cites, how_to_fix=[cites for _ in fix]),
        evidence_status=status,
        confidence_reason=why,
        open_questions=questions,
        # A best guess with its measured confidence: one reader, one failure. (The batch abstains
        # below the threshold instead: its counts become trends.)
        category=cause.category if cause is not None else Category.UNKNOWN,
        confidence=round(match.confidence, 2) if cause is not None else 0.0,
        transience=cause.transience if cause is not None else Transience.UNKNOWN,
        failed_task=task,
        tags=tags,
    )
