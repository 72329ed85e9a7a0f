"""The errors of a failed run, for classification: one per failed task, else one for the run.

Each comes out of the same evidence code as the summaries (`evidence.builder`), run once
per failed task on that task's error lines, or once for the run when it failed outside
any task (a crash: the infrastructure signals in its logs and state message).
"""

from __future__ import annotations

import re

from prefect_failure_insights.defaults import BATCH_ERROR_TOKENS
from prefect_failure_insights.evidence.builder import build_evidence
from prefect_failure_insights.models import FailedRun, FailureError, LogLine

#: What `error_text` says when a failure left no error at all (nothing to classify it on).
NO_ERROR_MESSAGE = "failed without an error message"
_FRAME = re.compile(r'^\s*File "|^\s+at [\w.$<>]+\(')


def errors_of(failed: FailedRun, lines: list[LogLine]) -> list[FailureError]:
    """The errors of one failed run: one per failed task, else one for the run."""
    run = failed.run
    out = []
    for task in failed.failed_tasks:
        one = failed.model_copy(update={"task_runs": [task]})
        mine = [ln for ln in lines if ln.task_run_id == task.id]
        evidence = build_evidence(one, mine, BATCH_ERROR_TOKENS)
        text = error_text(evidence.root_error_detail or evidence.root_error, evidence.exception_type, task.message)
        out.append(FailureError(run=run, error_id=f"{run.id}:{task.id}", task_run_id=task.id, failed_task=task.name,
                                exception_type=evidence.exception_type, error_text=text))
    if not out:
        evidence = build_evidence(failed, lines, BATCH_ERROR_TOKENS)
        text = error_text(evidence.root_error_detail or evidence.root_error, evidence.exception_type,
                          run.state_message)
        out.append(FailureError(run=run, error_id=f"{run.id}:run", exception_type=evidence.exception_type,
                                error_text=text))
    return out


def error_text(root_error: str | None, exception_type: str | None, message: str | None) -> str:
    """The text a failure is classified on, the same for its card and its batch row: the root
    error's exception line(s) and the failed task's (or the run's) state message; never empty."""
    if root_error:
        lines = [ln.rstrip() for ln in root_error.splitlines() if ln.strip()]
        frames = [i for i, ln in enumerate(lines) if _FRAME.match(ln)]
        if frames:  # the exception block after the last frame (and its source line)
            after = frames[-1] + 1
            while after < len(lines) and lines[after].startswith((" ", "\t")) and not _FRAME.match(lines[after]):
                after += 1
            block = lines[after:][:8] or lines[-3:]
        else:
            block = [ln for ln in lines if not ln.startswith("Traceback")][-8:]
        if lines[0] not in block and not lines[0].startswith("Traceback"):
            block = [lines[0], *block]
        text = "\n".join(block)
        if message and message not in text:
            text = f"{text}\n{message}"
        return text[:4000]
    return (message or f"{exception_type or 'The run'} {NO_ERROR_MESSAGE}").strip()[:4000]
