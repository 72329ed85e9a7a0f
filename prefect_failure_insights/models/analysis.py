"""The answer to a failure: its category, the analysis, and how the analysis was made."""

from __future__ import annotations

import re
from datetime import datetime
from enum import Enum
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from prefect_failure_insights.defaults import (
    ANSWER_LIST_MAX,
    ANSWER_QUOTE_CHARS,
    ANSWER_STEP_CHARS,
    ANSWER_TEXT_CHARS,
)
from prefect_failure_insights.models.common import Redacted


class Category(str, Enum):
    """Whose problem a failure is. The taxonomy the summaries and the batch use."""

    INPUT_DATA_QUALITY = "INPUT_DATA_QUALITY"
    THIRD_PARTY_SYSTEM = "THIRD_PARTY_SYSTEM"
    WORKFLOW_ENGINE = "WORKFLOW_ENGINE"
    UNKNOWN = "UNKNOWN"


class Transience(str, Enum):
    """Whether running the same thing again, unchanged, would likely succeed."""

    TRANSIENT = "TRANSIENT"  # soon, yes: a rate limit, a 503, a timeout, a lost connection
    INTERMITTENT = "INTERMITTENT"  # sometimes: flaky infrastructure, a race, preemption
    PERMANENT = "PERMANENT"  # no: until someone changes the code, the configuration or the data
    UNKNOWN = "UNKNOWN"


#: What each transience means: shown to the LLM and used to decide automatic retries.
TRANSIENCE_GUIDE = {
    Transience.TRANSIENT: "a retry soon, unchanged, would likely succeed (rate limit, 5xx, timeout, lost connection)",
    Transience.INTERMITTENT: "fails now and then without any change (flaky infrastructure, races, preemption)",
    Transience.PERMANENT: "fails again until code, configuration or data change (bugs, bad credentials, bad data)",
    Transience.UNKNOWN: "the evidence does not say",
}


def parse_transience(value: object) -> Transience:
    """A model's spelling of a transience (``transient``, ``Permanent``), else UNKNOWN."""
    if isinstance(value, Transience):
        return value
    key = re.sub(r"[^A-Z]+", "_", str(value or "").upper()).strip("_")
    return Transience[key] if key in Transience.__members__ else Transience.UNKNOWN


_CATEGORY_SYNONYMS = {
    "DATA": Category.INPUT_DATA_QUALITY,
    "DATA_QUALITY": Category.INPUT_DATA_QUALITY,
    "INPUT_DATA": Category.INPUT_DATA_QUALITY,
    "INPUT": Category.INPUT_DATA_QUALITY,
    "THIRD_PARTY": Category.THIRD_PARTY_SYSTEM,
    "EXTERNAL": Category.THIRD_PARTY_SYSTEM,
    "EXTERNAL_SYSTEM": Category.THIRD_PARTY_SYSTEM,
    "VENDOR": Category.THIRD_PARTY_SYSTEM,
    "WORKFLOW": Category.WORKFLOW_ENGINE,
    "ENGINE": Category.WORKFLOW_ENGINE,
    "INFRASTRUCTURE": Category.WORKFLOW_ENGINE,
    "CODE": Category.WORKFLOW_ENGINE,
    "PIPELINE": Category.WORKFLOW_ENGINE,
}


def parse_category(value: object) -> Category:
    """Map a model's spelling of a category onto the taxonomy, or raise ValueError.

    Small models write ``third-party system`` or ``Third_Party``; those are mapped.
    Anything else is rejected rather than stored as-is.
    """
    if isinstance(value, Category):
        return value
    key = re.sub(r"[^A-Z]+", "_", str(value).upper()).strip("_")
    if key in Category.__members__:
        return Category[key]
    if key in _CATEGORY_SYNONYMS:
        return _CATEGORY_SYNONYMS[key]
    raise ValueError(
        f"category {value!r} is not one of {', '.join(c.value for c in Category)}"
    )



#: What each category means: shown to the LLM, and the guide for labelling failures by hand.
CATEGORY_GUIDE = {
    Category.INPUT_DATA_QUALITY: "the data is bad or changed: validation errors, schema drift, "
    "wrong types, malformed files, unexpected nulls or duplicates",
    Category.THIRD_PARTY_SYSTEM: "an external service failed or refused: vendor HTTP errors, "
    "rate limits, vendor authentication, cloud storage, unreachable external databases",
    Category.WORKFLOW_ENGINE: "the pipeline's own code, configuration, orchestration or "
    "infrastructure: bugs, its own SQL, missing modules, Prefect errors, out-of-memory, evictions",
    Category.UNKNOWN: "the evidence does not say",
}


class Citation(BaseModel):
    """One evidence line a claim rests on: its number (``L1234``) and a short verbatim quote of it."""

    line: int = Field(ge=0)
    quote: Redacted = Field(default="", description="A few words copied from that line.")

    @model_validator(mode="before")
    @classmethod
    def _spellings(cls, value: object) -> object:
        # "L1234", 1234, {"line": "L1234", ...}: what models write.
        if isinstance(value, (int, str)):
            value = {"line": value}
        if isinstance(value, dict) and isinstance(value.get("line"), str):
            m = re.search(r"\d+", value["line"])
            value = {**value, "line": int(m.group(0)) if m else -1}
        if isinstance(value, dict) and value.get("quote") is None:
            value = {**value, "quote": ""}
        return value


class Citations(BaseModel):
    """The evidence each claim of an analysis cites: what happened, the root cause, each fix step."""

    what_happened: list[Citation] = Field(default_factory=list)
    root_cause: list[Citation] = Field(default_factory=list)
    how_to_fix: list[list[Citation]] = Field(default_factory=list, description="One list per fix step, in order.")


#: How well the evidence supports the analysis: a fact in it shows the root cause (confirmed), the
#: cause is inferred (hypothesis), or the evidence does not say (insufficient).
EvidenceStatus = Literal["confirmed", "hypothesis", "insufficient"]


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _capped(cites: list[Citation]) -> list[Citation]:
    """At most `ANSWER_LIST_MAX` citations, each line once, quotes cut to `ANSWER_QUOTE_CHARS`."""
    out: dict[int, Citation] = {}
    for cite in cites:
        if cite.line not in out and len(out) < ANSWER_LIST_MAX:
            out[cite.line] = cite if len(cite.quote) <= ANSWER_QUOTE_CHARS else Citation(
                line=cite.line, quote=_cut(cite.quote, ANSWER_QUOTE_CHARS))
    return list(out.values())


def _cites(value: object) -> list:
    return [c for c in value if c not in (None, "")] if isinstance(value, list) else []


class FailureAnalysis(BaseModel):
    """The structured answer to: what happened, how do I fix it, why did it happen; each claim
    with the evidence lines it rests on (`citations`), checked by code after the answer arrives."""

    title: Redacted = Field(description="One line naming the failure, at most 120 characters.")
    what_happened: Redacted = Field(description="What failed and with which error, 1-3 sentences.")
    how_to_fix: list[Redacted] = Field(description="Concrete steps, most likely fix first.")
    root_cause: Redacted = Field(description="Why it happened: the underlying cause.")
    category: Category = Field(description="Whose problem it is.")
    confidence: float = Field(ge=0.0, le=1.0, description="0 to 1.")
    transience: Transience = Field(default=Transience.UNKNOWN,
                                   description="Would re-running it unchanged likely succeed?")
    failed_task: Redacted | None = Field(default=None, description="Name of the failed task.")
    tags: list[Redacted] = Field(default_factory=list, description="Up to 5 short keywords.")
    additional_answers: list[Redacted] = Field(
        default_factory=list,
        description="Answers to the settings' extra questions, in order.",
    )
    citations: Citations = Field(default_factory=Citations)
    evidence_status: EvidenceStatus = "hypothesis"
    confidence_reason: Redacted = Field(default="", description="Why this confidence, in one line.")
    open_questions: list[Redacted] = Field(default_factory=list,
                                           description="What to find out when the evidence is insufficient.")

    @model_validator(mode="before")
    @classmethod
    def _answer_form(cls, value: object) -> object:
        """The LLM's answer form (``what_happened_evidence``, ``root_cause_evidence`` and fix steps
        as ``{"step": ..., "evidence": [...]}``) into the model's (``citations``)."""
        if not isinstance(value, dict):
            return value
        value = dict(value)
        cites = dict(value.get("citations") or {})
        for claim in ("what_happened", "root_cause"):
            if f"{claim}_evidence" in value:
                cites[claim] = _cites(value.pop(f"{claim}_evidence"))
        steps = value.get("how_to_fix")
        if isinstance(steps, list) and any(isinstance(s, dict) for s in steps):
            texts, per_step = [], []
            for step in steps:
                text = step.get("step") or step.get("text") or "" if isinstance(step, dict) else step
                if isinstance(text, str) and text.strip():
                    texts.append(text)
                    per_step.append(_cites(step.get("evidence")) if isinstance(step, dict) else [])
            value["how_to_fix"], cites["how_to_fix"] = texts, per_step
        if cites:
            value["citations"] = cites
        if value.get("evidence_status") is not None:  # "Confirmed", "CONFIRMED ", anything else: a hypothesis
            status = str(value["evidence_status"]).strip().lower()
            value["evidence_status"] = status if status in ("confirmed", "hypothesis", "insufficient") else "hypothesis"
        for key in ("evidence_status", "confidence_reason", "open_questions"):  # null: the default
            if value.get(key) is None:
                value.pop(key, None)
        return value

    @field_validator("category", mode="before")
    @classmethod
    def _category(cls, value: object) -> Category:
        return parse_category(value)

    @field_validator("transience", mode="before")
    @classmethod
    def _transience(cls, value: object) -> Transience:
        return parse_transience(value)

    @field_validator("confidence", mode="before")
    @classmethod
    def _confidence(cls, value: object) -> object:
        # Models sometimes answer 85 meaning 85 %.
        if isinstance(value, (int, float)) and 1.0 < value <= 100.0:
            return value / 100.0
        return value

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise ValueError("title is empty")
        return value if len(value) <= 120 else value[:119] + "…"

    @field_validator("how_to_fix", mode="before")
    @classmethod
    def _steps(cls, value: object) -> object:
        if isinstance(value, str):
            parts = value.split("\n") if "\n" in value else re.split(r"\s(?=\d+[.)]\s)", value)
            value = [re.sub(r"^\s*(?:\d+[.)]|[-*\u2022])\s*", "", p) for p in parts]
        return value

    @field_validator("how_to_fix")
    @classmethod
    def _steps_nonempty(cls, value: list[str]) -> list[str]:
        steps = [s.strip() for s in value if s and s.strip()]
        if not steps:
            raise ValueError("how_to_fix has no steps")
        return steps[:8]

    @field_validator("tags", "additional_answers", mode="before")
    @classmethod
    def _none_is_empty(cls, value: object) -> object:
        return [] if value is None else value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        return [t.strip()[:40] for t in value if t and t.strip()][:5]

    @model_validator(mode="after")
    def _bounded(self) -> FailureAnalysis:
        """Every field within what a card, an event and a notification can carry, whatever the model
        wrote: texts cut (said with "…"), lists and citations per claim at most `ANSWER_LIST_MAX`."""
        n = ANSWER_LIST_MAX
        for name in ("what_happened", "root_cause", "confidence_reason"):
            setattr(self, name, _cut(getattr(self, name), ANSWER_TEXT_CHARS))
        if self.failed_task is not None:
            self.failed_task = _cut(self.failed_task, 200)
        self.how_to_fix = [_cut(step, ANSWER_STEP_CHARS) for step in self.how_to_fix[:n]]
        self.additional_answers = [_cut(a, ANSWER_STEP_CHARS) for a in self.additional_answers[:n]]
        self.open_questions = [_cut(q, ANSWER_STEP_CHARS) for q in self.open_questions[:n]]
        c = self.citations
        self.citations = Citations(what_happened=_capped(c.what_happened), root_cause=_capped(c.root_cause),
                                   how_to_fix=[_capped(step) for step in c.how_to_fix[:len(self.how_to_fix)]])
        return self


class ClaimCheck(BaseModel):
    """Whether one claim's citations hold: every cited line was in the evidence sent, and each
    quote is on its line."""

    claim: str = Field(description="'what happened', 'root cause' or 'fix 1', 'fix 2', ...")
    lines: list[int] = Field(default_factory=list)
    verified: bool
    problems: list[str] = Field(default_factory=list)
    only_flagged: bool = Field(default=False, description="Its only support is flagged lines: run text that reads "
                               "like an instruction to a model.")


class Verification(BaseModel):
    """The citations of an analysis, checked by code against the evidence it was given."""

    checked: bool = Field(default=False, description="False for summaries made before citations were checked.")
    claims: list[ClaimCheck] = Field(default_factory=list)
    root_cause_verified: bool = False
    steps_from_logs: list[int] = Field(
        default_factory=list, description="Fix steps (1-based) that tell the reader to run a command or open a URL "
        "taken from the run's own text: marked so in every output, never a verified fix.")
    confidence_capped_from: float | None = Field(
        default=None, description="The confidence the analysis claimed, when an unverified root cause capped it.")

    @property
    def unverified(self) -> list[ClaimCheck]:
        return [c for c in self.claims if not c.verified]


#: ``provisional``: the deterministic analysis delivered at once, from what was stored when the
#: summarizer started, replaced in place by the final summary (``llm`` or ``fallback``).
SummaryStatus = Literal["llm", "fallback", "provisional"]


class LLMUsage(BaseModel):
    """What asking the LLM cost, and with which model and prompt."""

    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float | None = None
    cost_usd: float | None = Field(default=None, description="Estimated LLM cost; None when unknown.")
    prompt_version: str | None = None

    @property
    def tokens(self) -> int:
        return (self.prompt_tokens or 0) + (self.completion_tokens or 0)


class Recurrence(BaseModel):
    """Whether this failure was seen before: its signature and the fingerprint cache's answer."""

    fingerprint: str | None = None
    signature: str | None = Field(default=None, description="The normalised failure signature.")
    cache_hit: bool = Field(default=False, description="The analysis was reused, no LLM call.")
    same_as_run_id: str | None = Field(default=None, description="The run whose analysis was reused.")
    first_seen: datetime | None = None
    occurrences: int | None = Field(default=None, description="Failures with this signature so far.")
    pattern: str | None = Field(default=None, description="The masked root error and exception type, across "
                                "flows: what similar failures are found by (`analysis.similarity`).")
    pattern_id: str | None = None


class SimilarRun(BaseModel):
    """One earlier summary of a similar failure, to link to."""

    flow_run_id: str
    flow_name: Redacted
    title: Redacted
    similarity: float
    artifact_id: str | None = None
    failed_at: datetime | None = None


#: What ended an earlier similar failure: the same run retried and completed, the deployment's next run
#: completed, or nothing yet (``open``); ``unknown`` when its run is gone from the server.
ResolutionOutcome = Literal["retry", "next_run", "open", "unknown"]


class Resolution(BaseModel):
    """What happened after one earlier similar failure (`prefect_api.history`)."""

    flow_run_id: str
    failed_at: datetime | None = None
    outcome: ResolutionOutcome
    automatic: bool = Field(default=False, description="The retry that fixed it was failure-insights' own.")
    resolved_at: datetime | None = Field(default=None, description="When the run that completed ended.")
    resolved_by_run_id: str | None = Field(default=None, description="The deployment's run that completed.")
    changes: list[Redacted] = Field(default_factory=list, description=(
        "What differed in the run that completed: deployment or flow version, parameter names, job variables, "
        "work queue (never parameter values)."))
    correction: Redacted | None = Field(default=None, description="The team's correction of its category.")

    @property
    def fixed(self) -> bool:
        return self.outcome in ("retry", "next_run")

    @property
    def after_s(self) -> float | None:
        """Seconds from the failure to the run that completed."""
        if self.resolved_at is None or self.failed_at is None:
            return None
        return max(0.0, (self.resolved_at - self.failed_at).total_seconds())


class SimilarFailures(BaseModel):
    """Earlier failures near-identical to this one, in any flow or deployment, and what ended them."""

    checked: bool = Field(default=False, description="Whether the lookup ran (it needs the database).")
    count: int = 0
    flows: list[Redacted] = Field(default_factory=list)
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    most_similar: list[SimilarRun] = Field(default_factory=list)
    history: list[Resolution] = Field(default_factory=list, description=(
        "What happened after each of the most similar earlier failures, newest first (empty: not looked up)."))
    method: str = Field(default="lexical", description=(
        "How they were found: 'lexical', or 'lexical+embeddings:<model>' with the LLM block's embedding model."))
    fallback_reason: Redacted | None = Field(default=None, description=(
        "Why an embedding model configured was not used (the lexical lookup answered instead)."))


class AnalysisResult(BaseModel):
    """An analysis and how it was made (``notes``: what degraded on the way, for the logs)."""

    analysis: FailureAnalysis
    status: SummaryStatus
    reason: Redacted | None = Field(default=None, description="Why the fallback was used, when it was.")
    usage: LLMUsage = Field(default_factory=LLMUsage)
    recurrence: Recurrence = Field(default_factory=Recurrence)
    notes: list[str] = Field(default_factory=list)
