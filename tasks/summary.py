"""The tasks of the `summarize-failure` flow, one per step of its diagram.

Each task is a thin wrapper around the domain function of the same name: it gets a
Prefect client or the database, calls it, logs, and returns. Retries have one owner
per network: the Prefect client retries the API's transient errors itself
(``PREFECT_CLIENT_MAX_RETRIES``) and `llm.structured` retries the LLM's, so no task
retries on top of them. Prefect's task cache is off everywhere: every step reads live
state, and the fingerprint cache in the database is what saves LLM calls.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from uuid import UUID

import anyio
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.logging import get_run_logger
from prefect_failure_insights.blocks import (
    FailureInsightsSettings,
    LLMCredentials,
    loading,
)

from prefect_failure_insights.analysis import similarity
from prefect_failure_insights.analysis import summary as analysis
from prefect_failure_insights.evidence import builder, sources
from prefect_failure_insights.redaction import Redactor
from prefect_failure_insights.exceptions import ConfigurationError, StorageError
from prefect_failure_insights.models import (
    Baseline,
    Claim,
    Evidence,
    FailedRun,
    FlowRunInfo,
    LogLine,
    LogSection,
    LogWait,
    Stored,
    Summary,
    Target,
)
from prefect_failure_insights.prefect_api import (
    artifacts,
    baseline,
    events,
    logs,
    runs,
    secrets,
)
from prefect_failure_insights.prefect_api.logs import RunLogs
from prefect_failure_insights.store import Database
from prefect_failure_insights.store import summaries as rows


@task(name="load-settings", cache_policy=NO_CACHE)
async def load_settings(name: str) -> FailureInsightsSettings:
    """The settings block ``name`` (the defaults when the default name does not exist)."""
    return await loading.load_settings(name)


@task(name="load-database", cache_policy=NO_CACHE)
async def load_database(settings: FailureInsightsSettings) -> Database:
    """The database the settings name (the SQLite file in the Prefect home by default)."""
    database = await loading.load_database(settings)
    get_run_logger().info("Summary rows go to %s", database.description)
    return database


@task(name="load-llm", cache_policy=NO_CACHE)
async def load_llm(settings: FailureInsightsSettings, url: str | None = None,
                   model: str | None = None) -> loading.LLMChoice:
    """The LLM to ask, or none with the reason (a block the settings name that does not exist is one)."""
    try:
        return await loading.load_llm(settings, url, model)
    except ConfigurationError as exc:
        return loading.LLMChoice(None, str(exc))


@task(name="load-log-sources", cache_policy=NO_CACHE)
async def load_log_sources(settings: FailureInsightsSettings) -> list[sources.LogSource]:
    """The other systems whose logs the settings add to the evidence (Airbyte)."""
    try:
        return sources.configured_sources(await loading.load_airbyte(settings))
    except ConfigurationError as exc:
        get_run_logger().warning("%s Summarizing without Airbyte logs.", exc)
        return []


@task(name="resolve-failed-run", cache_policy=NO_CACHE)
async def resolve_failed_run(flow_run_id: UUID | str, settings: FailureInsightsSettings) -> Target:
    """Read the run that failed, find the root run that carries its summary, and say whether to skip it."""
    async with get_client() as client:
        target = await runs.resolve_failed_run(client, flow_run_id)
    skip = target.skip_reason or settings.skip_reason(target.root)
    return target.model_copy(update={"skip_reason": skip})


@task(name="claim-summary", cache_policy=NO_CACHE)
async def claim_summary(database: Database, run: FlowRunInfo, claimed_by: str, regenerate: bool) -> Claim:
    """Claim the failed run's row, so that one summarizer, not two, does the work; the claim of a
    holder whose run has ended (it died, or lost its database mid-run) is taken over at once."""
    try:
        claim = await database.run(rows.claim_summary, run, claimed_by, regenerate=regenerate)
        if claim.result == "in_progress":
            async with get_client() as client:
                if await runs.has_ended(client, claim.holder):
                    claim = await database.run(rows.claim_summary, run, claimed_by, take_over_from=claim.holder)
        return claim
    except StorageError as exc:
        get_run_logger().error("%s The summary is still published as an artifact.", exc)
        return Claim(result="unavailable", run_id=run.id, claimed_by=claimed_by, error=str(exc))


@asynccontextmanager
async def holding(database: Database, claim: Claim) -> AsyncIterator[None]:
    """Keep the claim's lease while the block runs (nothing to keep without a claim)."""
    if not claim.holds:
        yield
        return
    async with database.lease(f"the summary of {claim.run_id}", rows.renew_summary, claim.run_id,
                              claim.claimed_by):
        yield


@task(name="release-summary", cache_policy=NO_CACHE)
async def release_summary(database: Database, run_id: str, claim: Claim) -> None:
    """Free a claim on a row without content, so that the next trigger (or a re-run) can try again."""
    if not claim.row_is_new:
        return  # nothing claimed, or a finished summary being regenerated: it stays
    try:
        await database.run(rows.release_summary, run_id, claim.claimed_by)
    except StorageError:
        get_run_logger().warning("Could not release the claim on %s; it expires on its own", run_id)


@task(name="follow-run-logs", cache_policy=NO_CACHE)
async def follow_run_logs(root_id: str, max_wait_s: float) -> tuple[LogWait, RunLogs]:
    """Read every log line of the failed run and its failed subflows while their late records
    arrive, until they are complete (bounded), to local temporary files (read back only
    through `RunLogs.lines`, which redacts them)."""
    async with get_client() as client:
        waited, read = await logs.follow_run_logs(client, root_id, max_wait_s)
    logger = get_run_logger()
    if not waited.complete:
        logger.warning("Logs may be incomplete for %s", ", ".join(waited.incomplete_runs))
    logger.info("Read %s in %.0f ms, %.1f s of it waiting for late records", read, read.read_ms, waited.waited_s)
    return waited, read


@task(name="read-failed-run", cache_policy=NO_CACHE)
async def read_failed_run(root_id: str, subflow_ids: list[str], redactor: Redactor) -> FailedRun:
    """Read the final states of the root run and its failed subflows, and their task runs (redacted)."""
    async with get_client() as client:
        return await runs.read_failed_run(client, root_id, subflow_ids, redactor)


@task(name="read-run-logs", cache_policy=NO_CACHE)
async def read_run_logs(run_ids: list[str], min_level: int | None = None) -> RunLogs:
    """Stream the log lines of these runs stored so far at ``min_level`` and above (or all of
    them) to local temporary files (read back only through `RunLogs.lines`, which redacts them)."""
    async with get_client() as client:
        read = await logs.read_run_logs(client, run_ids, min_level)
    get_run_logger().info("Read %s in %.0f ms", read, read.read_ms)
    return read


@task(name="compare-with-last-good-run", cache_policy=NO_CACHE)
async def compare_with_last_good_run(failed_run_id: str, redactor: Redactor) -> Baseline | None:
    """Find the deployment's last successful run and what differs from it (redacted)."""
    async with get_client() as client:
        return await baseline.compare_with_last_good_run(client, failed_run_id, redactor)


@task(name="load-secret-values", cache_policy=NO_CACHE)
async def load_secret_values() -> Redactor:
    """A redactor that also removes the exact values of the workspace's Secret blocks."""
    try:
        async with get_client() as client:
            values = await secrets.load_secret_values(client)
    except Exception as exc:  # noqa: BLE001 - pattern-based redaction still applies
        get_run_logger().warning("Secret block values not available for exact redaction (%s); patterns still apply.",
                                 type(exc).__name__)
        values = []
    return Redactor(literals=values)


@task(name="read-external-logs", cache_policy=NO_CACHE)
async def read_external_logs(failed: FailedRun, lines: Iterable[LogLine],
                             log_sources: list[sources.LogSource]) -> list[LogSection]:
    """Ask each configured source for extra evidence; a failing source is skipped with a warning."""
    sections, warnings = await sources.read_external_logs(failed, lines, log_sources)
    for warning in warnings:
        get_run_logger().warning("%s", warning)
    return sections


@task(name="build-evidence", cache_policy=NO_CACHE)
async def build_evidence(failed: FailedRun, lines: Iterable[LogLine], budget_tokens: int, redactor: Redactor,
                         baseline: Baseline | None, notes: list[str], sections: list[LogSection],
                         prefix: str = "L") -> Evidence:
    """Condense and redact the failed run's logs into evidence within the token budget."""
    # CPU-bound: keep the event loop (other summaries, heartbeats, log shipping) free.
    evidence = await anyio.to_thread.run_sync(lambda: builder.build_evidence(
        failed, iter(lines), budget_tokens, redactor, baseline, notes, sections, prefix))
    get_run_logger().info(
        "Evidence: %d of %d lines kept, ~%d tokens, root error at L%s (%s), %d secret(s) redacted, %.0f ms",
        len(evidence.kept_lines), evidence.total_lines, evidence.tokens, evidence.root_error_line,
        evidence.root_error_reason, evidence.redaction_count, evidence.elapsed_ms,
    )
    return evidence


@task(name="provisional-summary", cache_policy=NO_CACHE)
def provisional_summary(failed: FailedRun, evidence: Evidence, settings: FailureInsightsSettings,
                        summarizer_id: str) -> Summary:
    """The deterministic analysis of what is stored now, marked provisional (replaced in place later)."""
    return analysis.provisional_summary(failed, evidence, settings.max_log_wait_seconds, summarizer_id)


# Retries: inside `analyze` (llm.structured owns them), so none here.
@task(name="analyze-failure", cache_policy=NO_CACHE, retries=0)
async def analyze_failure(failed: FailedRun, evidence: Evidence, settings: FailureInsightsSettings,
                          llm: LLMCredentials | None, no_llm_reason: str | None, redactor: Redactor,
                          database: Database | None, regenerate: bool, summarizer_id: str) -> Summary:
    """Explain the failure (what happened, how to fix it, why it happened) and compose its summary."""
    async with get_client() as client:  # to know when another summarizer of the same failure has ended
        result = await analysis.analyze_failure(
            failed, evidence, settings, llm, no_llm_reason=no_llm_reason, redactor=redactor, database=database,
            regenerate=regenerate, summarizer_id=summarizer_id, holder_ended=lambda h: runs.has_ended(client, h))
    log = get_run_logger()
    for note in result.notes:
        log.warning("%s", note)
    log.log(logging.INFO if result.status == "llm" else logging.WARNING, "%s", analysis.describe(result))
    return analysis.compose_summary(failed, evidence, result, summarizer_id)


@task(name="find-similar-failures", cache_policy=NO_CACHE)
async def find_similar_failures(database: Database, summary: Summary) -> Summary:
    """The summary with the earlier failures similar to it, in any flow (none when the database fails)."""
    try:
        found = await similarity.find_similar_failures(database, summary.recurrence, summary.run.id)
    except StorageError as exc:
        get_run_logger().warning("Similar failures not looked up: %s", exc)
        return summary
    if found.count:
        get_run_logger().info("Similar to %d earlier failure(s) in %s", found.count, ", ".join(found.flows))
    return summary.model_copy(update={"similar": found})


@task(name="store-summary", cache_policy=NO_CACHE)
async def store_summary(database: Database, summary: Summary, claim: Claim) -> Stored:
    """Write the summary into its claimed row; a database error leaves it unstored (and says why)."""
    if not claim.holds:
        return Stored(summary=summary, action="not_stored", error=claim.error)
    try:
        return await database.run(rows.store_summary, summary, claim.claimed_by)
    except StorageError as exc:
        get_run_logger().error("%s The summary is still published as an artifact.", exc)
        await release_summary.fn(database, summary.run.id, claim)
        return Stored(summary=summary, action="not_stored", error=str(exc))


@task(name="publish-artifact", cache_policy=NO_CACHE)
async def publish_artifact(summary: Summary) -> str:
    """Attach the summary to the failed run's page in the Prefect UI; return the artifact's id."""
    async with get_client() as client:
        return await artifacts.publish_artifact(client, summary)


@task(name="record-artifact", cache_policy=NO_CACHE)
async def record_artifact(database: Database, stored: Stored, artifact_id: str, claim: Claim) -> Stored:
    """Record the artifact's id in the row this summarizer wrote."""
    summary = stored.summary.model_copy(update={
        "delivery": stored.summary.delivery.model_copy(update={"artifact_id": artifact_id})})
    if stored.error is not None or stored.action == "lost":
        return stored.model_copy(update={"summary": summary})
    try:
        await database.run(rows.record_artifact, summary.run.id, artifact_id, claim.claimed_by)
    except StorageError as exc:
        get_run_logger().error("%s", exc)
        return stored.model_copy(update={"summary": summary, "error": str(exc)})
    return stored.model_copy(update={"summary": summary})


@task(name="emit-summary-event", cache_policy=NO_CACHE)
async def emit_summary_event(summary: Summary, action: events.EventAction, summarizer_id: str) -> None:
    """Announce the delivered summary with a Prefect event (notifications and retries act on it).
    The summary is out already: a failure to emit is logged, not raised."""
    try:
        event = await events.emit_summary_event(summary, action, summarizer_id)
    except Exception as exc:  # noqa: BLE001 - the artifact and the row are delivered
        get_run_logger().error("Summary event not emitted (%s: %s): automations on it will not act on this "
                               "summary", type(exc).__name__, exc)
        return
    if event is not None:
        get_run_logger().info("Emitted %s for %s (%s)", event.event, summary.run.id, summary.status)
