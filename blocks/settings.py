"""Settings of the failure summarizer: on/off, scope, budgets, which blocks to use."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Literal

from prefect.blocks.core import Block
from pydantic import BaseModel, Field, field_validator

from prefect_failure_insights.defaults import (
    EVIDENCE_TOKEN_BUDGET,
    EVIDENCE_TOKEN_BUDGET_MAX,
    EVIDENCE_TOKEN_BUDGET_MIN,
    LLM_DEADLINE_SECONDS,
    MAX_CONCURRENT_LLM_CALLS,
    LATE_LOG_WAIT_SECONDS,
    RETENTION_DAYS,
    MAX_LOG_WAIT_SECONDS,
)

if TYPE_CHECKING:
    from prefect_failure_insights.models import FlowRunInfo


def _matches(patterns: list[str], values: list[str]) -> bool:
    return any(fnmatchcase(v, p) for p in patterns for v in values)


def _run_values(run: FlowRunInfo) -> dict[str, list[str]]:
    deployment = [run.deployment, run.deployment.split("/", 1)[-1]] if run.deployment else []
    return {"tag": list(run.tags), "flow": [run.flow_name], "deployment": deployment,
            "work pool": [run.work_pool] if run.work_pool else []}


class ClassificationRule(BaseModel):
    """A team's own cause of failure (tried before the built-in knowledge base): how to recognise
    it (a regex over the error text and/or exception types), what it is and how to fix it."""

    name: str = Field(description="Reported as rule:<name>.")
    category: str = Field(description="A built-in category or one of extra_categories.")
    pattern: str = Field(default="", description="Regular expression (case-insensitive) over the error text.")
    exception_types: list[str] = Field(default_factory=list, description="Exception type names, e.g. KeyError.")
    confidence: float = Field(default=0.9, ge=0, le=1)
    cause: str | None = Field(default=None, description="The cause's name, e.g. 'Vendor X nightly maintenance'.")
    why: str | None = Field(default=None, description="One line: why such failures happen.")
    fix: list[str] = Field(default_factory=list, description="Fix steps for this cause, most likely first.")
    docs: str | None = Field(default=None, description="A link to the team's runbook or the vendor's docs.")
    transience: Literal["TRANSIENT", "INTERMITTENT", "PERMANENT", "UNKNOWN"] = Field(
        default="UNKNOWN", description="Would re-running unchanged help? TRANSIENT failures may be retried.")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"pattern {value!r} is not a valid regular expression: {exc}") from exc
        return value


class ScopedPrompt(BaseModel):
    """Instructions and questions for the runs of some tags, flows or deployments."""

    tags: list[str] = Field(default_factory=list, description="Runs with one of these tags.")
    flows: list[str] = Field(default_factory=list, description="Runs of these flows (globs).")
    deployments: list[str] = Field(default_factory=list, description="Runs of these deployments (globs).")
    instructions: str | None = Field(default=None, description="Extra instructions for these runs.")
    questions: list[str] = Field(default_factory=list, description="Extra questions for these runs.")

    def applies_to(self, run: FlowRunInfo) -> bool:
        values = _run_values(run)
        wanted = (("tag", self.tags), ("flow", self.flows), ("deployment", self.deployments))
        return any(p for _, p in wanted) and all(
            not patterns or _matches(patterns, values[label]) for label, patterns in wanted
        )


class FailureInsightsSettings(Block):
    """
    How failure summaries are made: which runs get one, how much evidence is
    sent, and which LLM and database blocks to use.

    Scope: every non-empty ``include_*`` list must match the run (glob patterns
    such as ``etl-*`` work), and no ``exclude_*`` list may match it. With all
    lists empty, every failed or crashed run gets a summary.

    With no settings block at all, the defaults below apply: every run, no LLM
    unless an ``llm-credentials`` block named ``default`` exists or
    ``FAILURE_INSIGHTS_LLM_URL`` / ``OPENAI_API_KEY`` is set, and a SQLite file
    under the Prefect home.

    Args:
        enabled: Whether summaries are made at all.
        include_tags: Only runs with one of these tags.
        exclude_tags: Never runs with one of these tags.
        include_flows: Only runs of these flows.
        exclude_flows: Never runs of these flows.
        include_deployments: Only runs of these deployments.
        exclude_deployments: Never runs of these deployments.
        include_work_pools: Only runs in these work pools.
        exclude_work_pools: Never runs in these work pools.
        evidence_token_budget: Most tokens of log evidence sent to the LLM.
        max_log_wait_seconds: Longest wait for late-arriving logs.
        late_log_wait_seconds: When the logs were still incomplete after that wait, how much
            longer to wait for the run's last records and then make the summary again (0: never).
        log_summary_record: Append a record to the failed run's logs pointing at its summary.
        retention_days: Delete the plugin's own rows this many days after they were made (0: never).
        provisional_summary: Deliver the deterministic analysis at once, marked provisional,
            and replace it in place with the final summary.
        llm_block_name: Name of the `llm-credentials` block to use.
        database_block_name: Name of the `sqlalchemy-connector` block to use.
        airbyte_block_name: Name of the `failure-insights-airbyte` block, to read Airbyte logs.
        custom_instructions: Extra instructions added to the prompt.
        extra_questions: Extra questions the summary should answer.
        scoped_prompts: Instructions and questions for some tags, flows or deployments.
        answer_language: Language of the summaries' text.
        llm_deadline_seconds: Longest time spent on the LLM for one summary.
        max_concurrent_llm_calls: Most LLM calls at once, across summarizers.
        daily_token_budget: Most LLM tokens per UTC day.
        daily_cost_budget_usd: Most estimated LLM spend per UTC day.
        llm_prices: Prices by model, USD per million tokens, [input, output].

    Examples:
        Only summarize production runs, and store rows in PostgreSQL:
        ```python
        from prefect_failure_insights.blocks import FailureInsightsSettings

        FailureInsightsSettings(
            include_tags=["prod"], database_block_name="analytics-db"
        ).save("default", overwrite=True)

        settings = FailureInsightsSettings.load("BLOCK_NAME")
        ```
    """

    _block_type_name = "Failure Insights Settings"
    _block_type_slug = "failure-insights-settings"
    _documentation_url = (
        "https://github.com/prefect-failure-insights/prefect-failure-insights#configuration"
    )
    _description = "Scope, budgets and block names for prefect-failure-insights."

    enabled: bool = Field(default=True, description="Whether failure summaries are made at all.")
    include_tags: list[str] = Field(
        default_factory=list, description="Only summarize runs with one of these tags."
    )
    exclude_tags: list[str] = Field(
        default_factory=list, description="Never summarize runs with one of these tags."
    )
    include_flows: list[str] = Field(
        default_factory=list, description="Only summarize runs of these flows (names or globs)."
    )
    exclude_flows: list[str] = Field(
        default_factory=list, description="Never summarize runs of these flows (names or globs)."
    )
    include_deployments: list[str] = Field(
        default_factory=list,
        description="Only summarize runs of these deployments ('flow/deployment' or deployment name).",
    )
    exclude_deployments: list[str] = Field(
        default_factory=list,
        description="Never summarize runs of these deployments ('flow/deployment' or deployment name).",
    )
    include_work_pools: list[str] = Field(
        default_factory=list, description="Only summarize runs in these work pools."
    )
    exclude_work_pools: list[str] = Field(
        default_factory=list, description="Never summarize runs in these work pools."
    )
    evidence_token_budget: int = Field(
        default=EVIDENCE_TOKEN_BUDGET,
        ge=EVIDENCE_TOKEN_BUDGET_MIN,
        le=EVIDENCE_TOKEN_BUDGET_MAX,
        description="Most tokens of condensed, redacted log evidence sent to the LLM.",
    )
    max_log_wait_seconds: float = Field(
        default=MAX_LOG_WAIT_SECONDS,
        ge=0,
        le=900,
        description="Longest wait for a failed run's late-arriving logs before summarizing.",
    )
    late_log_wait_seconds: float = Field(
        default=LATE_LOG_WAIT_SECONDS,
        ge=0,
        le=600,
        description="When a run's last log records had not arrived after max_log_wait_seconds: how much longer "
                    "to wait for them, then make the summary again from every record (0: never). Meanwhile the "
                    "summary says its logs are incomplete.",
    )
    retention_days: float = Field(
        default=RETENTION_DAYS,
        ge=0,
        description="Delete the plugin's own rows (summaries, answer cache, batches, patterns) this many days after "
                    "they were made, in the reconcile pass (0: keep them). The team's corrections are kept.",
    )
    log_summary_record: bool = Field(
        default=True,
        description="Append one record to the failed run's logs saying a summary exists and where "
                    "(the run page opens on its logs).",
    )
    provisional_summary: bool = Field(
        default=True,
        description="Deliver a provisional summary at once (the deterministic analysis of the run's state "
        "messages and the warnings and errors already stored), replaced in place by the final one.",
    )
    llm_block_name: str | None = Field(
        default=None,
        description=(
            "Name of the llm-credentials block to use; empty means the block named "
            "'default' if it exists, else the environment, else no LLM."
        ),
    )
    database_block_name: str | None = Field(
        default=None,
        description=(
            "Name of the sqlalchemy-connector block for summary rows; empty means a "
            "SQLite file under the Prefect home."
        ),
    )
    airbyte_block_name: str | None = Field(
        default=None,
        description=(
            "Name of a failure-insights-airbyte block: failed Airbyte sync tasks then get the "
            "failed Airbyte attempt's logs as extra evidence."
        ),
    )
    custom_instructions: str | None = Field(
        default=None, description="Extra instructions for the LLM, e.g. team conventions."
    )
    extra_questions: list[str] = Field(
        default_factory=list, description="Extra questions every summary should answer."
    )
    scoped_prompts: list[ScopedPrompt] = Field(
        default_factory=list,
        description="Instructions and questions that apply only to some tags, flows or deployments.",
    )
    answer_language: str | None = Field(
        default=None, description="Language of the summaries' text, e.g. German; empty means English."
    )
    llm_deadline_seconds: float = Field(
        default=LLM_DEADLINE_SECONDS, gt=0, le=1800,
        description="Longest time one summary may spend on the LLM, retries and repair included.",
    )
    max_concurrent_llm_calls: int = Field(
        default=MAX_CONCURRENT_LLM_CALLS, ge=1, le=100,
        description="Most LLM calls at once across all summarizers (a Prefect global concurrency limit).",
    )
    daily_token_budget: int | None = Field(
        default=None, ge=0,
        description="Most LLM tokens per UTC day; past it, summaries use the deterministic analysis.",
    )
    daily_cost_budget_usd: float | None = Field(
        default=None, ge=0,
        description="Most estimated LLM spend (USD) per UTC day; past it, the deterministic analysis.",
    )
    extra_categories: dict[str, str] = Field(
        default_factory=dict,
        description="Categories beyond the four built-in ones, name -> meaning (the LLM is told the meaning).",
    )
    extra_rules: list[ClassificationRule] = Field(
        default_factory=list,
        description="Classification rules tried before the built-in ones (see `failure-insights rules suggest`).",
    )
    llm_prices: dict[str, list[float]] = Field(
        default_factory=dict,
        description="USD per million tokens, [input, output], by model; overrides the built-in table.",
    )

    def skip_reason(self, run: FlowRunInfo) -> str | None:
        """Why ``run`` is out of scope, or None when it should be summarized."""
        if not self.enabled:
            return "summaries are disabled in the settings block"
        values = _run_values(run)
        dimensions = (
            ("tag", self.include_tags, self.exclude_tags),
            ("flow", self.include_flows, self.exclude_flows),
            ("deployment", self.include_deployments, self.exclude_deployments),
            ("work pool", self.include_work_pools, self.exclude_work_pools),
        )
        for label, include, exclude in dimensions:
            values_ = values[label]
            if include and not _matches(include, values_):
                return f"out of scope: {label} is not in include_{label.replace(' ', '_')}s"
            if exclude and _matches(exclude, values_):
                return f"out of scope: {label} matches exclude_{label.replace(' ', '_')}s"
        return None

    def prompt_for(self, run: FlowRunInfo) -> tuple[str | None, list[str]]:
        """The custom instructions and extra questions for ``run``: global, then scoped."""
        instructions = [self.custom_instructions] if self.custom_instructions else []
        questions = list(self.extra_questions)
        for scoped in self.scoped_prompts:
            if scoped.applies_to(run):
                if scoped.instructions:
                    instructions.append(scoped.instructions)
                questions.extend(scoped.questions)
        return ("\n\n".join(instructions) or None), questions
