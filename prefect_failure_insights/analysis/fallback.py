"""The deterministic analysis: the card every user sees first, and the only one without an LLM.

Built only from the (already redacted) evidence and the run's facts: the failed task and the
crash's reason (OOMKilled, evicted, preempted, timed out), always named when the run holds them;
the exception and the root error line, cited; the category of the one classification
(`analysis.categorize`: the same text and the same answer as the batch's row for this failure),
a low confidence said as such; the knowledge base's cause of that category with its explanation;
fix steps that name the facts of the error (`analysis.facts`: the column, the constraint and
key, the host and port, the HTTP status and endpoint, the memory limit and exit code, the
timeout) before the cause's own steps; an error raised inside Prefect or a library with no frame
of the user's code said to be so (upgrade or report, not "fix your code"); retries spent on an
error that does not go away by itself; and the most informative line of the error. No filler
steps. Always succeeds.
"""

from __future__ import annotations

import re

from prefect_failure_insights.analysis.categorize import Categorizer, Verdict
from prefect_failure_insights.analysis.citations import sent_lines
from prefect_failure_insights.analysis.facts import extract_facts, fact_steps
from prefect_failure_insights.analysis.model import UNKNOWN
from prefect_failure_insights.analysis.rules import Rule
from prefect_failure_insights.evidence.errors import error_text
from prefect_failure_insights.evidence.untrusted import FLAG
from prefect_failure_insights.models import (
    Category,
    Citation,
    Citations,
    Evidence,
    FailedRun,
    FailureAnalysis,
    TaskRunInfo,
    Transience,
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


def _retries_spent(failed: FailedRun, cause: Rule | None, text: str) -> str | None:
    """A fix step when retries were spent on an error a retry cannot fix."""
    permanent = (cause is not None and cause.transience is Transience.PERMANENT) or bool(_PERMANENT.search(text))
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



_FRAME_AT = re.compile(r'^\s*File "([^"]+)", line (\d+), in (\S+)', re.M)
_SITE_PACKAGE = re.compile(r"(?:site|dist)-packages/([A-Za-z_]\w*)")
_STDLIB = re.compile(r"/lib/python3\.\d+/(\w+)|^<frozen ([\w.]+)>")
#: What each category means, for a best guess that no known cause explains.
_MEANING = {
    "INPUT_DATA_QUALITY": "the data the run received is bad or changed",
    "THIRD_PARTY_SYSTEM": "an external system failed or refused the request",
    "WORKFLOW_ENGINE": "the pipeline's own code, configuration or infrastructure",
}


def classification_text(evidence: Evidence, failed: FailedRun) -> str:
    """The text this failure is classified on: the batch's for the same failure (`errors.error_text`)."""
    task = _failed_task(evidence, failed)
    message = task.message if task is not None else failed.run.state_message
    return error_text(evidence.root_error_detail or evidence.root_error, evidence.exception_type, message)


def _failed_task(evidence: Evidence, failed: FailedRun) -> TaskRunInfo | None:
    tasks = failed.failed_tasks
    return next((t for t in tasks if t.name == evidence.failed_task), tasks[0] if tasks else None)


def raised_inside(root_error: str | None) -> tuple[str, str] | None:
    """``(library, "file:line in function")`` when a traceback has frames and none is the user's
    code (every frame in site-packages or the standard library); None otherwise."""
    frames = _FRAME_AT.findall(root_error or "")
    if not frames:
        return None
    libraries = []
    for path, _, _ in frames:
        posix = path.replace("\\", "/")
        found = _SITE_PACKAGE.search(posix) or _STDLIB.search(posix)
        if found is None:
            return None  # a frame of the user's code
        libraries.append(next(g for g in found.groups() if g))
    path, line, function = frames[-1]
    return libraries[-1], f"{path.replace(chr(92), '/').rsplit('/', 1)[-1]}:{line} in {function}"


def crash_reason(failed: FailedRun, text: str) -> str | None:
    """Why the run (or its task) stopped, when its states and logs say: OOMKilled, evicted,
    preempted, timed out, a signal, an exit code."""
    run = failed.run
    states = " ".join(filter(None, [run.state, *(t.state for t in failed.task_runs)]))
    checks = (
        (r"OOMKilled|out of memory|exceeding memory limits|Java heap space|MemoryError", "out of memory (OOMKilled)"),
        (r"\b[Ee]victed\b|\beviction\b", "the pod was evicted"),
        (r"preempt|[Ss]pot (?:ITN|instance|interruption)|BidEvicted|node was reclaimed", "the node was preempted "
                                                                                          "(spot interruption)"),
        (r"SIGTERM|termination signal|TerminationSignal", "it received SIGTERM"),
        (r"SIGKILL|\bKilled\b", "it was killed (SIGKILL)"),
    )
    for pattern, reason in checks:
        if re.search(pattern, text):
            return reason
    if "TimedOut" in states or re.search(r"exceeded timeout of", text):
        found = re.search(r"exceeded timeout of ([\d.]+ ?\w*(?:\(s\))?)", text)
        return f"it timed out (after {found.group(1)})" if found else "it timed out"
    code = re.search(r"(?:exit|status) code:*\s*(-?\d+)", text, re.I)
    if run.crashed and code and code.group(1) not in ("0",):
        return f"its process exited with code {code.group(1)}"
    return None


def _evidence_errors(evidence: Evidence) -> str:
    """The error and warning lines of the evidence sent (not its INFO lines: "loaded 429 orders"
    is not an HTTP 429)."""
    out, keep = [], False
    for line in evidence.text.split("\n"):
        if re.match(rf"^{re.escape(evidence.line_prefix)}\d+ ", line):
            keep = bool(re.match(r"^\S+ \S+ (?:ERROR|CRITICAL|WARNING) ", line))
        if keep:
            out.append(line)
    return "\n".join(out)


def deterministic_analysis(evidence: Evidence, failed: FailedRun, *, categorizer: Categorizer | None = None) -> FailureAnalysis:
    """Summarize a failure without an LLM (see the module docstring).

    Example:
        >>> deterministic_analysis(evidence, failed).category
        <Category.THIRD_PARTY_SYSTEM: 'THIRD_PARTY_SYSTEM'>
    """
    run = failed.run
    task_info = _failed_task(evidence, failed)
    task = evidence.failed_task or (task_info.name if task_info is not None else None)
    exc_type = evidence.exception_type
    exc_short = exc_type.rsplit(".", 1)[-1] if exc_type else None
    message = evidence.exception_message
    verdict: Verdict = (categorizer or Categorizer())(classification_text(evidence, failed), exc_type)
    cause = verdict.cause
    known = verdict.category != UNKNOWN
    messages = [t.message for t in failed.failed_tasks if t.message]
    messages += [s.state_message for s in (*failed.subflows, run) if s.state_message]
    detail = evidence.root_error_detail or evidence.root_error
    fact_text = "\n".join(filter(None, [detail, message, *messages, _evidence_errors(evidence)]))
    facts = extract_facts(fact_text)
    if facts.missing_columns and not facts.present_columns:  # "Columns received: ..." is logged at INFO
        facts.present_columns = extract_facts(evidence.text).present_columns
    reason = crash_reason(failed, fact_text)
    inside = raised_inside(detail)

    if exc_short:
        error = f"{exc_short}: {message}" if message else exc_short
    elif evidence.root_error:
        error = evidence.root_error.strip().split("\n")[-1][:300]
    else:
        error = None
    where = f"Task '{task}'" if task else f"Flow run '{run.name}'"
    at = f"{evidence.line_prefix}{evidence.root_error_line}" if evidence.root_error_line else None
    cite = f" ({at})" if at else ""

    if error:
        title = f"{task or run.flow_name} failed: {error}"
        what = f"{where} failed with {error}{cite}."
    elif run.crashed:
        title = f"{run.flow_name} crashed" + (f": {reason}" if reason else "")
        what = f"Flow run '{run.name}' crashed without a traceback in its logs."
    else:
        title = f"{run.flow_name} failed"
        what = (f"Flow run '{run.name}' failed; no error line was found in its logs." if evidence.logs_complete else
                f"Flow run '{run.name}' failed; no error line among the log records stored so far (its last "
                "records had not arrived).")
    if task and not error:
        what += f" Task '{task}' was the one that failed" + (" (it was running when the run crashed)."
                                                          if run.crashed else ".")
    if failed.subflows:
        what += f" It failed inside subflow '{failed.subflows[-1].name}' ({failed.subflows[-1].flow_name})."
    if reason:
        what += f" {'The run crashed' if run.crashed else 'It stopped'}: {reason}."
    if run.crashed and run.state_message:
        what += f" The run crashed: {run.state_message.strip().rstrip('.')}."
    else:
        what += f" The flow run ended {run.state}."
    if inside:
        what += (f" The error was raised inside {inside[0]} ({inside[1]}), with no frame of the pipeline's own "
                 "code in the traceback.")
    quote = informative_line("\n".join(filter(None, [message, evidence.root_error])))
    if quote:
        what += f" The error says: \u201c{quote}\u201d."

    sure = "" if not verdict.low_confidence else f"Best guess (confidence {verdict.confidence:.0%}): "
    if inside:
        root_cause = (f"{sure}the error comes from inside {inside[0]} ({inside[1]}), not from the pipeline's code: "
                      f"most likely a bug or an incompatibility in {inside[0]} (its version, or how it is called "
                      "or configured).")
    elif cause is not None:
        root_cause = f"{sure}{cause.cause}: {cause.why}"
    elif known:
        root_cause = f"{sure}{_MEANING.get(verdict.category, verdict.category)}" + (f": {error}." if error else ".")
    else:
        root_cause = ("The evidence does not say why: " + (f"{error}." if error else "no error line was found.")
                      + (f" The run stopped because {reason}." if reason else ""))
    fix = fact_steps(facts, category=verdict.category)
    if inside:
        raised = f"{exc_short} at {inside[1]}" if exc_short else inside[1]
        fix.append(f"Upgrade {inside[0]} (or pin the last version that worked) and search its issue tracker for "
                   f"this error; if it is new, report it with this traceback ({raised}): no frame of the "
                   "pipeline's code is involved, so there is no code of yours to fix.")
    spent = _retries_spent(failed, cause, "\n".join(filter(None, [error, *messages])))
    if spent:
        fix.insert(0, spent)
    if cause is not None and not inside:  # a cause's steps assume the pipeline's own code or data
        fix += [step for step in cause.fix[: 1 if len(fix) >= 2 else 2] if step not in fix]
    if not fix:
        step = f"Reproduce task '{task}'" if task else f"Re-run flow '{run.flow_name}'"
        fix.append(f"{step} with the same inputs and read what {error or 'it'} says"
                   + (f" around {at}" if at else "") + ": no known cause matches it.")
    if cause is not None and cause.docs:
        fix.append(f"Documentation: {cause.docs}")

    tags = [t for t in (exc_short, cause.name if cause else None, "crashed" if run.crashed else None,
                        "low-confidence" if known and verdict.low_confidence else None) if t]
    # Every claim rests on the root error line: the facts and the cause come from it.
    root = _root_citation(evidence)
    cites = [root] if root else []
    if root is None:
        status, why = "insufficient", ("no error line was found in the evidence" if evidence.logs_complete else
                                       "no error line among the log records stored so far")
    elif known and not verdict.low_confidence:
        status, why = "confirmed", (f"the root error ({at}) classifies as {verdict.category} with a calibrated "
                                    f"confidence of {verdict.confidence:.0%}")
    elif known:
        status, why = "hypothesis", (f"the root error ({at}) is a best guess of {verdict.category} at "
                                     f"{verdict.confidence:.0%}: below the 80 % at which answers are confirmed")
    else:
        status, why = "hypothesis", f"nothing in the root error ({at}) points to a category"
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
        category=Category(verdict.category) if verdict.category in Category.__members__ else verdict.category,
        confidence=round(verdict.confidence, 2) if known else 0.0,
        transience=verdict.transience if cause is not None else Transience.UNKNOWN,
        failed_task=task,
        tags=tags,
    )
