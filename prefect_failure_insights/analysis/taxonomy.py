"""The taxonomy of a workspace: the built-in categories, the settings' extra ones, the team's rules."""

from __future__ import annotations

import re

from pydantic import BaseModel, field_validator

from prefect_failure_insights.analysis.rules import Rule
from prefect_failure_insights.blocks import FailureInsightsSettings
from prefect_failure_insights.models import CATEGORY_GUIDE, Category, Transience, parse_category, parse_transience


class Taxonomy:
    """The categories: the four built-in ones plus ``extra_categories`` from the settings."""

    def __init__(self, extra: dict[str, str] | None = None) -> None:
        self.meanings = {c.value: CATEGORY_GUIDE[c] for c in Category if c is not Category.UNKNOWN}
        for name, meaning in (extra or {}).items():
            self.meanings[_key(name)] = meaning

    @property
    def names(self) -> list[str]:
        return [*self.meanings, Category.UNKNOWN.value]

    def parse(self, value: object) -> str:
        """A category name in the taxonomy; ValueError for anything else."""
        key = _key(str(value))
        if key in self.meanings or key == Category.UNKNOWN.value:
            return key
        return parse_category(value).value


def _key(name: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", name.upper()).strip("_")


class _Answer(BaseModel):
    category: str
    confidence: float = 0.5
    reasoning: str = ""
    transience: str = "UNKNOWN"

    @field_validator("transience", mode="before")
    @classmethod
    def _transience(cls, value: object) -> str:
        return parse_transience(value).value

    @field_validator("confidence", mode="before")
    @classmethod
    def _clamp(cls, value: object) -> float:
        try:
            return min(1.0, max(0.0, float(value)))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return 0.5


def answer_model(taxonomy: Taxonomy) -> type[_Answer]:
    """`_Answer` whose category must be in ``taxonomy``: an invented one gets the repair round-trip."""

    class Answer(_Answer):
        @field_validator("category")
        @classmethod
        def _in_taxonomy(cls, value: str) -> str:
            return taxonomy.parse(value)

    return Answer


def user_rules(settings: FailureInsightsSettings, taxonomy: Taxonomy) -> tuple[Rule, ...]:
    """The ``extra_rules`` of the settings, tried before the built-in ones."""
    return tuple(
        Rule(r.name, taxonomy.parse(r.category), r.confidence, r.pattern, tuple(r.exception_types),
             r.why or f"Matched the team's rule {r.name!r}.", tuple(r.fix), cause=r.cause or "",
             transience=Transience(r.transience), docs=r.docs or "")
        for r in settings.extra_rules
    )
