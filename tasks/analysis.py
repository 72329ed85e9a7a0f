"""The tasks that turn what was read into an answer: evidence, the provisional and the final
analysis, similar earlier failures and what ended them (`evidence.builder`, `analysis`)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import anyio
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.logging import get_run_logger

from prefect_failure_insights.analysis import compose, history, similarity
from prefect_failure_insights.analysis.categorize import Categorizer, workspace_categorizer
from prefect_failure_insights.analysis.training import stored_model
from prefect_failure_insights.evidence import builder
from prefect_failure_insights.exceptions import StorageError
from prefect_failure_insights.llm.embeddings import embedder_for
from prefect_failure_insights.lifecycle.context import SummarizerRun
from prefect_failure_insights.models import Baseline, Evidence, FailedRun, LogLine, LogSection, Summary
from prefect_failure_insights.prefect_api import runs
from prefect_failure_insights.reporting.history import describe_history


@task(name="build-evidence", cache_policy=NO_CACHE)
async def build_evidence(run: SummarizerRun, failed: FailedRun, lines: Iterable[LogLine], *,
                         baseline: Baseline | None = None, notes: Sequence[str] = (),
                         sections: Sequence[LogSection] = (), prefix: str = "L",
                         logs_complete: bool = True) -> Evidence:
    """Condense and redact the failed run's logs into evidence within the token budget."""
    # CPU-bound: keep the event loop (other summaries, heartbeats, log shipping) free.
    evidence = await anyio.to_thread.run_sync(lambda: builder.build_evidence(
        failed, iter(lines), run.settings.evidence_token_budget, redactor=run.redactor, baseline=baseline,
        notes=list(notes), sections=list(sections), prefix=prefix, logs_complete=logs_complete))
    get_run_logger().info(
        "Evidence: %d of %d lines kept, ~%d tokens, root error at L%s (%s), %d secret(s) redacted, %.0f ms",
        len(evidence.kept_lines), evidence.total_lines, evidence.tokens, evidence.root_error_line,
        evidence.root_error_reason, evidence.redaction_count, evidence.elapsed_ms,
    )
    return evidence


async def _categorizer(run: SummarizerRun) -> Categorizer:
    """The workspace's classification: its team rules and its retrained model (the batch's too)."""
    try:
        model = await run.database.run(stored_model)
    except StorageError as exc:
        get_run_logger().warning("The team's retrained model was not read (%s): the shipped model classifies", exc)
        model = None
    return workspace_categorizer(run.settings, model)


@task(name="provisional-summary", cache_policy=NO_CACHE)
async def provisional_summary(run: SummarizerRun, failed: FailedRun, evidence: Evidence) -> Summary:
    """The deterministic analysis of what is stored now, marked provisional (replaced in place later)."""
    return compose.provisional_summary(failed, evidence, run.settings.max_log_wait_seconds,
                                       summarizer_id=run.summarizer_id, categorizer=await _categorizer(run))


# Retries: inside the answer (llm.structured owns them), so none here.
@task(name="analyze-failure", cache_policy=NO_CACHE, retries=0)
async def analyze_failure(run: SummarizerRun, failed: FailedRun, evidence: Evidence) -> Summary:
    """Explain the failure (what happened, how to fix it, why it happened) and compose its summary."""
    async with get_client() as client:  # to know when another summarizer of the same failure has ended
        result = await run.gate.analyze_failure(
            failed, evidence, settings=run.settings, llm=run.llm.credentials,
            no_llm_reason=None if run.llm.credentials else run.llm.source, redactor=run.redactor,
            database=run.database, regenerate=run.regenerate, summarizer_id=run.summarizer_id,
            holder_ended=lambda holder: runs.has_ended(client, holder), categorizer=await _categorizer(run))
    log = get_run_logger()
    for note in result.notes:
        log.warning("%s", note)
    log.log(logging.INFO if result.status == "llm" else logging.WARNING, "%s", compose.describe(result))
    return compose.compose_summary(failed, evidence, result, summarizer_id=run.summarizer_id)


@task(name="find-similar-failures", cache_policy=NO_CACHE)
async def find_similar_failures(run: SummarizerRun, summary: Summary) -> Summary:
    """The summary with the earlier failures similar to it, in any flow, by the LLM block's
    embedding model when it names one (none when the database fails)."""
    try:
        async with embedder_for(run.llm.credentials) as embedder:
            found = await similarity.find_similar_failures(run.database, summary.recurrence, summary.run.id,
                                                           embedder=embedder)
    except StorageError as exc:
        get_run_logger().warning("Similar failures not looked up: %s", exc)
        return summary
    if found.fallback_reason:
        get_run_logger().warning("Similar failures found lexically: %s", found.fallback_reason)
    if found.count:
        get_run_logger().info("Similar to %d earlier failure(s) in %s (%s)", found.count, ", ".join(found.flows),
                              found.method)
    return summary.model_copy(update={"similar": found})


@task(name="recall-resolutions", cache_policy=NO_CACHE)
async def recall_resolutions(run: SummarizerRun, summary: Summary) -> Summary:
    """The summary with what ended each of its most similar earlier failures (a retry, the
    deployment's next run after a change, nothing yet); unchanged when Prefect cannot tell."""
    try:
        async with get_client() as client:
            recalled = await history.recall_resolutions(run.database, client, summary)
    except Exception as exc:  # noqa: BLE001 - an API error must not cost the summary
        get_run_logger().warning("What ended the similar failures was not read (%s: %s)", type(exc).__name__, exc)
        return summary
    if said := describe_history(recalled.similar.history):
        get_run_logger().info("%s", said)
    return recalled
