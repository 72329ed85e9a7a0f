"""Evidence: the part of a failed run worth showing to a reader or an LLM.

A failed run has 20,000-1,000,000 log lines; the root error often sits early, followed
by its consequences ("Finished in state Failed", UpstreamTaskError, the flow
re-raising the task's exception) and by misleading later errors. `EvidenceBuilder`
reads the lines once, in order, keeping only bounded state (the head, a rolling
tail, one example per error template with its context, each task's last failed
attempt), so memory does not grow with the log. `finish()` then chooses the root
error, and fills the token budget in priority order:

1. the root error with its traceback (framework frames removed) and the lines
   before and after it in the same task (distinct lines: the context reaches further
   back when the lines just before are repeats of one template);
2. the other failed tasks' last attempts;
3. error templates that never occur in the deployment's last successful run;
4. the other distinct errors, earliest first, repeats collapsed with a count;
5. the head and the tail of the log.

Repeated templates are collapsed everywhere, head and tail included: one example line, a
count, the first and last line numbers. Lines are first chosen at modest sizes; what budget
is left is then spent, in the same priority order, giving back what was cut: an error line
or a multi-line error message is never cut in its middle while budget remains.

Every kept line is redacted before it is rendered and carries its original line
number (``L1234``), so a summary can cite it; a line that reads like an instruction to a
model is flagged (`evidence.untrusted`) and listed in ``Evidence.flagged_lines``. The budget
is a hard limit on the estimated tokens of the whole text, header and markers included.
"""

from __future__ import annotations

import re
import time
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from prefect_failure_insights.defaults import EVIDENCE_TOKEN_BUDGET
from prefect_failure_insights.redaction import Redactor
from prefect_failure_insights.evidence.signals import (
    CHARS_PER_TOKEN,
    FLOW_EXCEPTION,
    TASK_FAILED,
    clean_traceback,
    estimate_tokens,
    is_consequence,
    is_error,
    is_infra_signal,
    parse_exception,
    short_type,
    template,
    trim,
)
from prefect_failure_insights.evidence.untrusted import FLAG, instruction_like
from prefect_failure_insights.models import (
    Baseline,
    Evidence,
    FailedRun,
    FlowRunInfo,
    LogLine,
    LogSection,
)

HEAD = 5
TAIL_MIN = 15
TAIL_MAX = 200
CONTEXT_BEFORE = 8  # distinct lines before the root error
CONTEXT_WINDOW = 64  # how far back they are looked for
CONTEXT_AFTER = 3
#: The largest a kept line is rendered when budget remains (its lines, its characters).
FULL_LINES = 200
FULL_CHARS = 12_000
MAX_TEMPLATES = 1000
MAX_STORED_MESSAGE = 20_000
#: The end of the root error's record kept whole (its exception and last frames): `Evidence.root_error_detail`.
ROOT_DETAIL_CHARS = 8_000
MAX_CONTEXT_MESSAGE = 1_000
_REDACTED = re.compile(r"\[REDACTED:(\w+)\]")


def _bounded(line: LogLine, limit: int) -> LogLine:
    """The line, or a copy whose message is cut at a word boundary below ``limit``."""
    if len(line.message) <= limit:
        return line
    cut = line.message.rfind(" ", 0, limit)
    return replace(line, message=line.message[: cut if cut > limit // 2 else limit] + " [...]")


def _task_key(line: LogLine) -> str | None:
    return line.task_run_id or line.task_run_name


@dataclass
class _Candidate:
    """An error line kept with its context, and how often its template occurred."""

    line: LogLine
    template: str
    before: list[LogLine] = field(default_factory=list)
    after: list[LogLine] = field(default_factory=list)
    count: int = 1
    novel: bool = False


@dataclass
class _Group:
    """Lines that are added to the evidence together, at one priority."""

    priority: int
    lines: list[tuple[LogLine, int, int]]  # line, max lines, max chars
    note: dict[int, str] = field(default_factory=dict)


class EvidenceBuilder:
    """Condense a run's log lines, read once in order, into `Evidence` within a token budget.

    Example:
        >>> builder = EvidenceBuilder(failed_run, budget_tokens=6000)
        >>> for line in lines:
        ...     builder.add(line)
        >>> evidence = builder.finish()
    """

    def __init__(
        self,
        failed: FailedRun,
        budget_tokens: int = EVIDENCE_TOKEN_BUDGET,
        redactor: Redactor | None = None,
        *,
        baseline: Baseline | None = None,
        notes: Iterable[str] = (),
        prefix: str = "L",
        header: str | None = None,
    ) -> None:
        self.failed = failed
        self.prefix = prefix
        self.header_text = header
        self.budget_tokens = budget_tokens
        self.redactor = redactor or Redactor()
        self.baseline = baseline
        self.good_templates = set(baseline.templates) if baseline else None
        self.notes = list(notes)
        self.started = time.perf_counter()
        self.total = 0
        self.head: list[LogLine] = []
        self.tail: deque[LogLine] = deque(maxlen=TAIL_MAX)
        self.recent: deque[LogLine] = deque(maxlen=CONTEXT_WINDOW)
        self.templates: dict[str, _Candidate] = {}
        self.overflow_errors = 0
        self.task_failures: dict[str, tuple[int, _Candidate]] = {}  # key -> (first lineno, last attempt)
        self.flow_exceptions: list[_Candidate] = []
        self.first_error: _Candidate | None = None
        self.first_infra: _Candidate | None = None
        self.first_consequence: _Candidate | None = None
        self.novel_warnings: list[_Candidate] = []
        self._awaiting_context: list[_Candidate] = []

    # -- reading -----------------------------------------------------------------------
    def add_all(self, lines: Iterable[LogLine]) -> EvidenceBuilder:
        for line in lines:
            self.add(line)
        return self

    def add(self, line: LogLine) -> None:
        """Read the next line (in log order)."""
        self.total += 1
        small = _bounded(line, MAX_CONTEXT_MESSAGE)
        if self.total <= HEAD:
            self.head.append(small)
        self.tail.append(small)
        if self._awaiting_context:
            for cand in self._awaiting_context:
                cand.after.append(small)
            self._awaiting_context = [c for c in self._awaiting_context if len(c.after) < CONTEXT_AFTER]

        msg = line.message
        if TASK_FAILED.match(msg) and _task_key(line):
            self._task_failure(line)
        elif is_error(line.level, msg):
            self._error(line)
        elif line.level == 30 and self.good_templates is not None and len(self.novel_warnings) < 50:
            t = template(msg)
            if t not in self.good_templates and t not in self.templates:
                self.novel_warnings.append(self._candidate(line, t, novel=True))
                self.templates[t] = self.novel_warnings[-1]
        self.recent.append(small)

    def _candidate(self, line: LogLine, t: str, novel: bool = False) -> _Candidate:
        key = _task_key(line)
        before = _distinct_last([ln for ln in self.recent if _task_key(ln) == key], CONTEXT_BEFORE)
        cand = _Candidate(_bounded(line, MAX_STORED_MESSAGE), t, before=before, novel=novel)
        self._awaiting_context.append(cand)
        return cand

    def _task_failure(self, line: LogLine) -> None:
        key = _task_key(line) or ""
        cand = self._candidate(line, template(line.message))
        first = self.task_failures[key][0] if key in self.task_failures else line.lineno
        self.task_failures[key] = (first, cand)

    def _error(self, line: LogLine) -> None:
        msg = line.message
        t = template(msg)
        known = self.templates.get(t)
        if known is not None:
            known.count += 1
            return
        if len(self.templates) >= MAX_TEMPLATES:
            self.overflow_errors += 1
            return
        novel = self.good_templates is not None and t not in self.good_templates
        cand = self._candidate(line, t, novel=novel)
        self.templates[t] = cand
        if is_consequence(msg):
            self.first_consequence = self.first_consequence or cand
        elif FLOW_EXCEPTION.match(msg):
            self.flow_exceptions.append(cand)
        else:
            if is_infra_signal(msg):
                self.first_infra = self.first_infra or cand
            self.first_error = self.first_error or cand

    # -- choosing the root error -----------------------------------------------------------
    def _state_exception(self) -> str | None:
        for run in [*reversed(self.failed.subflows), self.failed.run]:
            exc_type, _ = parse_exception(run.state_message or "")
            if exc_type:
                return short_type(exc_type)
        return None

    def root(self) -> tuple[_Candidate | None, str]:
        """The root error candidate and why it was chosen."""
        failed_tasks = {t.id for t in self.failed.failed_tasks} | {t.name for t in self.failed.failed_tasks}
        attempts = sorted(
            ((first, cand) for key, (first, cand) in self.task_failures.items()
             if not failed_tasks or key in failed_tasks),
            key=lambda fc: fc[0],
        )
        last_attempts = [cand for _, cand in attempts]
        if self.failed.run.crashed and self.first_infra is not None:
            return self.first_infra, "infrastructure signal of a crashed run"
        wanted = self._state_exception()
        if wanted:
            for cand in [*last_attempts, *self.flow_exceptions, *(c for c in [self.first_error] if c)]:
                if short_type(parse_exception(cand.line.message)[0]) == wanted:
                    return cand, f"earliest error raising {wanted}, the exception the run failed with"
        if last_attempts:
            return last_attempts[0], "last attempt of the earliest failed task"
        if self.flow_exceptions:
            return self.flow_exceptions[0], "exception raised by the flow"
        if self.first_error is not None:
            return self.first_error, "earliest error that is not a consequence"
        if self.first_infra is not None:
            return self.first_infra, "infrastructure signal"
        if self.first_consequence is not None:
            return self.first_consequence, "only consequences were logged"
        return None, "no error line in the logs"

    # -- writing the evidence --------------------------------------------------------------
    def _groups(self, root: _Candidate | None) -> list[_Group]:
        groups: list[_Group] = []
        if root is not None:
            groups.append(_Group(0, [(root.line, 60, 12_000)]))
            context = _collapse([*root.before, *root.after], self.prefix)
            groups.append(_Group(1, [(ln, 4, 400) for ln, _ in context], {ln.lineno: n for ln, n in context if n}))
        for _, cand in sorted(self.task_failures.values(), key=lambda fc: fc[0]):
            if cand is not root:
                groups.append(_Group(2, [(cand.line, 12, 1500)]))
        shown = {id(root)}
        errors = sorted(self.templates.values(), key=lambda c: c.line.lineno)
        for cand in errors:
            if cand.novel and id(cand) not in shown:
                shown.add(id(cand))
                groups.append(_Group(3, [(cand.line, 12, 1500)], self._count_note(cand, novel=True)))
        root_exc = parse_exception(root.line.message) if root else (None, None)
        for cand in errors:
            if id(cand) in shown:
                continue
            msg = cand.line.message
            same = root_exc[0] is not None and parse_exception(msg) == root_exc
            consequence = is_consequence(msg) or same
            groups.append(_Group(5 if consequence else 4, [(cand.line, 1 if consequence else 8, 600)],
                                 self._count_note(cand)))
        head = _collapse(self.head, self.prefix)
        groups.append(_Group(6, [(ln, 3, 300) for ln, _ in head], {ln.lineno: n for ln, n in head if n}))
        tail = _collapse(list(self.tail), self.prefix)
        notes = {ln.lineno: n for ln, n in tail if n}
        groups.append(_Group(6, [(ln, 6, 600) for ln, _ in tail[-TAIL_MIN:]], notes))
        groups.append(_Group(7, [(ln, 3, 300) for ln, _ in reversed(tail[:-TAIL_MIN])], notes))
        return groups

    def _count_note(self, cand: _Candidate, novel: bool = False) -> dict[int, str]:
        parts = []
        if cand.count > 1:
            parts.append(f"x{cand.count} similar lines")
        if novel:
            parts.append("not in the last successful run")
        return {cand.line.lineno: f"  ({'; '.join(parts)})"} if parts else {}

    def _render(self, line: LogLine, max_lines: int, max_chars: int, cache: dict[int, str], note: str = "") -> str:
        """``L<n> <time> <LEVEL> [<task>] <message><note>``, at most ``max_chars`` long."""
        if line.lineno not in cache:
            cache[line.lineno] = self.redactor.redact(clean_traceback(line.message))
        where = line.task_run_name or ""
        sub = self._subflow_names.get(line.flow_run_id or "")
        if sub:
            where = f"{sub}/{where}" if where else sub
        where = f" [{self.redactor.redact(where)[:120]}]" if where else ""
        ts = line.timestamp[11:].split("+")[0].rstrip("Z")[:12] if len(line.timestamp) >= 19 else line.timestamp
        flag = f"{FLAG} " if self._flagged(line.lineno, cache[line.lineno]) else ""
        prefix = f"{self.prefix}{line.lineno} {ts} {line.level_name}{where} {flag}"
        body = trim(cache[line.lineno], max_lines, max(max_chars - len(prefix) - len(note), 40))
        return prefix + body.replace("\n", "\n        ") + note

    def _flagged(self, lineno: int, message: str) -> bool:
        """Whether a line reads like an instruction to a model (decided once per line)."""
        if lineno not in self._flags:
            self._flags[lineno] = instruction_like(message) is not None
        return self._flags[lineno]

    def finish(self) -> Evidence:
        """Choose the root error and write the evidence."""
        self._subflow_names = {s.id: s.name for s in self.failed.subflows}
        self._flags: dict[int, bool] = {}
        budget_chars = self.budget_tokens * CHARS_PER_TOKEN
        root, why = self.root()
        header = self._header(budget_chars // 4)
        title = f"\n\n## Log excerpt ({self.total} lines"
        cache: dict[int, str] = {}
        chosen: dict[int, tuple[int, str]] = {}  # lineno -> (priority, text)
        kept: list[tuple[int, LogLine]] = []  # in priority order
        notes: dict[int, str] = {}  # lineno -> the notes its groups gave it
        used = len(header) + len(title) + 40
        groups = sorted(self._groups(root), key=lambda g: g.priority)
        for group in groups:
            for line, max_lines, max_chars in group.lines:
                if line.lineno in chosen:
                    note = group.note.get(line.lineno, "")
                    if note and not chosen[line.lineno][1].endswith(note) and len(note) < budget_chars - used:
                        chosen[line.lineno] = (chosen[line.lineno][0], chosen[line.lineno][1] + note)
                        notes[line.lineno] += note
                        used += len(note)
                    continue
                room = budget_chars - used - 40  # 40: a possible "... N lines omitted ..." marker
                if room <= 80:
                    break
                # Continuation lines are indented by 8 characters: count them in.
                limit = min(max_chars, room) - 8 * max_lines
                text = self._render(line, max_lines, limit, cache, group.note.get(line.lineno, ""))
                if len(text) + 1 > room:
                    continue
                chosen[line.lineno] = (group.priority, text)
                kept.append((group.priority, line))
                notes[line.lineno] = group.note.get(line.lineno, "")
                used += len(text) + 41
        used = self._expand(kept, notes, chosen, cache, budget_chars, used)
        text = self._assemble(header, title, chosen)
        # The per-line reservations are generous; this only trims in pathological cases.
        while estimate_tokens(text) > self.budget_tokens and chosen:
            worst = max(chosen, key=lambda n: (chosen[n][0], -n))
            del chosen[worst]
            text = self._assemble(header, title, chosen)

        exc_type = exc_msg = root_text = root_detail = None
        if root is not None:
            root_text = self.redactor.redact(root.line.message.split("\n", 1)[0])[:1000]
            root_detail = self.redactor.redact(root.line.message[-ROOT_DETAIL_CHARS:])
            exc_type, exc_msg = parse_exception(root.line.message)
        if exc_type is None:
            exc_type, exc_msg = parse_exception(self.failed.run.state_message or "")
        return Evidence(
            text=text,
            tokens=estimate_tokens(text),
            kept_lines=sorted(chosen),
            flagged_lines=sorted(n for n in chosen if self._flags.get(n)),
            redactions=dict(Counter(_REDACTED.findall(text))),
            root_error=root_text,
            root_error_detail=root_detail,
            root_error_line=root.line.lineno if root else None,
            line_prefix=self.prefix,
            root_error_reason=why,
            exception_type=exc_type,
            exception_message=self.redactor.redact(exc_msg)[:1000] if exc_msg else None,
            failed_task=self._failed_task(root),
            total_lines=self.total,
            elapsed_ms=(time.perf_counter() - self.started) * 1000,
        )

    def _expand(self, kept: list[tuple[int, LogLine]], notes: dict[int, str], chosen: dict[int, tuple[int, str]],
                cache: dict[int, str], budget_chars: int, used: int) -> int:
        """Spend the budget left on what the first pass cut, in priority order: each kept line
        is rendered whole if that fits, else as large as what is left allows."""
        for priority, line in kept:
            note = notes[line.lineno]
            old = chosen[line.lineno][1]
            room = budget_chars - used - 40
            if room <= 0:
                break
            full = self._render(line, FULL_LINES, FULL_CHARS, cache, note)
            if full == old:
                continue
            if len(full) - len(old) > room:
                full = self._render(line, FULL_LINES, len(old) + room - 8 * FULL_LINES, cache, note)
                if len(full) <= len(old) or len(full) - len(old) > room:
                    continue
            chosen[line.lineno] = (priority, full)
            used += len(full) - len(old)
        return used

    def _failed_task(self, root: _Candidate | None) -> str | None:
        if root is not None and root.line.task_run_name:
            return root.line.task_run_name
        tasks = self.failed.failed_tasks
        return tasks[0].name if tasks else None

    def _assemble(self, header: str, title: str, chosen: dict[int, tuple[int, str]]) -> str:
        out: list[str] = []
        previous = 0
        for lineno in sorted(chosen):
            gap = lineno - previous - 1
            if gap > 0:
                out.append(f"... {gap} line{'s' if gap != 1 else ''} omitted ...")
            out.append(chosen[lineno][1])
            previous = lineno
        if self.total > previous:
            out.append(f"... {self.total - previous} lines omitted ...")
        extra = f", {self.overflow_errors} more errors of other kinds not shown" if self.overflow_errors else ""
        return f"{header}{title}, {len(chosen)} kept{extra})\n" + "\n".join(out)

    def _header(self, max_chars: int) -> str:
        r = self.redactor.redact
        if self.header_text is not None:
            text = "\n".join(f"{ln} {FLAG}" if instruction_like(ln) else ln for ln in r(self.header_text).split("\n"))
            return trim(text, 30, max_chars)
        run = self.failed.run

        def msg(text: str | None) -> str:
            return f" -- {trim(r(text), 4, 400)}" if text else ""

        out = [
            "## Run",
            f"flow: {run.flow_name}",
            f"flow run: {run.name} ({run.id})",
            f"state: {run.state}{msg(run.state_message)}",
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
        for sub in self.failed.subflows[:10]:
            out.append(f"failed subflow: {sub.name} (flow {sub.flow_name}): {sub.state}{msg(sub.state_message)}")
        failed_tasks = self.failed.failed_tasks
        if failed_tasks:
            out.append("## Failed tasks")
            for t in failed_tasks[:10]:
                attempts = f", {t.run_count} attempts" if t.run_count > 1 else ""
                out.append(f"- {t.name} ({t.state}{attempts}){msg(t.message)}")
            if len(failed_tasks) > 10:
                out.append(f"- ... and {len(failed_tasks) - 10} more failed tasks")
        if self.baseline is not None:
            out.append(f"## Compared with the last successful run ({self.baseline.flow_run_name})")
            out.extend(f"- {r(d)}" for d in self.baseline.differences[:10])
            if not self.baseline.differences:
                out.append("- same deployment version, work pool and parameters")
        out.extend(f"note: {n}" for n in self.notes)
        # Names and state messages are the run's text too: instruction-like ones are flagged.
        out = [f"{ln} {FLAG}" if instruction_like(ln) else ln for ln in out]
        header = "\n".join(out)
        return header if len(header) <= max_chars else trim(header, 10_000, max_chars)


def _distinct_last(lines: list[LogLine], n: int) -> list[LogLine]:
    """The last ``n`` lines of distinct templates (each template's last occurrence), in order:
    repeats of one template take one line of context, so the context reaches further back."""
    seen: set[str] = set()
    out: list[LogLine] = []
    for line in reversed(lines):
        t = template(line.message)
        if t not in seen:
            seen.add(t)
            out.append(line)
            if len(out) == n:
                break
    return out[::-1]


def _collapse(lines: list[LogLine], prefix: str = "L") -> list[tuple[LogLine, str]]:
    """One line per template, the first, with a note counting the others and giving the line
    numbers of the first and the last: ``(x140 similar lines, L19801-L19940)``."""
    groups: dict[str, list[LogLine]] = {}
    for line in lines:
        groups.setdefault(template(line.message), []).append(line)
    out = []
    for same in groups.values():
        note = (f"  (x{len(same)} similar lines, {prefix}{same[0].lineno}-{prefix}{same[-1].lineno})"
                if len(same) > 1 else "")
        out.append((same[0], note))
    return sorted(out, key=lambda pair: pair[0].lineno)


SECTIONS_SHARE = 0.3  # of the budget, for other systems' logs when there are any


def build_evidence(
    failed: FailedRun,
    lines: Iterable[LogLine],
    budget_tokens: int = EVIDENCE_TOKEN_BUDGET,
    *,
    redactor: Redactor | None = None,
    baseline: Baseline | None = None,
    notes: Iterable[str] = (),
    sections: Iterable[LogSection] = (),
    prefix: str = "L",
    logs_complete: bool = True,
) -> Evidence:
    """Condense a failed run's logs (and other systems' log sections) into redacted evidence
    within ``budget_tokens`` (lines cited as ``<prefix><n>``); ``logs_complete`` False when the
    run's last records had not been stored yet (the evidence keeps saying so).

    Example:
        >>> ev = build_evidence(failed_run, log_lines, budget_tokens=4000)
        >>> ev.root_error_line, ev.tokens <= 4000
        (812, True)
    """
    redactor = redactor or Redactor()
    sections = list(sections)
    main_budget = budget_tokens - int(budget_tokens * SECTIONS_SHARE) if sections else budget_tokens
    evidence = EvidenceBuilder(failed, main_budget, redactor, baseline=baseline, notes=notes,
                               prefix=prefix).add_all(lines).finish()
    evidence.logs_complete = logs_complete
    if not sections:
        return evidence
    share = (budget_tokens - evidence.tokens) // len(sections) - 2
    texts = [evidence.text]
    for section in sections:
        stand_in = FailedRun(run=FlowRunInfo(
            id=section.title, name=section.title, flow_name=section.source, state="Failed",
            state_message=section.header[-1] if section.header else None,
        ))
        header = "\n".join([f"## {section.title} ({section.source})", *section.header])
        builder = EvidenceBuilder(stand_in, max(share, 50), redactor, prefix="A", header=header)
        texts.append(builder.add_all(section.lines).finish().text)
    text = "\n\n".join(texts)
    return evidence.model_copy(update={
        "text": text,
        "tokens": estimate_tokens(text),
        "redactions": dict(Counter(_REDACTED.findall(text))),
    })
