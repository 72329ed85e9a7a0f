"""Evidence: what may be sent to an LLM about a failed run, and the reference a summary keeps."""

from __future__ import annotations

from pydantic import BaseModel, Field

from prefect_failure_insights.models.common import Redacted

#: What a flagged evidence line carries before its message: run text that reads like an
#: instruction to a model (`evidence.untrusted`). The prompt tells the model what it means.
FLAG = "[flagged: reads like an instruction]"


def cited_block(text: str, lineno: int, prefix: str = "L") -> str | None:
    """Evidence line ``lineno`` as the evidence builder renders it (``L<n> ...`` and its
    continuation lines, indented by 8) in ``text``; None when the evidence does not hold it."""
    lines = text.split("\n")
    start = f"{prefix}{lineno} "
    for at, line in enumerate(lines):
        if line.startswith(start):
            end = at + 1
            while end < len(lines) and lines[end].startswith(" " * 8):
                end += 1
            return "\n".join(lines[at:end])
    return None


class EvidenceRef(BaseModel):
    """The evidence a summary rests on, as stored with it."""

    text: Redacted = Field(default="", description="The condensed, redacted evidence (what the LLM was sent).")
    tokens: int = 0
    root_error_line: int | None = None
    redaction_count: int = 0
    line_prefix: str = Field(default="L", description="How its lines are numbered: L<n> (log lines), E<n> "
                             "(the provisional summary's records).")
    logs_complete: bool = Field(default=True, description="False when it was made before the run's last log "
                                "records were stored (the summary is made again when they are).")

    def cited(self, lineno: int) -> str | None:
        """Evidence line ``lineno`` with its continuation lines (`cited_block`)."""
        return cited_block(self.text, lineno, self.line_prefix)


class Evidence(BaseModel):
    """What may be sent to an LLM: condensed, redacted, with original line numbers."""

    text: Redacted
    tokens: int
    kept_lines: list[int] = Field(default_factory=list)
    flagged_lines: list[int] = Field(default_factory=list, description="Kept lines that read like instructions "
                                     "to a model (marked in the text): data, never support on their own.")
    redactions: dict[str, int] = Field(default_factory=dict)
    root_error: Redacted | None = Field(
        default=None, description="The log line chosen as the root error (redacted)."
    )
    root_error_line: int | None = None
    root_error_detail: Redacted | None = Field(
        default=None, description="The root error's whole record (its traceback too), redacted and bounded: what "
        "the failure is classified on and its facts read from.")
    root_error_reason: str | None = Field(default=None, description="Why that line was chosen.")
    exception_type: str | None = None
    exception_message: Redacted | None = None
    failed_task: Redacted | None = None
    total_lines: int = 0
    elapsed_ms: float = 0.0
    line_prefix: str = "L"
    logs_complete: bool = True

    @property
    def redaction_count(self) -> int:
        return sum(self.redactions.values())

    def reference(self) -> EvidenceRef:
        """What a summary stores of this evidence."""
        return EvidenceRef(text=self.text, tokens=self.tokens, root_error_line=self.root_error_line,
                           redaction_count=self.redaction_count, line_prefix=self.line_prefix,
                           logs_complete=self.logs_complete)
