"""One classification of an error text, the same wherever it is asked for: the card (the
deterministic analysis), the batch, ``failure-insights batch classify`` and ``eval``, and so the
summary event.

1. the team's ``extra_rules`` (settings), first match: the team said so;
2. the learned model (`analysis.model`): the best category with its calibrated confidence, a
   low confidence being a flag on the answer, never another answer; UNKNOWN only when none of the
   text's features is known to the model;
3. the knowledge base (`analysis.rules`) gives the *cause* that explains it and its fix steps: the
   most confident matching rule of the chosen category (a rule of another category is not used to
   explain it); if the model knows nothing of the text, a matching rule's own category answers.

A correction of this exact error (the batch's first step) is applied by the caller, which has the
corrections; after ``corrections import`` the model itself is retrained on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from prefect_failure_insights.analysis.calibration import Calibration, default_calibration
from prefect_failure_insights.analysis.model import CONFIDENT, UNKNOWN, TextModel
from prefect_failure_insights.analysis.rules import UN, Rule, candidates
from prefect_failure_insights.analysis.taxonomy import Taxonomy, user_rules
from prefect_failure_insights.blocks import FailureInsightsSettings
from prefect_failure_insights.evidence.errors import NO_ERROR_MESSAGE
from prefect_failure_insights.models import Transience


@dataclass(frozen=True)
class Verdict:
    """The category of one error text, how sure, and the known cause that explains it."""

    category: str
    confidence: float
    cause: Rule | None = None
    classified_by: str = "none"

    @property
    def low_confidence(self) -> bool:
        return self.category == UNKNOWN or self.confidence < CONFIDENT

    @property
    def transience(self) -> Transience:
        return self.cause.transience if self.cause is not None else UN


@lru_cache(maxsize=1)
def default_model() -> TextModel:
    """The shipped model (`analysis/data/model.json.gz`), trained on the shipped corpus."""
    from prefect_failure_insights.analysis.training import load_shipped_model

    return load_shipped_model()


def categorize(text: str, exception_type: str | None = None, extra: Sequence[Rule] = (), *,
               model: TextModel | None = None, calibration: Calibration | None = None) -> Verdict:
    """The category of ``text`` (see the module docstring).

    Example:
        >>> categorize("psycopg2.errors.NotNullViolation: null value in column \\"id\\"").category
        'INPUT_DATA_QUALITY'
    """
    if text.endswith(NO_ERROR_MESSAGE):
        text = ""  # the placeholder of a failure that left no error: nothing to go on
    for rule in extra:
        if rule.matches(text, exception_type):
            return Verdict(str(getattr(rule.category, "value", rule.category)), rule.confidence, rule,
                           f"rule:{rule.name}")
    model = model or default_model()
    calibration = calibration or default_calibration()
    ranked = sorted(candidates(text, exception_type), key=calibration.confidence, reverse=True)
    guess = model.predict(text, exception_type)
    if guess.category == UNKNOWN:
        if not ranked:
            return Verdict(UNKNOWN, 0.0)
        best = ranked[0]
        return Verdict(_name(best.category), round(calibration.confidence(best), 4), best, f"rule:{best.name}")
    cause = next((r for r in ranked if _name(r.category) == guess.category), None)
    return Verdict(guess.category, guess.confidence, cause, f"model:{model.version}")


def _name(category: object) -> str:
    return str(getattr(category, "value", category))


@dataclass(frozen=True)
class Categorizer:
    """A workspace's classification: its team rules and its model (None: the shipped one). The card
    and the batch of one workspace hold the same one, so they give the same answer."""

    extra: tuple[Rule, ...] = ()
    model: TextModel | None = None

    def __call__(self, text: str, exception_type: str | None = None) -> Verdict:
        return categorize(text, exception_type, self.extra, model=self.model)


def workspace_categorizer(settings: FailureInsightsSettings, model: TextModel | None = None) -> Categorizer:
    """The classification of the workspace whose settings are ``settings``."""
    return Categorizer(user_rules(settings, Taxonomy(settings.extra_categories)), model)
