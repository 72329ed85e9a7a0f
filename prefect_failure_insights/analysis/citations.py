"""Checking an analysis's citations by code, against the evidence it was given.

Every claim (what happened, the root cause, each fix step) cites evidence lines (``L1234``), each
with a short verbatim quote. A claim is *verified* when it cites at least one line, every cited
line was in the evidence sent, every quote is on its line (compared case-insensitively,
whitespace collapsed), and not all of its support is *flagged* lines (run text that reads like an
instruction to a model, `evidence.untrusted`): a quote of an injected line proves only that the
line was injected. What a citation check cannot know, whether the line *means* what the claim
says, stays with the reader: the artifact shows the cited lines under each claim.

A fix step that tells the reader to run a command or open a URL taken from the run's own text
(`evidence.untrusted.borrowed`) is never a verified fix: it is marked `FROM_LOGS` in the analysis
itself, so in every output (artifact, row, event, notification, terminal), and its claim does
not hold.

Consequences (`checked`): an unverified root cause caps the confidence at
`UNVERIFIED_CONFIDENCE_CAP`; a "confirmed" evidence status becomes a "hypothesis" when the root
cause is unverified, a claim rests only on flagged lines, or a step comes from the logs; an
analysis none of whose claims holds is "insufficient", with an open question saying what to look
for. `untrusted_answer` says why an answer must not be reused for other failures (the gate does
not cache it).
"""

from __future__ import annotations

import re
from collections.abc import Collection

from prefect_failure_insights.defaults import UNVERIFIED_CONFIDENCE_CAP
from prefect_failure_insights.evidence.untrusted import borrowed
from prefect_failure_insights.models import Citation, ClaimCheck, Evidence, FailureAnalysis, Verification

_QUOTES = "\"'`\u201c\u201d\u2018\u2019\u2026. "
#: How a fix step taken from the run's own text reads in every output.
FROM_LOGS = "[From the run's own logs, unverified: {step}]"
_FROM_LOGS_START = FROM_LOGS.split("{", 1)[0]


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


def _check(claim: str, cites: list[Citation], lines: dict[int, str], prefix: str,
           flagged: Collection[int] = ()) -> ClaimCheck:
    problems = []
    if not cites:
        problems.append("cites no evidence line")
    for cite in cites:
        line = lines.get(cite.line)
        if line is None:
            problems.append(f"{prefix}{cite.line} was not in the evidence sent")
        elif cite.quote and _norm(cite.quote) not in _norm(line):
            problems.append(f"the quote \u201c{cite.quote[:80]}\u201d is not on {prefix}{cite.line}")
    sent = [c.line for c in cites if c.line in lines]
    only_flagged = bool(sent) and all(n in flagged for n in sent)
    if only_flagged:
        problems.append(f"rests only on flagged line(s) {', '.join(f'{prefix}{n}' for n in dict.fromkeys(sent))}: "
                        "run text that reads like an instruction, not evidence")
    return ClaimCheck(claim=claim, lines=[c.line for c in cites], verified=not problems, problems=problems,
                      only_flagged=only_flagged)


def verify(analysis: FailureAnalysis, evidence_text: str, prefix: str = "L",
           *, flagged: Collection[int] = ()) -> Verification:
    """Check every claim's citations against ``evidence_text`` (what the analysis was given);
    ``flagged``: its lines that read like instructions (`Evidence.flagged_lines`)."""
    lines = sent_lines(evidence_text, prefix)
    flagged = frozenset(flagged)
    c = analysis.citations
    claims = [_check("what happened", c.what_happened, lines, prefix, flagged),
              _check("root cause", c.root_cause, lines, prefix, flagged)]
    claims += [_check(f"fix {i}", c.how_to_fix[i - 1] if i <= len(c.how_to_fix) else [], lines, prefix, flagged)
               for i in range(1, len(analysis.how_to_fix) + 1)]
    return Verification(checked=True, claims=claims, root_cause_verified=claims[1].verified)


def from_logs(step: str) -> bool:
    """Whether a fix step is marked as taken from the run's own logs."""
    return step.startswith(_FROM_LOGS_START)


def borrowed_steps(analysis: FailureAnalysis, evidence: Evidence) -> dict[int, list[str]]:
    """The fix steps (1-based) that tell the reader to run or open something from the run's own
    text, with what they borrow."""
    out = {}
    for i, step in enumerate(analysis.how_to_fix, start=1):
        found = borrowed(step, evidence.text)
        if found or from_logs(step):
            out[i] = found
    return out


def untrusted_answer(analysis: FailureAnalysis, evidence: Evidence) -> str | None:
    """Why ``analysis`` must not be reused for other failures (``untrusted_answer: ...``), or None:
    a step borrows a command or URL from the run's text, or a claim cites a flagged line."""
    steps = borrowed_steps(analysis, evidence)
    if steps:
        i, found = next(iter(steps.items()))
        what = f" ({found[0][:80]})" if found else ""
        return f"untrusted_answer: fix {i} tells the reader to run or open what the run's own logs say{what}"
    flagged = set(evidence.flagged_lines)
    c = analysis.citations
    cited = [x.line for x in (*c.what_happened, *c.root_cause, *(x for step in c.how_to_fix for x in step))]
    hit = next((n for n in cited if n in flagged), None)
    if hit is not None:
        return (f"untrusted_answer: it cites {evidence.line_prefix}{hit}, a line that reads like an instruction to "
                "a model")
    return None


def checked(analysis: FailureAnalysis, evidence: Evidence,
            *, steps_are_ours: bool = False) -> tuple[FailureAnalysis, Verification]:
    """``analysis`` with what its verification implies (see the module docstring), and the
    verification. ``steps_are_ours``: the fix steps were written by the plugin (the
    deterministic analysis, from its knowledge base), not taken from a model."""
    verification = verify(analysis, evidence.text, evidence.line_prefix, flagged=evidence.flagged_lines)
    update: dict = {}
    steps = {} if steps_are_ours else borrowed_steps(analysis, evidence)
    if steps:
        update["how_to_fix"] = [s if i not in steps or from_logs(s) else FROM_LOGS.format(step=s)
                                for i, s in enumerate(analysis.how_to_fix, start=1)]
        verification.steps_from_logs = sorted(steps)
        for claim in verification.claims:
            number = int(claim.claim[4:]) if claim.claim.startswith("fix ") else None
            if number in steps:
                what = f" ({', '.join(x[:80] for x in steps[number])})" if steps[number] else ""
                claim.problems.append(f"tells the reader to run or open what the run's own logs say{what}: "
                                      "not a verified fix")
                claim.verified = False
    untrusted = bool(steps) or any(claim.only_flagged for claim in verification.claims)
    if not verification.root_cause_verified:
        if analysis.confidence > UNVERIFIED_CONFIDENCE_CAP:
            update["confidence"] = UNVERIFIED_CONFIDENCE_CAP
            verification.confidence_capped_from = analysis.confidence
    if (untrusted or not verification.root_cause_verified) and analysis.evidence_status == "confirmed":
        update["evidence_status"] = "hypothesis"
    if not any(claim.verified for claim in verification.claims):
        update["evidence_status"] = "insufficient"
        if not analysis.open_questions:
            update["open_questions"] = ["Which log line shows the root error? The answer could cite none of the "
                                        "evidence it was given: read the run's logs around its failed task."]
    return (analysis.model_copy(update=update) if update else analysis), verification
