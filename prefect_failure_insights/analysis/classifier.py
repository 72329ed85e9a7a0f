"""Classifying error texts: corrections, then the one classification (`analysis.categorize`),
then the LLM with few-shot examples where that classification is not confident.

The order, for each distinct error signature (identical errors are classified once):

1. ``correction``: the team corrected this exact signature; that is the answer.
2. ``rule:<name>`` (the settings' ``extra_rules``) or ``model:<version>`` (the learned model, the
   knowledge base's rules among its features): the same answer the failure's card gives. Without
   an LLM it is the answer, a low confidence being a flag (``Classification.low_confidence``).
3. ``cache``: the run's failure summary already has an LLM category, or the LLM
   classified this signature before (same model and prompt version): no new call.
   A re-run of a batch keeps what the LLM said for each of its errors, so re-running a
   window changes nothing (corrections and the model are always re-applied).
4. ``llm``: the LLM, shown the team's corrections most similar to this error first, for
   answers of step 2 below the confidence threshold; if it fails, step 2's answer stands.
5. ``UNKNOWN`` (``classified_by = none``) when nothing above points anywhere.

The LLM step is bounded: a concurrency cap, the daily budgets of the settings, and
after the first unreachable-endpoint error the rest of the batch stops asking.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence

import anyio

from prefect_failure_insights.analysis.fingerprint import (
    cache_key,
    error_signature,
    fingerprint,
)
from prefect_failure_insights.analysis.categorize import Categorizer, Verdict
from prefect_failure_insights.analysis.model import UNKNOWN, TextModel
from prefect_failure_insights.analysis.gate import over_budget
from prefect_failure_insights.analysis.training import stored_model
from prefect_failure_insights.analysis.taxonomy import (
    Taxonomy,
    answer_model,
    user_rules,
)
from prefect_failure_insights.blocks import FailureInsightsSettings, LLMCredentials
from prefect_failure_insights.defaults import (
    FEW_SHOT_EXAMPLES,
    MAX_CLASSIFICATION_TOKENS,
)
from prefect_failure_insights.redaction import Redactor
from prefect_failure_insights.exceptions import LLMError, LLMInvalidAnswer, StorageError
from prefect_failure_insights.llm.backends import backend_for
from prefect_failure_insights.llm.costs import estimate_cost
from prefect_failure_insights.llm.prompts import (
    CLASSIFY_PROMPT_VERSION,
    classification_messages,
    classify_schema,
)
from prefect_failure_insights.llm.structured import (
    FormatMemory,
    RetryPolicy,
    request_structured,
    response_formats,
)
from prefect_failure_insights.models import (
    Category,
    Classification,
    ClassificationUsage,
    ClassifiedError,
    Correction,
    ErrorItem,
    FailureError,
)
from prefect_failure_insights.store import Database
from prefect_failure_insights.store.classifications import (
    Spent,
    cached_classification,
    record_classification,
)
from prefect_failure_insights.store.corrections import load_corrections
from prefect_failure_insights.store.summaries import llm_categories

logger = logging.getLogger(__name__)


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z][a-z0-9_]{2,}", text.lower()))


def similar(corrections: Sequence[Correction], text: str, k: int = FEW_SHOT_EXAMPLES) -> list[Correction]:
    """The ``k`` corrections whose errors share the most words with ``text`` (Jaccard)."""
    mine = _words(text)

    def score(c: Correction) -> float:
        theirs = _words(c.signature + " " + c.error_text)
        return len(mine & theirs) / (len(mine | theirs) or 1)

    ranked = sorted(corrections, key=score, reverse=True)
    return [c for c in ranked[:k] if score(c) > 0]


class Classifier:
    """Classify `ErrorItem`s in the order of the module docstring; `usage` says what it cost."""

    def __init__(
        self,
        settings: FailureInsightsSettings,
        *,
        corrections: Sequence[Correction] = (),
        llm: LLMCredentials | None = None,
        database: Database | None = None,
        previous: Sequence[Classification] = (),
        model: TextModel | None = None,
    ) -> None:
        self.settings = settings
        self.taxonomy = Taxonomy(settings.extra_categories)
        self.answer_model = answer_model(self.taxonomy)
        self.formats = response_formats("failure_classification", classify_schema(self.taxonomy.names))
        self.format_memory = FormatMemory()
        self.extra = user_rules(settings, self.taxonomy)
        self.corrections = {c.fingerprint: c for c in corrections}
        self.llm = llm
        self.database = database
        self.previous = {c.id: c for c in previous}
        self.categorize = Categorizer(self.extra, model)  # the same classification as the cards'
        self.guesses: dict[str, Verdict] = {}  # low-confidence answers awaiting the LLM, by signature
        self.usage = ClassificationUsage()
        self.redactor = Redactor()

    async def classify(self, items: Sequence[ErrorItem],
                       progress: Callable[[int, int], None] | None = None) -> list[Classification]:
        """Each item's classification, in order; ``progress(done, total)`` as they are decided."""
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
            free = await self._known_or_cached(sig, rest[0], known)
            if free is not None:
                decided.update({m.id: free.model_copy(update={"id": m.id}) for m in rest})
            else:
                pending.append((sig, rest))
        if progress:
            progress(len(decided), len(items))
        if pending:
            await self._ask_llm(pending, decided, len(items), progress)
        return [decided[item.id] for item in items]

    # -- the steps -------------------------------------------------------------------------
    def _result(self, sig: str, item: ErrorItem, category: str, confidence: float, by: str,
                reasoning: str, transience: str = "UNKNOWN") -> Classification:
        return Classification(id=item.id, category=category, confidence=round(confidence, 3), classified_by=by,
                              reasoning=self.redactor.redact(reasoning), signature=sig, fingerprint=fingerprint(sig),
                              transience=transience)

    def _fixed(self, sig: str, item: ErrorItem) -> Classification | None:
        """A correction of this exact error, else the one classification: deterministic, free,
        always re-applied. None when an LLM should be asked (no confident answer)."""
        fp = fingerprint(sig)
        if fp in self.corrections:
            c = self.corrections[fp]
            who = f" by {c.corrected_by}" if c.corrected_by else ""
            return self._result(sig, item, c.category, 1.0, "correction", f"Corrected{who} for this exact error.")
        verdict = self.categorize(item.error_text, item.exception_type)
        if verdict.category == UNKNOWN:
            return None
        if verdict.low_confidence and self.llm is not None:
            self.guesses[sig] = verdict
            return None
        return self._verdict(sig, item, verdict)

    def _verdict(self, sig: str, item: ErrorItem, verdict: Verdict, note: str = "") -> Classification:
        cause = verdict.cause
        why = f"{cause.cause}: {cause.why}" if cause is not None else "The learned model's best guess."
        if verdict.low_confidence:
            why = f"Low confidence ({verdict.confidence:.0%}). {why}"
        if note:
            why = f"{why} {note}"
        return self._result(sig, item, verdict.category, verdict.confidence, verdict.classified_by, why,
                            verdict.transience.value)

    async def _known_or_cached(self, sig: str, item: ErrorItem, known: str | None) -> Classification | None:
        """The run's summary category, or an earlier LLM classification of this signature."""
        if known and known != Category.UNKNOWN.value:
            return self._result(sig, item, known, 0.8, "cache", "The category of this run's LLM failure summary.")
        cached = await self._cached(fingerprint(sig))
        if cached is not None:
            return self._result(sig, item, cached[0], cached[1], "cache",
                                f"Classified by the LLM before: {cached[2]}", cached[3])
        return None

    def _unknown(self, sig: str, item: ErrorItem, why: str) -> Classification:
        """UNKNOWN, or the classification's low-confidence answer when there is one (the LLM was
        asked because that answer was not confident, and could not give a better one)."""
        guess = self.guesses.get(sig)
        if guess is not None:
            return self._verdict(sig, item, guess, why)
        return self._result(sig, item, Category.UNKNOWN.value, 0.0, "none", why)

    async def _ask_llm(self, pending: list[tuple[str, list[ErrorItem]]], decided: dict[str, Classification],
                       total: int, progress: Callable[[int, int], None] | None) -> None:
        limit = anyio.CapacityLimiter(self.settings.max_concurrent_llm_calls)

        async def one(sig: str, members: list[ErrorItem]) -> None:
            if self.llm is None:
                result = self._unknown(sig, members[0], "Nothing points to a category and no LLM is configured.")
            else:
                async with limit:
                    result = await self._llm_one(sig, members[0])
            decided.update({m.id: result.model_copy(update={"id": m.id}) for m in members})
            if progress:
                progress(len(decided), total)

        async with anyio.create_task_group() as tg:
            for sig, members in pending:
                tg.start_soon(one, sig, members)

    async def _llm_one(self, sig: str, item: ErrorItem) -> Classification:
        if self.usage.llm_stopped:
            return self._unknown(sig, item, f"No confident classification; LLM not asked: {self.usage.llm_stopped}")
        spent = await self._over_budget()
        if spent:
            self.usage.llm_stopped = spent
            return self._unknown(sig, item, f"No confident classification; LLM not asked: {spent}")
        assert self.llm is not None
        examples = [(c.error_text, c.category) for c in similar(list(self.corrections.values()), item.error_text)]
        messages = classification_messages(self.redactor.redact(item.error_text), item.exception_type,
                                           self.taxonomy.meanings, examples=examples)
        backend = backend_for(self.llm)
        policy = RetryPolicy(max_retries=self.llm.max_retries, timeout=self.llm.timeout,
                             deadline=self.settings.llm_deadline_seconds)
        try:
            answer = await request_structured(backend, messages, self.answer_model, formats=self.formats, policy=policy,
                                              max_tokens=MAX_CLASSIFICATION_TOKENS, memory=self.format_memory)
        except LLMInvalidAnswer as exc:  # it answered (and cost tokens), twice unusably
            self.usage.llm_calls += 1
            why = f"No confident classification; the LLM's answer was unusable: {exc}"
            spent_on = self._result(sig, item, Category.UNKNOWN.value, 0.0, "none", why)  # recorded, never reused
            await self._spend(spent_on, item, exc.prompt_tokens or 0, exc.completion_tokens or 0)
            return self._unknown(sig, item, why)
        except LLMError as exc:  # unreachable, rejected, deadline: stop asking for this batch
            self.usage.llm_stopped = str(exc)
            return self._unknown(sig, item, f"No confident classification; LLM failed: {exc}")
        finally:
            await backend.close()
        self.usage.llm_calls += 1
        result = self._result(sig, item, answer.analysis.category, answer.analysis.confidence, "llm",
                              answer.analysis.reasoning, answer.analysis.transience)
        await self._spend(result, item, answer.prompt_tokens, answer.completion_tokens, answer.model)
        return result

    async def _spend(self, result: Classification, item: ErrorItem, prompt_tokens: int, completion_tokens: int,
                     answered_by: str | None = None) -> None:
        """Count an exchange's tokens and cost; recorded even when UNKNOWN (never reused then),
        so that the daily budgets count every call."""
        assert self.llm is not None
        cost = estimate_cost(answered_by or self.llm.model, prompt_tokens, completion_tokens,
                             overrides=self.settings.llm_prices)
        self.usage.prompt_tokens += prompt_tokens
        self.usage.completion_tokens += completion_tokens
        self.usage.cost_usd += cost or 0.0
        if self.database is None:
            return
        spent = Spent(self.llm.model, CLASSIFY_PROMPT_VERSION, prompt_tokens, completion_tokens, cost)
        try:
            await self.database.run(record_classification, self._key(result.fingerprint), result,
                                    error_text=self.redactor.redact(item.error_text), spent=spent)
        except StorageError as exc:
            logger.warning("%s", exc)

    # -- the database: the LLM's earlier classifications, the daily budgets ---------------
    def _key(self, fp: str) -> str:
        assert self.llm is not None
        return cache_key(fp, self.llm.model, CLASSIFY_PROMPT_VERSION)

    async def _cached(self, fp: str) -> tuple[str, float, str, str] | None:
        if self.database is None or self.llm is None:
            return None
        try:
            return await self.database.run(cached_classification, self._key(fp))
        except StorageError as exc:
            logger.warning("%s", exc)
            return None

    async def _over_budget(self) -> str | None:
        if self.database is None:
            return None
        try:
            return await self.database.run(over_budget, self.settings)
        except StorageError as exc:
            logger.warning("%s; the daily budgets are not checked", exc)
            return None


async def open_classifier(settings: FailureInsightsSettings, database: Database | None, llm: LLMCredentials | None,
                          *, previous: Sequence[ClassifiedError] = ()) -> Classifier:
    """A `Classifier` with the workspace's corrections; ``previous`` (a batch's rows from an
    earlier run of the same window) keeps what the LLM said for each of its errors."""
    corrections = await database.run(load_corrections) if database is not None else []
    model = await database.run(stored_model) if database is not None else None
    before = [r.classification for r in previous if r.classification.signature and r.classification.fingerprint]
    return Classifier(settings, corrections=corrections, llm=llm, database=database, previous=before, model=model)


async def classify_errors(errors: Sequence[FailureError], classifier: Classifier,
                          progress: Callable[[int, int], None] | None = None) -> list[ClassifiedError]:
    """Classify a batch's errors; a run whose failure summary has an LLM category reuses it.
    ``progress(done, total)`` as they are decided."""
    database = classifier.database
    known = await database.run(llm_categories, [e.run.id for e in errors]) if database is not None else {}
    items = [ErrorItem(id=e.error_id, error_text=e.error_text, exception_type=e.exception_type,
                       known_category=known.get(e.run.id)) for e in errors]
    results = await classifier.classify(items, progress)
    return [ClassifiedError(error=e, classification=r) for e, r in zip(errors, results)]
