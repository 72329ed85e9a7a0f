"""Which cause of the knowledge base answers for one error text (`analysis.rules`), by the
rules' calibrated confidence (`analysis.calibration`): the best one, or UNKNOWN with a lead."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from prefect_failure_insights.analysis.calibration import Calibration, default_calibration
from prefect_failure_insights.analysis.rules import UN, Rule, candidates
from prefect_failure_insights.models import Category, Transience


@dataclass(frozen=True)
class RuleMatch:
    """The answer of the knowledge base for one error text."""

    rule: Rule | None  # the cause that answers (confident enough), or None: UNKNOWN
    confidence: float = 0.0
    near: Rule | None = None  # the best cause below the threshold: a lead for the reader, not a category

    @property
    def category(self) -> Category | str:
        return self.rule.category if self.rule else Category.UNKNOWN

    @property
    def transience(self) -> Transience:
        return self.rule.transience if self.rule else UN

    @property
    def classified_by(self) -> str:
        return f"rule:{self.rule.name}" if self.rule else "none"

    @property
    def cause(self) -> Rule | None:
        """The cause to explain the failure with: the answering rule, else the lead."""
        return self.rule or self.near


def classify(text: str, exception_type: str | None = None, extra: Sequence[Rule] = (),
             *, calibration: Calibration | None = None) -> RuleMatch:
    """The cause of ``text`` / ``exception_type``: the first of the team's ``extra`` rules that
    matches, else the matching built-in rule with the highest calibrated confidence, if that is
    at least the calibration's threshold (else UNKNOWN, with the rule as ``near``).

    Example:
        >>> classify("requests.exceptions.HTTPError: 429 Client Error: Too Many Requests").classified_by
        'rule:rate-limited'
    """
    for rule in extra:
        if rule.matches(text, exception_type):
            return RuleMatch(rule, rule.confidence)
    if calibration is None:
        calibration = default_calibration()
    best: Rule | None = None
    best_confidence = -1.0
    for rule in candidates(text, exception_type):
        confidence = calibration.confidence(rule)
        if confidence > best_confidence:
            best, best_confidence = rule, confidence
    if best is None:
        return RuleMatch(None)
    if best_confidence < calibration.threshold:
        return RuleMatch(None, best_confidence, near=best)
    return RuleMatch(best, best_confidence)
