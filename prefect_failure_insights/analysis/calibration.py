"""Calibrated confidence for the knowledge base's rules, measured on labelled failure texts.

A rule's confidence is its precision where it fires: of the training texts it matches, the
share whose label is its category. Rules that rarely fire lean on their author's prior
(``confidence`` in `analysis.rules`), as a Beta prior of ``PRIOR_STRENGTH`` pseudo-texts:

    confidence = (correct + PRIOR_STRENGTH * prior) / (fired + PRIOR_STRENGTH)

The threshold is the lowest confidence at which the rules' answers on the training texts
are still at least ``TARGET_PRECISION`` precise; below it the answer is UNKNOWN. The shipped
calibration (`analysis.calibrated`) is computed on the development split of
``tests/fixtures/classification/corpus.jsonl`` (`python bench/classification.py --calibrate`);
a test checks that it matches the rules and the corpus, so neither can drift alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache

from pydantic import BaseModel, Field

from prefect_failure_insights.analysis.rules import RULES, Rule, candidates

#: Pseudo-texts of the author's prior: a rule that fired 4 times is half measured, half prior.
PRIOR_STRENGTH = 4.0
#: The precision the threshold keeps on the training texts: 0.95 there held about 0.90 on the
#: held-out folds of the corpus (cross-validated), which is what a user should be able to trust.
TARGET_PRECISION = 0.95


class RuleStats(BaseModel):
    fired: int = Field(description="Training texts the rule matches.")
    correct: int = Field(description="Of them, those whose label is the rule's category.")
    confidence: float


class Calibration(BaseModel):
    """Each rule's measured confidence and the threshold below which rules say UNKNOWN."""

    threshold: float = 0.0
    rules: dict[str, RuleStats] = Field(default_factory=dict)
    source: str = Field(default="uncalibrated: the authors' priors")

    def confidence(self, rule: Rule) -> float:
        stats = self.rules.get(rule.name)
        return stats.confidence if stats is not None else rule.confidence


#: One labelled text: (error text, exception type or None, label).
Labelled = tuple[str, "str | None", str]


def _label(value: object) -> str:
    return str(getattr(value, "value", value))


def calibrate(items: Sequence[Labelled], rules: Sequence[Rule] = RULES, target: float = TARGET_PRECISION,
              *, prior_strength: float = PRIOR_STRENGTH, source: str = "") -> Calibration:
    """Measure every rule on ``items`` and choose the threshold (see the module docstring)."""
    matched = [candidates(text, exc, rules) for text, exc, _ in items]
    stats: dict[str, RuleStats] = {}
    for rule in rules:
        hits = [label for (_, _, label), found in zip(items, matched, strict=True) if rule in found]
        correct = sum(1 for label in hits if label == _label(rule.category))
        confidence = (correct + prior_strength * rule.confidence) / (len(hits) + prior_strength)
        stats[rule.name] = RuleStats(fired=len(hits), correct=correct, confidence=round(confidence, 4))
    calibration = Calibration(rules=stats, source=source)
    answers = []  # (confidence, right) of the best rule per text
    for (_, _, label), found in zip(items, matched, strict=True):
        if found:
            best = max(found, key=calibration.confidence)  # first of equals, as `classify` does
            answers.append((calibration.confidence(best), label == _label(best.category)))
    calibration.threshold = choose_threshold(answers, target)
    return calibration


def choose_threshold(answers: Iterable[tuple[float, bool]], target: float) -> float:
    """The lowest confidence ``t`` whose answers at ``>= t`` are at least ``target`` precise
    (1.01, nothing answered, when no ``t`` is)."""
    ranked = sorted(answers, key=lambda a: -a[0])
    best = 1.01
    right = 0
    for n, (confidence, ok) in enumerate(ranked, 1):
        right += ok
        nxt = ranked[n][0] if n < len(ranked) else None
        if nxt == confidence:
            continue  # a threshold takes all answers of one confidence or none
        if right / n >= target:
            best = confidence
    return best


@lru_cache(maxsize=1)
def default_calibration() -> Calibration:
    """The shipped calibration (`analysis.calibrated`), or the priors when there is none."""
    try:
        from prefect_failure_insights.analysis.calibrated import CALIBRATION
    except ImportError:  # pragma: no cover - a checkout before the first calibration
        return Calibration()
    return Calibration.model_validate(CALIBRATION)
