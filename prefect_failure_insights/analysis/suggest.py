"""`failure-insights rules suggest`: new rules from corrections and LLM-classified errors.

Each stored correction, and each error the LLM classified in a batch, is turned into a
candidate pattern: its exception type when it has one, else its signature's first
line with the masked parts (numbers, ids, paths) as wildcards. Candidates the current
rules already classify the same way are dropped; the rest are grouped, counted and
printed with examples, ready to paste into the settings' ``extra_rules`` (or
`analysis/rules.py`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

from prefect_failure_insights.analysis.matching import classify
from prefect_failure_insights.analysis.rules import Rule
from prefect_failure_insights.evidence.signals import short_type
from prefect_failure_insights.models import ClassifiedError, Correction

_MASK = re.compile(r"<[a-z]+>")


@dataclass
class Suggestion:
    name: str
    category: str
    pattern: str = ""
    exception_types: list[str] = field(default_factory=list)
    count: int = 0
    sources: set[str] = field(default_factory=set)
    examples: list[str] = field(default_factory=list)

    def as_setting(self) -> dict:
        out: dict = {"name": self.name, "category": self.category, "confidence": 0.85}
        if self.pattern:
            out["pattern"] = self.pattern
        if self.exception_types:
            out["exception_types"] = self.exception_types
        return out


def pattern_for(signature: str) -> str:
    """A regex for a signature's first part: literal words, masked values as wildcards."""
    first = signature.split(" | ", 1)[0].strip()
    pieces = [re.escape(p) for p in _MASK.split(first)]
    pattern = r".+?".join(p for p in pieces)
    return pattern[:200]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "rule"


@dataclass(frozen=True)
class _Example:
    signature: str
    error_text: str
    exception_type: str | None
    category: str


def suggest(corrected: list[Correction], by_llm: list[ClassifiedError], min_count: int = 1,
            *, extra: tuple[Rule, ...] = ()) -> list[Suggestion]:
    """Rule suggestions from the team's corrections and the LLM's batch answers, most frequent first."""
    examples = {
        "correction": [_Example(c.signature, c.error_text, c.exception_type, c.category) for c in corrected],
        "llm": [_Example(r.classification.signature, r.error.error_text, r.error.exception_type, r.category)
                for r in by_llm],
    }
    groups: dict[tuple, Suggestion] = {}
    # The team outranks the LLM: an exception type or signature it corrected ignores LLM answers.
    corrected_types = {short_type(r.exception_type) for r in corrected if r.exception_type}
    corrected_signatures = {r.signature for r in corrected}
    for source, rows in examples.items():
        for row in rows:
            if source == "llm" and (row.signature in corrected_signatures
                                    or short_type(row.exception_type) in corrected_types):
                continue
            current = classify(row.error_text, row.exception_type, extra)
            if current.rule is not None and str(getattr(current.category, "value", current.category)) == row.category:
                continue  # the rules already get this one right
            kind = short_type(row.exception_type)
            key: tuple
            if kind:
                key = ("type", kind, row.category)
                s = groups.setdefault(key, Suggestion(name=_slug(kind), category=row.category,
                                                      exception_types=[kind]))
            else:
                pattern = pattern_for(row.signature or row.error_text)
                key = ("text", pattern, row.category)
                s = groups.setdefault(key, Suggestion(name=_slug(pattern.replace("\\", "")), category=row.category,
                                                      pattern=pattern))
            s.count += 1
            s.sources.add(source)
            if len(s.examples) < 3:
                s.examples.append(" ".join(row.error_text.split())[:160])
    # An exception type classified two ways is no rule: keep only unambiguous suggestions.
    types = defaultdict(set)
    for (kind, value, category) in groups:
        if kind == "type":
            types[value].add(category)
    out = [s for (kind, value, _), s in groups.items() if s.count >= min_count
           and not (kind == "type" and len(types[value]) > 1)]
    return sorted(out, key=lambda s: (-s.count, s.name))
