"""Checking an analysis's citations by code, against the evidence it was given.

Every claim (what happened, the root cause, each fix step) cites evidence lines (``L1234``), each
with a short verbatim quote. A claim is *verified* when it cites at least one line, every cited
line was in the evidence sent, and every quote is on its line (compared case-insensitively,
whitespace collapsed). What a citation check cannot know, whether the line *means* what the claim
says, stays with the reader: the artifact shows the cited lines under each claim.

Consequences (`checked`): an unverified root cause caps the confidence at
`UNVERIFIED_CONFIDENCE_CAP` and a "confirmed" evidence status becomes a "hypothesis"; an analysis
none of whose claims holds is "insufficient", with an open question saying what to look for.
"""

from __future__ import annotations

import re

from prefect_failure_insights.defaults import UNVERIFIED_CONFIDENCE_CAP
from prefect_failure_insights.models import Citation, ClaimCheck, Evidence, FailureAnalysis, Verification

_QUOTES = "\"'`\u201c\u201d\u2018\u2019\u2026. "


def sent_lines(text: str, prefix: str = "L") -> dict[int, str]:
    """The evidence lines in ``text`` by number: ``L<n> ...`` and its continuation lines."""
    out: dict[int, str] = {}
    current: int | None = None
    head = re.compile(rf"^{re.escape(prefix)}(\d+) ")
    for line in text.split("\n"):
        m = head.match(line)
        if m:
            current = int(m.group(1))
            out[current] = line
        elif current is not None and line.startswith(" " * 8):
            out[current] += "\n" + line
        else:
            current = None
    return out


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold().strip(_QUOTES)


def _check(claim: str, cites: list[Citation], lines: dict[int, str], prefix: str) -> ClaimCheck:
    problems = []
    if not cites:
        problems.append("cites no evidence line")
    for cite in cites:
        line = lines.get(cite.line)
        if line is None:
            problems.append(f"{prefix}{cite.line} was not in the evidence sent")
        elif cite.quote and _norm(cite.quote) not in _norm(line):
            problems.append(f"the quote \u201c{cite.quote[:80]}\u201d is not on {prefix}{cite.line}")
    return ClaimCheck(claim=claim, lines=[c.line for c in cites], verified=not problems, problems=problems)


def verify(analysis: FailureAnalysis, evidence_text: str, prefix: str = "L") -> Verification:
    """Check every claim's citations against ``evidence_text`` (what the analysis was given)."""
    lines = sent_lines(evidence_text, prefix)
    c = analysis.citations
    claims = [_check("what happened", c.what_happened, lines, prefix),
              _check("root cause", c.root_cause, lines, prefix)]
    claims += [_check(f"fix {i}", c.how_to_fix[i - 1] if i <= len(c.how_to_fix) else [], lines, prefix)
               for i in range(1, len(analysis.how_to_fix) + 1)]
    return Verification(checked=True, claims=claims, root_cause_verified=claims[1].verified)


def checked(analysis: FailureAnalysis, evidence: Evidence) -> tuple[FailureAnalysis, Verification]:
    """``analysis`` with what its verification implies (see the module docstring), and the verification."""
    verification = verify(analysis, evidence.text, evidence.line_prefix)
    update: dict = {}
    if not verification.root_cause_verified:
        if analysis.confidence > UNVERIFIED_CONFIDENCE_CAP:
            update["confidence"] = UNVERIFIED_CONFIDENCE_CAP
            verification.confidence_capped_from = analysis.confidence
        if analysis.evidence_status == "confirmed":
            update["evidence_status"] = "hypothesis"
    if not any(claim.verified for claim in verification.claims):
        update["evidence_status"] = "insufficient"
        if not analysis.open_questions:
            update["open_questions"] = ["Which log line shows the root error? The answer could cite none of the "
                                        "evidence it was given: read the run's logs around its failed task."]
    return (analysis.model_copy(update=update) if update else analysis), verification
