"""What log lines say: errors, consequences, infrastructure signals, exceptions, templates.

Pure functions over single messages, shared by the evidence builder, the
deterministic fallback and the classifier. They run on every line of runs with a
million lines, so the common case (an ordinary INFO line) costs one or two checks.
"""

from __future__ import annotations

import math
import re

CHARS_PER_TOKEN = 3

# Prefect's own messages.
TASK_FAILED = re.compile(r"^Task run failed with (?:exception|state)[: ]")
FLOW_EXCEPTION = re.compile(r"^Encountered exception during execution: ")
TRACEBACK = "Traceback (most recent call last):"

# Messages that report a failure caused elsewhere.
_CONSEQUENCE = re.compile(
    r"^Finished in state (?:Failed|Crashed|TimedOut)"
    r"|UpstreamTaskError|UnfinishedRun|MissingResult"
    r"|Upstream task run '.*' did not reach a 'COMPLETED' state"
    r"|^Process for flow run .* exited with status code"
    r"|^Reported flow run .* as crashed"
    r"|^Flow run .* exited with (?:exit|status) code"
)
_EXCEPTION_LINE = re.compile(
    r"^(?:[A-Za-z_]\w*\.)*(?:[A-Z]\w*(?:Error|Exception|Exit|Interrupt|Failure|Fault|Timeout|Warning)"
    r"|[A-Z]\w*(?:NotFound|Denied|Refused|Invalid))\b(?::\s*(.*))?$"
)
_INLINE_EXCEPTION = re.compile(
    r"\b((?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:Error|Exception|Exit|Interrupt|Failure|Timeout|NotFound))\b[(:]\s*"
)
# Crashed runs often have no traceback at all, only what the infrastructure said.
INFRA_SIGNALS = re.compile(
    r"(?i)\bOOMKilled\b|out of memory|exit(?:ed)? (?:with )?(?:status |code )?(?:code )?137\b"
    r"|\bSIGKILL\b|\bSIGTERM\b|\bEvicted\b|\beviction\b|ImagePullBackOff|ErrImagePull"
    r"|CrashLoopBackOff|pod (?:never started|failed to start)|FailedScheduling"
    r"|Crash detected|infrastructure (?:exited|failed)|container .* (?:killed|terminated)"
    r"|MemoryError|\bKilled\b|no space left on device|DeadlineExceeded"
)
# Other tools' own error markers, which a shell task streaming their output logs at INFO: Maven's
# "[ERROR]" and "BUILD FAILURE", psql's "ERROR:", dbt's "FAILED" / "Database Error in model", a JVM's
# "Caused by:" and "Exception in thread". Case-sensitive: "0 errors" and "failed=0" are not markers.
TOOL_MARKERS = re.compile(
    r"^\s*\[(?:ERROR|FATAL)\]|(?:^|[\s|\]\[])(?:ERROR|FATAL|FAILED|FAILURE)(?=[\s:|\]\[]|$)"
    r"|^\s*Caused by:|\b(?:Database|Compilation|Runtime) Error\b|^\s*Exception in thread "
    r"|\bFailure in (?:test|model|snapshot|seed)\b|\bCompleted with [1-9]\d* errors?\b"
)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# A cheap pre-check before the expensive patterns: most lines contain none of these.
# Matched against the lower-cased message: ten times faster than a (?i) pattern.
_MAYBE_ERROR = re.compile(
    r"error|exception|fail|traceback|kill|evict|crash|memory|137|sig(?:term|kill)|backoff"
    r"|schedul|space left|deadline|refused|denied|invalid|not ?found|timeout|interrupt|exit|fault"
    r"|errimage|never started|terminat|caused by"
)

_MASKS = (
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I), "<uuid>"),
    (re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?"), "<ts>"),
    (re.compile(r"\b0x[0-9a-f]+\b|\b[0-9a-f]{12,}\b", re.I), "<hex>"),
    (re.compile(r"(?:/[\w.@-]+){2,}"), "<path>"),
    (re.compile(r"'[^'\n]{0,200}'|\"[^\"\n]{0,200}\""), "<str>"),
    (re.compile(r"\d+(?:\.\d+)?"), "<n>"),
)

_FRAMEWORK_FRAME = re.compile(
    r'^\s*File "[^"]*(?:/site-packages/(?:prefect|anyio|uvloop)/'
    r"|/lib/python3\.\d+/(?:asyncio|concurrent|threading\.py|contextlib\.py))"
)
_FRAME = re.compile(r'^\s*File "')
_CARETS = re.compile(r"^\s*[\^~]+\s*$")


def estimate_tokens(text: str) -> int:
    """A conservative token estimate for log text: one token per three characters.

    tiktoken would be exact for OpenAI models, but it downloads its encodings on
    first use, which fails on offline workers; other providers tokenize differently
    anyway. Log text (ids, paths, punctuation) runs at 2.5-3.5 characters per token.
    """
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def template(message: str, mask_strings: bool = True) -> str:
    """The shape of a message: its first line with ids, times, paths, numbers and
    (unless ``mask_strings`` is false) quoted strings masked.

    Lines with one template are repetitions of one event ("retry 3 in 5s", "retry 4
    in 8s"): shown once with a count, and compared with a good run's templates.
    """
    first = message.split("\n", 1)[0][:300]
    for pattern, mask in _MASKS:
        if mask == "<str>" and not mask_strings:
            continue
        first = pattern.sub(mask, first)
    return first


def is_consequence(message: str) -> bool:
    """True for messages that report a failure caused elsewhere."""
    return bool(_CONSEQUENCE.search(message))


def is_error(level: int, message: str) -> bool:
    """True for ERROR-level lines, tracebacks, exception lines and infrastructure signals."""
    if level >= 40:
        return True
    if not _MAYBE_ERROR.search(message.lower()):
        return False
    if TRACEBACK in message or TASK_FAILED.match(message):
        return True
    last = message.rstrip().rsplit("\n", 1)[-1].strip()
    return bool(_EXCEPTION_LINE.match(last)) or bool(INFRA_SIGNALS.search(message)) or is_tool_error(message)


def is_tool_error(message: str) -> bool:
    """True when another tool's own error marker starts or stands in the line (colours removed)."""
    if "\x1b" in message:
        message = _ANSI.sub("", message)
    return bool(TOOL_MARKERS.search(message))


def is_infra_signal(message: str) -> bool:
    return bool(INFRA_SIGNALS.search(message))


def parse_exception(message: str) -> tuple[str | None, str | None]:
    """``(exception type, message)`` named by a log or state message, if any.

    Reads the final ``Type: message`` line of a traceback, the Prefect forms
    ``Task run failed with exception: Type('message')`` and state messages such as
    ``Flow run encountered an exception: Type: message``.
    """
    lines = [ln.strip() for ln in message.strip().split("\n") if ln.strip()]
    if not lines:
        return None, None
    if TRACEBACK in message:
        for ln in reversed(lines):
            m = _EXCEPTION_LINE.match(ln)
            if m:
                return ln.split(":", 1)[0].strip(), (m.group(1) or "").strip() or None
    m = _INLINE_EXCEPTION.search(lines[0])
    if m:
        rest = lines[0][m.end():]
        rest = re.sub(r"\)?\s*-\s*Retr(?:y|ies) .*$", "", rest).rstrip(")").strip().strip("'\"")
        return m.group(1), rest or None
    return None, None


def short_type(exception_type: str | None) -> str | None:
    """``httpx.HTTPStatusError`` -> ``HTTPStatusError``."""
    return exception_type.rsplit(".", 1)[-1] if exception_type else None


def clean_traceback(message: str) -> str:
    """Drop framework frames (Prefect, anyio, asyncio) and caret lines from tracebacks.

    A Prefect task traceback is mostly the task engine's own frames; what explains
    a failure is the user's frames and the libraries they call. A traceback made only of
    framework frames (an error raised inside Prefect) keeps them: they are the evidence.
    """
    if TRACEBACK not in message:
        return message
    lines = message.split("\n")
    frames = [line for line in lines if _FRAME.match(line)]
    if frames and all(_FRAMEWORK_FRAME.match(line) for line in frames):
        # Raised inside the framework itself, with no frame of the user's code: the frames are the
        # evidence (a Prefect bug to report), keep them all but the carets.
        return "\n".join(line for line in lines if not _CARETS.match(line))
    out: list[str] = []
    in_framework_frame = False
    dropped = 0
    for line in lines:
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
        at = next((i + 1 for i, ln in enumerate(out) if ln.startswith(TRACEBACK)), 0)
        out.insert(at, f"  [{dropped} framework frame{'s' if dropped != 1 else ''} omitted]")
    return "\n".join(out)


def trim(message: str, max_lines: int, max_chars: int) -> str:
    """Keep the start and the end of a long message within ``max_lines`` and ``max_chars``.

    Tracebacks keep their end (where the exception is) rather than their start.
    """
    parts = message.split("\n")
    if len(parts) > max_lines:
        if max_lines <= 2:
            parts = [parts[0], f"    [... {len(parts) - 1} more lines]"]
        else:
            head_n = max(1, min(8, max_lines // 4))
            tail_n = max_lines - head_n - 1
            parts = [*parts[:head_n], f"    ... {len(parts) - head_n - tail_n} lines omitted ...",
                     *parts[-tail_n:]]
    text = "\n".join(parts)
    if len(text) > max_chars:
        keep = max(max_chars - 40, 20)
        head = keep // 3
        text = f"{text[:head]} [... {len(text) - keep} characters omitted ...] {text[-(keep - head):]}"
    return text
