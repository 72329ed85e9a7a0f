"""Evidence: the part of a failed run worth showing to a reader or an LLM.

A failed run has thousands of log lines; the root error often sits early, followed
by its consequences ("Finished in state Failed", UpstreamTaskError, the flow
re-raising the task's exception). `build_evidence()` picks the root error, keeps
context around it, the other distinct errors, the head and the tail, collapses
repeated lines, redacts every line it keeps and stops at a token budget. Each
kept line carries its original line number (``L1234``) so a summary can cite it.

Token counts are an estimate (``ceil(characters / 3)``), deliberately on the
high side for log text; tiktoken would need to download its encodings, which
fails on offline workers.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from prefect_failure_insights.models import Evidence, FailedRun, LogLine
from prefect_failure_insights.tasks.logs import RunLogs
from prefect_failure_insights.tasks.redaction import Redactor

DEFAULT_BUDGET_TOKENS = 6000
CHARS_PER_TOKEN = 3

# "Task run failed with exception: ValueError('x') - Retries are exhausted"
_TASK_FAILED = re.compile(r"^Task run failed with exception: ")
_FLOW_EXCEPTION = re.compile(r"^Encountered exception during execution: ")
_CONSEQUENCE = re.compile(
    r"^Finished in state (?:Failed|Crashed|TimedOut)"
    r"|UpstreamTaskError|UnfinishedRun|MissingResult"
    r"|Upstream task run '.*' did not reach a 'COMPLETED' state"
    r"|^Process for flow run .* exited with status code"
    r"|^Reported flow run .* as crashed"
)
_EXCEPTION_LINE = re.compile(
    r"^(?:[A-Za-z_][\w]*\.)*(?:[A-Z][\w]*(?:Error|Exception|Exit|Interrupt|Failure|Fault|Timeout|Warning)"
    r"|[A-Z][\w]*(?:NotFound|Denied|Refused|Invalid))\b(?::\s*(.*))?$"
)
_INLINE_EXCEPTION = re.compile(
    r"\b((?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:Error|Exception|Exit|Interrupt|Failure|Timeout))\b[(:]\s*"
)
_TRACEBACK = "Traceback (most recent call last):"
# Crashed runs often have no traceback at all, only what the infrastructure said.
INFRA_SIGNALS = re.compile(
    r"(?i)\bOOMKilled\b|out of memory|exit(?:ed)? (?:with )?(?:status |code )?(?:code )?137\b"
    r"|\bSIGKILL\b|\bSIGTERM\b|\bEvicted\b|\beviction\b|ImagePullBackOff|ErrImagePull"
    r"|CrashLoopBackOff|pod (?:never started|failed to start)|FailedScheduling"
    r"|Crash detected|infrastructure (?:exited|failed)|container .* (?:killed|terminated)"
    r"|MemoryError|Killed\b|no space left on device|DeadlineExceeded"
)

_MASKS = (
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I), "<uuid>"),
    (re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?"), "<ts>"),
    (re.compile(r"\b0x[0-9a-f]+\b|\b[0-9a-f]{12,}\b", re.I), "<hex>"),
    (re.compile(r"(?:/[\w.@-]+){2,}"), "<path>"),
    (re.compile(r"\d+(?:\.\d+)?"), "<n>"),
)


def estimate_tokens(text: str) -> int:
    """A conservative token estimate: one token per three characters."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def template(message: str) -> str:
    """The shape of a log message: first line with numbers, ids, times and paths masked.

    Lines with the same template are repetitions of one event ("retrying in 3s",
    "retrying in 5s") and are shown once with a count.
    """
    first = message.split("\n", 1)[0][:300]
    for pattern, mask in _MASKS:
        first = pattern.sub(mask, first)
    return first


def is_consequence(line: LogLine) -> bool:
    """True for lines that report a failure caused elsewhere."""
    return bool(_CONSEQUENCE.search(line.message))


def is_error(line: LogLine) -> bool:
    """True for lines that report an error (ERROR level, a traceback, an exception)."""
    if line.level >= 40:
        return True
    msg = line.message
    if _TRACEBACK in msg or _TASK_FAILED.match(msg):
        return True
    last = msg.rstrip().rsplit("\n", 1)[-1].strip()
    return bool(_EXCEPTION_LINE.match(last)) or bool(INFRA_SIGNALS.search(msg))


def parse_exception(message: str) -> tuple[str | None, str | None]:
    """Extract ``(exception type, message)`` from a log message, if it names one.

    Reads the final ``Type: message`` line of a traceback, or the Prefect forms
    ``Task run failed with exception: Type('message')``.
    """
    lines = [ln.strip() for ln in message.strip().split("\n") if ln.strip()]
    if _TRACEBACK in message:
        for ln in reversed(lines):
            m = _EXCEPTION_LINE.match(ln)
            if m:
                exc_type = ln.split(":", 1)[0].strip()
                return exc_type, (m.group(1) or "").strip() or None
    m = _INLINE_EXCEPTION.search(lines[0] if lines else "")
    if m:
        rest = lines[0][m.end():]
        rest = re.sub(r"\)?\s*-\s*Retr(?:y|ies) .*$", "", rest).rstrip(")").strip().strip("'\"")
        return m.group(1), rest or None
    return None, None


@dataclass(frozen=True)
class RootError:
    line: LogLine | None
    reason: str


def find_root_error(lines: Sequence[LogLine], failed: FailedRun | None = None) -> RootError:
    """Choose the log line that best explains the failure.

    Order of preference:

    1. the failure of the earliest failed task, in its last attempt
       (a retried task logs one failure per attempt; the last one is what failed);
    2. the earliest error line that is not a consequence of another failure;
    3. for crashed runs, the earliest infrastructure signal (OOMKilled, exit 137, ...);
    4. the earliest consequence line, as a last resort.
    """
    last_attempt: dict[str, LogLine] = {}
    first_failure: dict[str, int] = {}
    first_error: LogLine | None = None
    first_infra: LogLine | None = None
    first_consequence: LogLine | None = None
    failed_task_ids = {t.id for t in failed.failed_tasks} if failed else set()

    for line in lines:
        msg = line.message
        if _TASK_FAILED.match(msg) and line.task_run_id:
            if not failed_task_ids or line.task_run_id in failed_task_ids:
                last_attempt[line.task_run_id] = line
                first_failure.setdefault(line.task_run_id, line.lineno)
            continue
        if not is_error(line):
            continue
        if is_consequence(line):
            first_consequence = first_consequence or line
            continue
        if INFRA_SIGNALS.search(msg):
            first_infra = first_infra or line
        if first_error is None and not _FLOW_EXCEPTION.match(msg):
            first_error = line

    if last_attempt:
        # The earliest failing task is the cause; later ones are usually its victims.
        first_failing = min(
            last_attempt.values(), key=lambda ln: first_failure[ln.task_run_id or ""]
        )
        return RootError(first_failing, "last attempt of the earliest failed task")
    if first_error is not None:
        return RootError(first_error, "earliest error that is not a consequence")
    if first_infra is not None:
        return RootError(first_infra, "infrastructure signal")
    for line in lines:
        if _FLOW_EXCEPTION.match(line.message):
            return RootError(line, "flow-level exception")
    if first_consequence is not None:
        return RootError(first_consequence, "only consequences were logged")
    return RootError(None, "no error line in the logs")


# Frames of the orchestration machinery carry no information about the failure.
_FRAMEWORK_FRAME = re.compile(
    r'^\s*File "[^"]*(?:/site-packages/(?:prefect|anyio|uvloop)/|/lib/python3\.\d+/(?:asyncio|concurrent|threading\.py|contextlib\.py))'
)
_FRAME = re.compile(r'^\s*File "')
_CARETS = re.compile(r"^\s*[\^~]+\s*$")


def clean_traceback(message: str) -> str:
    """Drop framework frames (Prefect, anyio, asyncio) and caret lines from tracebacks.

    A Prefect task traceback is mostly the task engine's own frames; what explains
    a failure is the user's frames and the libraries they call.
    """
    if _TRACEBACK not in message:
        return message
    out: list[str] = []
    in_framework_frame = False
    dropped = 0
    for line in message.split("\n"):
        if _FRAME.match(line):
            in_framework_frame = bool(_FRAMEWORK_FRAME.match(line))
            dropped += in_framework_frame
            if in_framework_frame:
                continue
        elif in_framework_frame and line.startswith("    "):
            continue  # the dropped frame's source line
        else:
            in_framework_frame = False
        if not _CARETS.match(line):
            out.append(line)
    if dropped:
        at = next((i + 1 for i, ln in enumerate(out) if ln.startswith(_TRACEBACK)), 0)
        out.insert(at, f"  [{dropped} framework frame{'s' if dropped != 1 else ''} omitted]")
    return "\n".join(out)


def _trim_message(message: str, max_lines: int = 40) -> str:
    """Keep the start and the end of a long (traceback) message, at most ``max_lines`` lines."""
    parts = message.split("\n")
    if len(parts) <= max_lines:
        return message
    if max_lines <= 2:
        return f"{parts[0]} [... {len(parts) - 1} more lines]"
    head_n = max(1, min(8, max_lines // 4))
    tail_n = max_lines - head_n - 1
    head, tail = parts[:head_n], parts[-tail_n:]
    return "\n".join([*head, f"    ... {len(parts) - head_n - tail_n} lines omitted ...", *tail])


class _Selection:
    """Kept lines and their rendering, within a character budget."""

    def __init__(self, lines: Sequence[LogLine], redactor: Redactor, run_names: dict[str, str],
                 budget_chars: int) -> None:
        self.lines = lines
        self.redactor = redactor
        self.run_names = run_names
        self.budget = budget_chars
        self.used = 0
        self.rendered: dict[int, str] = {}
        self.repeats: dict[int, int] = {}
        self.templates: set[str] = set()
        self._clean: dict[int, str] = {}

    def message(self, line: LogLine) -> str:
        """The line's message, cleaned and redacted once (so redactions are counted once)."""
        if line.lineno not in self._clean:
            self._clean[line.lineno] = self.redactor.redact(clean_traceback(line.message))
        return self._clean[line.lineno]

    def render(self, line: LogLine, max_lines: int) -> str:
        where = line.task_run_name or ""
        sub = self.run_names.get(line.flow_run_id or "")
        if sub:
            where = f"{sub}/{where}" if where else sub
        ts = line.timestamp[11:23] if len(line.timestamp) >= 19 else line.timestamp
        body = _trim_message(self.message(line), max_lines)
        body = body.replace("\n", "\n        ")
        where = f" [{where}]" if where else ""
        return f"L{line.lineno} {ts} {line.level_name}{where} {body}"

    def add(self, index: int, max_lines: int = 40, *, force: bool = False) -> bool:
        line = self.lines[index]
        if line.lineno in self.rendered:
            return True
        text = self.render(line, max_lines)
        cost = len(text) + 1
        if self.used + cost > self.budget and not force:
            text = self.render(line, 6)
            cost = len(text) + 1
            if self.used + cost > self.budget:
                return False
        self.rendered[line.lineno] = text
        self.used += cost
        return True


def build_evidence(
    failed: FailedRun,
    lines: Sequence[LogLine],
    budget_tokens: int = DEFAULT_BUDGET_TOKENS,
    redactor: Redactor | None = None,
) -> Evidence:
    """Condense a failed run's logs into redacted evidence within ``budget_tokens``.

    Example:
        >>> ev = build_evidence(failed_run, log_lines, budget_tokens=4000)
        >>> ev.root_error_line, ev.tokens <= 4000
        (812, True)
    """
    started = time.perf_counter()
    redactor = redactor or Redactor()
    budget_chars = budget_tokens * CHARS_PER_TOKEN
    header = _header(failed, redactor)
    root = find_root_error(lines, failed)

    # Reserve what the framing costs so the total stays within the budget.
    frame_cost = len(header) + 200
    sel = _Selection(
        lines,
        redactor,
        {s.id: s.name for s in failed.subflows},
        max(budget_chars - frame_cost, 0),
    )
    index_of = {line.lineno: i for i, line in enumerate(lines)}

    if root.line is not None:
        i = index_of[root.line.lineno]
        sel.add(i, max_lines=60, force=True)
        sel.templates.add(template(root.line.message))
        # What led up to it, in the same task (or the flow itself).
        before = [j for j in range(max(0, i - 40), i) if lines[j].task_run_id == root.line.task_run_id]
        for j in before[-8:]:
            sel.add(j, max_lines=4)
        for j in range(i + 1, min(len(lines), i + 3)):
            sel.add(j, max_lines=4)

    # Other distinct errors, earliest first, one per template, with counts of repeats.
    counts: dict[str, int] = {}
    first_of: dict[str, int] = {}
    for i, line in enumerate(lines):
        if is_error(line):
            t = template(line.message)
            counts[t] = counts.get(t, 0) + 1
            first_of.setdefault(t, i)
    root_exception = parse_exception(root.line.message) if root.line else (None, None)
    for t, i in sorted(first_of.items(), key=lambda kv: (is_consequence(lines[kv[1]]), kv[1])):
        if t in sel.templates:
            continue
        # The same exception re-raised by the subflow and the flow: its first line is enough.
        same = root_exception[0] is not None and parse_exception(lines[i].message) == root_exception
        if not sel.add(i, max_lines=1 if same or is_consequence(lines[i]) else 20):
            break
        sel.templates.add(t)
        if counts[t] > 1:
            sel.repeats[lines[i].lineno] = counts[t]

    # Head and tail: how the run started and how it ended.
    for i in range(min(5, len(lines))):
        sel.add(i, max_lines=3)
    for i in range(max(0, len(lines) - 15), len(lines)):
        sel.add(i, max_lines=6)
    # Then more of the tail, as long as the budget lasts.
    for i in range(max(0, len(lines) - 15) - 1, max(-1, len(lines) - 200), -1):
        if not sel.add(i, max_lines=3):
            break

    body = _assemble(sel, len(lines))
    text = f"{header}\n\n## Log excerpt ({len(lines)} lines, {len(sel.rendered)} kept)\n{body}"

    root_text = exc_type = exc_msg = None
    if root.line is not None:
        root_text = redactor.redact(root.line.message.split("\n", 1)[0])
        exc_type, exc_msg = parse_exception(root.line.message)
        exc_msg = redactor.redact(exc_msg) if exc_msg else None
    if exc_type is None and failed.run.state_message:
        exc_type, exc_msg = parse_exception(failed.run.state_message)
        exc_msg = redactor.redact(exc_msg) if exc_msg else None

    return Evidence(
        text=text,
        tokens=estimate_tokens(text),
        kept_lines=sorted(sel.rendered),
        redactions=dict(redactor.counts),
        root_error=root_text,
        root_error_line=root.line.lineno if root.line else None,
        exception_type=exc_type,
        exception_message=exc_msg,
        failed_task=_failed_task_name(failed, root.line),
        total_lines=len(lines),
        elapsed_ms=(time.perf_counter() - started) * 1000,
    )


def _failed_task_name(failed: FailedRun, root_line: LogLine | None) -> str | None:
    if root_line is not None and root_line.task_run_name:
        return root_line.task_run_name
    tasks = failed.failed_tasks
    return tasks[0].name if tasks else None


def _header(failed: FailedRun, redactor: Redactor) -> str:
    run = failed.run
    out = [
        "## Run",
        f"flow: {run.flow_name}",
        f"flow run: {run.name} ({run.id})",
        f"state: {run.state}" + (f" -- {redactor.redact(run.state_message)}" if run.state_message else ""),
    ]
    if run.deployment:
        out.append(f"deployment: {run.deployment}")
    if run.work_pool:
        out.append(f"work pool: {run.work_pool}")
    if run.tags:
        out.append(f"tags: {', '.join(run.tags)}")
    if run.start_time and run.end_time:
        out.append(f"duration: {(run.end_time - run.start_time).total_seconds():.1f}s")
    if run.run_count > 1:
        out.append(f"flow attempts: {run.run_count}")
    for sub in failed.subflows:
        msg = f" -- {redactor.redact(sub.state_message)}" if sub.state_message else ""
        out.append(f"failed subflow: {sub.name} (flow {sub.flow_name}): {sub.state}{msg}")
    failed_tasks = failed.failed_tasks
    if failed_tasks:
        out.append("## Failed tasks")
        for t in failed_tasks[:20]:
            attempts = f", {t.run_count} attempts" if t.run_count > 1 else ""
            msg = f": {redactor.redact(t.message)}" if t.message else ""
            out.append(f"- {t.name} ({t.state}{attempts}){msg}")
        if len(failed_tasks) > 20:
            out.append(f"- ... and {len(failed_tasks) - 20} more")
    return "\n".join(out)


def _assemble(sel: _Selection, total: int) -> str:
    out: list[str] = []
    previous = 0
    for lineno in sorted(sel.rendered):
        gap = lineno - previous - 1
        if gap > 0:
            out.append(f"... {gap} line{'s' if gap != 1 else ''} omitted ...")
        text = sel.rendered[lineno]
        if lineno in sel.repeats:
            text += f"  (x{sel.repeats[lineno]} similar lines)"
        out.append(text)
        previous = lineno
    if total > previous:
        out.append(f"... {total - previous} lines omitted ...")
    return "\n".join(out)


@task(name="build-evidence", cache_policy=NO_CACHE)
async def gather_evidence(failed: FailedRun, logs: RunLogs, budget_tokens: int = DEFAULT_BUDGET_TOKENS) -> Evidence:
    """Condense and redact the failed run's logs into evidence within the token budget."""
    evidence = build_evidence(failed, logs.lines, budget_tokens)
    get_run_logger().info(
        "Evidence: %d of %d lines kept, ~%d tokens, root error at L%s, %d secret(s) redacted, %.0f ms",
        len(evidence.kept_lines), evidence.total_lines, evidence.tokens,
        evidence.root_error_line, evidence.redaction_count, evidence.elapsed_ms,
    )
    return evidence
