"""Classifying error texts: corrections, then rules, then the LLM with few-shot examples.

The order, for each distinct error signature (identical errors are classified once):

1. ``correction``: the team corrected this exact signature; that is the answer.
2. ``rule:<name>``: a named rule (`tasks.rules`, plus ``extra_rules`` from the settings).
3. ``cache``: the run's failure summary already has an LLM category, or the LLM
   classified this signature before (same model and prompt version): no new call.
   A re-run of a batch keeps what the LLM said for each of its errors, so re-running a
   window changes nothing (corrections and rules are always re-applied).
4. ``llm``: the LLM, shown the team's corrections most similar to this error first.
5. ``UNKNOWN`` (``classified_by = none``) when nothing above answers.

The LLM step is bounded: a concurrency cap, the daily budgets of the settings, and
after the first unreachable-endpoint error the rest of the batch stops asking.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import anyio
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import Engine, select

from prefect_failure_insights.blocks import FailureInsightsSettings, LLMCredentials
from prefect_failure_insights.exceptions import LLMError, LLMInvalidAnswer, StorageError
from prefect_failure_insights.models import Category, parse_category
from prefect_failure_insights.prompts import (
    CATEGORY_GUIDE,
    CLASSIFY_PROMPT_VERSION,
    classification_messages,
    classify_schema,
)
from prefect_failure_insights.tasks.chat import backend_for
from prefect_failure_insights.tasks.costs import estimate_cost
from prefect_failure_insights.tasks.fingerprint import cache_key, error_signature, fingerprint
from prefect_failure_insights.tasks.llm import RetryPolicy, request_structured, response_formats
from prefect_failure_insights.tasks.redaction import Redactor
from prefect_failure_insights.tasks.rules import RULES, Rule, classify as rule_classify
from prefect_failure_insights.tasks.schema import classifications, fit, guard, insert_ignore, now

logger = logging.getLogger(__name__)

FEW_SHOT = 5


class ErrorItem(BaseModel):
    """One error to classify: a failed task, a crashed run, or a line of `classify --input`."""

    id: str
    error_text: str
    exception_type: str | None = None
    known_category: str | None = Field(default=None, description="The LLM category of the run's summary.")


class Classification(BaseModel):
    id: str
    category: str
    confidence: float
    classified_by: str = Field(description="correction | rule:<name> | cache | llm | none")
    reasoning: str
    signature: str
    fingerprint: str


class Correction(BaseModel):
    fingerprint: str
    signature: str
    error_text: str
    exception_type: str | None = None
    category: str
    corrected_by: str | None = None


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
             r.why or f"Matched the team's rule {r.name!r}.")
        for r in settings.extra_rules
    )


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z][a-z0-9_]{2,}", text.lower()))


def similar(corrections: Sequence[Correction], text: str, k: int = FEW_SHOT) -> list[Correction]:
    """The ``k`` corrections whose errors share the most words with ``text`` (Jaccard)."""
    mine = _words(text)

    def score(c: Correction) -> float:
        theirs = _words(c.signature + " " + c.error_text)
        return len(mine & theirs) / (len(mine | theirs) or 1)

    ranked = sorted(corrections, key=score, reverse=True)
    return [c for c in ranked[:k] if score(c) > 0]


@dataclass
class Usage:
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    llm_stopped: str | None = None
    by: dict[str, int] = field(default_factory=dict)


class Classifier:
    """Classify `ErrorItem`s in the order of the module docstring; `usage` says what it cost."""

    def __init__(
        self,
        settings: FailureInsightsSettings,
        *,
        corrections: Sequence[Correction] = (),
        llm: LLMCredentials | None = None,
        engine: Engine | None = None,
        budget_check: Callable[[], str | None] | None = None,
        previous: Sequence[Classification] = (),
    ) -> None:
        self.settings = settings
        self.taxonomy = Taxonomy(settings.extra_categories)
        self.answer_model = answer_model(self.taxonomy)
        self.formats = response_formats("failure_classification", classify_schema(self.taxonomy.names))
        self.rules = user_rules(settings, self.taxonomy) + RULES
        self.corrections = {c.fingerprint: c for c in corrections}
        self.llm = llm
        self.engine = engine
        self.budget_check = budget_check
        self.previous = {c.id: c for c in previous}
        self.usage = Usage()
        self.redactor = Redactor()

    async def classify(self, items: Sequence[ErrorItem],
                       progress: Callable[[int], None] | None = None) -> list[Classification]:
        groups: dict[str, list[ErrorItem]] = {}
        for item in items:
            groups.setdefault(error_signature(item.error_text, item.exception_type), []).append(item)
        decided: dict[str, Classification] = {}  # by item id
        pending: list[tuple[str, list[ErrorItem]]] = []
        for sig, members in groups.items():
            fixed = self._fixed(sig, members[0])
            if fixed is not None:
                decided.update({m.id: fixed.model_copy(update={"id": m.id}) for m in members})
                continue
            rest = []
            for m in members:  # a re-run keeps what the LLM (or the cache) said for this very error
                before = self.previous.get(m.id)
                if before is not None and before.signature == sig and before.classified_by in ("llm", "cache"):
                    decided[m.id] = before.model_copy(update={"id": m.id})
                else:
                    rest.append(m)
            if not rest:
                continue
            known = next((m.known_category for m in rest if m.known_category), None)
            free = self._known_or_cached(sig, rest[0], known)
            if free is not None:
                decided.update({m.id: free.model_copy(update={"id": m.id}) for m in rest})
            else:
                pending.append((sig, rest))
        if progress:
            progress(len(decided))
        if pending:
            await self._ask_llm(pending, decided, progress)
        out = [decided[item.id] for item in items]
        for result in out:
            by = result.classified_by.split(":")[0]
            self.usage.by[by] = self.usage.by.get(by, 0) + 1
        return out

    # -- the steps -------------------------------------------------------------------------
    def _result(self, sig: str, item: ErrorItem, category: str, confidence: float, by: str,
                reasoning: str) -> Classification:
        return Classification(id=item.id, category=category, confidence=round(confidence, 3), classified_by=by,
                              reasoning=self.redactor.redact(reasoning), signature=sig, fingerprint=fingerprint(sig))

    def _fixed(self, sig: str, item: ErrorItem) -> Classification | None:
        """A correction of this exact error, else a rule: deterministic, free, always re-applied."""
        fp = fingerprint(sig)
        if fp in self.corrections:
            c = self.corrections[fp]
            who = f" by {c.corrected_by}" if c.corrected_by else ""
            return self._result(sig, item, c.category, 1.0, "correction", f"Corrected{who} for this exact error.")
        match = rule_classify(item.error_text, item.exception_type, self.rules)
        if match.rule is not None:
            return self._result(sig, item, str(getattr(match.category, "value", match.category)),
                                match.confidence, match.classified_by, match.rule.why)
        return None

    def _known_or_cached(self, sig: str, item: ErrorItem, known: str | None) -> Classification | None:
        """The run's summary category, or an earlier LLM classification of this signature."""
        if known and known != Category.UNKNOWN.value:
            return self._result(sig, item, known, 0.8, "cache", "The category of this run's LLM failure summary.")
        cached = self._cached(fingerprint(sig))
        if cached is not None:
            return self._result(sig, item, cached[0], cached[1], "cache",
                                f"Classified by the LLM before: {cached[2]}")
        return None

    def _unknown(self, sig: str, item: ErrorItem, why: str) -> Classification:
        return self._result(sig, item, Category.UNKNOWN.value, 0.0, "none", why)

    async def _ask_llm(self, pending: list[tuple[str, list[ErrorItem]]], decided: dict[str, Classification],
                       progress: Callable[[int], None] | None) -> None:
        limit = anyio.CapacityLimiter(self.settings.max_concurrent_llm_calls)

        async def one(sig: str, members: list[ErrorItem]) -> None:
            if self.llm is None:
                result = self._unknown(sig, members[0], "No rule matched and no LLM is configured.")
            else:
                async with limit:
                    result = await self._llm_one(sig, members[0])
            decided.update({m.id: result.model_copy(update={"id": m.id}) for m in members})
            if progress:
                progress(len(members))

        async with anyio.create_task_group() as tg:
            for sig, members in pending:
                tg.start_soon(one, sig, members)

    async def _llm_one(self, sig: str, item: ErrorItem) -> Classification:
        if self.usage.llm_stopped:
            return self._unknown(sig, item, f"No rule matched; LLM not asked: {self.usage.llm_stopped}")
        spent = self.budget_check() if self.budget_check else None
        if spent:
            self.usage.llm_stopped = spent
            return self._unknown(sig, item, f"No rule matched; LLM not asked: {spent}")
        assert self.llm is not None
        examples = [(c.error_text, c.category) for c in similar(list(self.corrections.values()), item.error_text)]
        messages = classification_messages(self.redactor.redact(item.error_text), item.exception_type,
                                           self.taxonomy.meanings, examples)
        backend = backend_for(self.llm)
        policy = RetryPolicy(max_retries=self.llm.max_retries, timeout=self.llm.timeout,
                             deadline=self.settings.llm_deadline_seconds)
        try:
            answer = await request_structured(backend, messages, self.answer_model, self.formats, policy,
                                              max_tokens=300)
        except LLMInvalidAnswer as exc:  # it answered (and cost tokens), twice unusably
            self.usage.llm_calls += 1
            result = self._unknown(sig, item, f"No rule matched; the LLM's answer was unusable: {exc}")
            self._spend(result, item, self.llm.model, exc.prompt_tokens or 0, exc.completion_tokens or 0)
            return result
        except LLMError as exc:  # unreachable, rejected, deadline: stop asking for this batch
            self.usage.llm_stopped = str(exc)
            return self._unknown(sig, item, f"No rule matched; LLM failed: {exc}")
        finally:
            await backend.close()
        self.usage.llm_calls += 1
        result = self._result(sig, item, answer.analysis.category, answer.analysis.confidence, "llm",
                              answer.analysis.reasoning)
        self._spend(result, item, answer.model, answer.prompt_tokens, answer.completion_tokens)
        return result

    def _spend(self, result: Classification, item: ErrorItem, model: str, prompt_tokens: int,
               completion_tokens: int) -> None:
        """Count an exchange's tokens and cost; recorded even when UNKNOWN (never reused then),
        so that the daily budgets count every call."""
        cost = estimate_cost(model, prompt_tokens, completion_tokens, self.settings.llm_prices)
        self.usage.prompt_tokens += prompt_tokens
        self.usage.completion_tokens += completion_tokens
        self.usage.cost_usd += cost or 0.0
        self._remember(result, item, prompt_tokens, completion_tokens, cost)

    # -- the LLM's classifications, per signature, model and prompt version ---------------
    def _key(self, fp: str) -> str | None:
        return cache_key(fp, self.llm.model, CLASSIFY_PROMPT_VERSION) if self.llm else None

    def _cached(self, fp: str) -> tuple[str, float, str] | None:
        key = self._key(fp)
        if self.engine is None or key is None:
            return None
        try:
            with guard(self.engine, "read the classification cache"), self.engine.connect() as conn:
                row = conn.execute(select(classifications).where(classifications.c.cache_key == key)
                                   .where(classifications.c.category != Category.UNKNOWN.value)).first()
        except StorageError as exc:
            logger.warning("%s", exc)
            return None
        return (row.category, row.confidence or 0.5, row.reasoning or "") if row else None

    def _remember(self, result: Classification, item: ErrorItem, prompt_tokens: int, completion_tokens: int,
                  cost: float | None) -> None:
        key = self._key(result.fingerprint)
        if self.engine is None or key is None:
            return
        if result.category == Category.UNKNOWN.value:
            key = uuid.uuid4().hex  # a ledger row only: it must not take the key of a later, usable answer
        try:
            with guard(self.engine, "write the classification cache"), self.engine.begin() as conn:
                insert_ignore(conn, classifications, fit(classifications, {
                    "cache_key": key, "fingerprint": result.fingerprint, "signature": result.signature,
                    "error_text": self.redactor.redact(item.error_text)[:4000], "category": result.category,
                    "confidence": result.confidence, "reasoning": result.reasoning, "model": self.llm.model,
                    "prompt_version": CLASSIFY_PROMPT_VERSION, "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens, "cost_usd": cost, "created_at": now(),
                }))
        except StorageError as exc:
            logger.warning("%s", exc)
