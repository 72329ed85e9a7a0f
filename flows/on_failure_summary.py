"""The `summarize-failure` flow: a failed run in, a failure summary on its page out.

    resolve the run (root of its subflows) -> in scope? -> claim its row
      -> wait for late logs -> read run, subflows, task runs -> read logs
      -> evidence (condensed, redacted) -> analysis (LLM, else deterministic)
      -> row in the database + markdown artifact on the failed run

Started by the automation installed with ``failure-insights automation install``
for every ``prefect.flow-run.Failed`` / ``prefect.flow-run.Crashed`` event, or on
demand by ``failure-insights summarize RUN_ID``.
"""

import asyncio
import importlib
import threading
from datetime import datetime, timezone
from uuid import UUID, uuid4

from prefect import flow
from prefect.logging import get_run_logger
from prefect.runtime import flow_run as current_run
from sqlalchemy import Engine

from prefect_failure_insights import OWN_FLOWS, SUMMARIZER_FLOW
from prefect_failure_insights.config import (
    DEFAULT_BLOCK_NAME,
    load_airbyte,
    load_database,
    load_llm,
    load_settings,
)
from prefect_failure_insights.exceptions import ConfigurationError, StorageError
from prefect_failure_insights.models import Summary, SummaryOutcome
from prefect_failure_insights.blocks import FailureInsightsSettings
from prefect_failure_insights.tasks.analysis import analyze_failure, compose_summary
from prefect_failure_insights.tasks.baseline import compare_with_last_good_run
from prefect_failure_insights.tasks.delivery import SummaryRow, publish_artifact
from prefect_failure_insights.tasks.evidence import gather_evidence
from prefect_failure_insights.tasks.logs import read_run_logs, wait_for_run_logs
from prefect_failure_insights.tasks.redaction import load_secret_values
from prefect_failure_insights.tasks.runs import read_failed_run, resolve_failed_run
from prefect_failure_insights.tasks.sources import LogSource, configured_sources, read_external_logs


def _warm_up_imports() -> None:
    """Import the database and LLM SDKs in a background thread while the run reads the API.

    Together they take ~0.7 s to import on a small machine, which would otherwise add
    directly to the failure-to-summary latency; the flow's first steps mostly wait
    on the network, so the import happens in that time instead.
    """

    def load() -> None:
        for name in ("prefect_sqlalchemy", "openai"):
            try:
                importlib.import_module(name)
            except ImportError:  # surfaces, with context, where the module is used
                pass

    threading.Thread(target=load, name="failure-insights-warm-up", daemon=True).start()


async def _sources(settings: FailureInsightsSettings) -> list[LogSource]:
    try:
        return configured_sources(await load_airbyte(settings))
    except ConfigurationError as exc:
        get_run_logger().warning("%s Summarizing without Airbyte logs.", exc)
        return []


async def explain(
    root_id: str,
    settings: FailureInsightsSettings,
    summarizer_id: str,
    engine: Engine | None = None,
    regenerate: bool = False,
    llm_url: str | None = None,
    llm_model: str | None = None,
) -> Summary:
    """Wait for late logs -> read the run, its logs, its last good run -> evidence -> analysis."""
    waited = await wait_for_run_logs(root_id, settings.max_log_wait_seconds)
    notes = []
    if not waited.complete:
        notes.append(f"logs may be incomplete: no final-state record after {waited.waited_s:.0f}s")
        get_run_logger().warning("Logs may be incomplete for %s", ", ".join(waited.incomplete_runs))
    # Independent reads: do them at once.
    failed, logs, baseline, redactor = await asyncio.gather(
        read_failed_run(root_id, waited.run_ids[1:]),
        read_run_logs(waited.run_ids),
        compare_with_last_good_run(root_id),
        load_secret_values(),
    )
    try:
        logs.name_tasks(failed.task_runs)
        sections = await read_external_logs(failed, logs, await _sources(settings))
        evidence = await gather_evidence(
            failed, logs, settings.evidence_token_budget, redactor, baseline, notes, sections
        )
    finally:
        logs.close()
    try:
        choice = await load_llm(settings, llm_url, llm_model)
        llm, no_llm_reason = choice.credentials, (None if choice.credentials else choice.source)
    except ConfigurationError as exc:
        llm, no_llm_reason = None, str(exc)
    result = await analyze_failure(failed, evidence, settings, llm, no_llm_reason, redactor, engine,
                                   regenerate, summarizer_id)
    return compose_summary(failed, evidence, result, summarizer_id)


@flow(
    name=SUMMARIZER_FLOW,
    description="Explain a failed or crashed flow run: what happened, how to fix it, why.",
    retries=0,
    timeout_seconds=900,
    validate_parameters=True,
)
async def summarize_failure(
    flow_run_id: UUID,
    regenerate: bool = False,
    settings_block: str = DEFAULT_BLOCK_NAME,
    llm_url: str | None = None,
    llm_model: str | None = None,
) -> SummaryOutcome:
    """Summarize the failed flow run ``flow_run_id`` onto its page and into the database.

    Args:
        flow_run_id: The failed or crashed flow run. A failed subflow is summarized
            on its root run, once.
        regenerate: Replace an existing summary instead of keeping it.
        settings_block: Name of the ``failure-insights-settings`` block; without
            such a block the defaults apply.
        llm_url: Use this OpenAI-compatible endpoint instead of the configured one
            (the API key still comes from the block or the environment).
        llm_model: Use this model instead of the configured one.

    Example:
        ```python
        from prefect_failure_insights.flows.on_failure_summary import summarize_failure

        summarize_failure(flow_run_id="0b7c...", regenerate=True)
        ```
    """
    _warm_up_imports()
    logger = get_run_logger()
    requested = str(flow_run_id)
    settings = await load_settings(settings_block)
    target = await resolve_failed_run(flow_run_id)

    def skipped(reason: str, action: str = "skipped") -> SummaryOutcome:
        logger.info("Not summarizing %s: %s", requested, reason)
        return SummaryOutcome(
            requested_flow_run_id=requested, flow_run_id=target.root.id, action=action, reason=reason
        )

    if target.requested.flow_name in OWN_FLOWS or target.root.flow_name in OWN_FLOWS:
        return skipped(f"runs of {', '.join(OWN_FLOWS)} are never summarized (that would loop)")
    if target.skip_reason:
        return skipped(target.skip_reason)
    root = target.root
    if out_of_scope := settings.skip_reason(root):
        return skipped(out_of_scope)

    me = str(current_run.id or uuid4())
    connector, where = await load_database(settings)
    row = SummaryRow(connector, root, me)
    try:
        if stop := await row.acquire(regenerate):
            action, reason = stop
            return skipped(reason, action)
        try:
            summary = await explain(root.id, settings, me, row.engine, regenerate, llm_url, llm_model)
        except BaseException:
            await row.release()
            raise
        action = await row.store(summary) or "created"
        if action == "lost":
            return skipped("another summarizer run took over this run's summary")
        summary.regenerated = action == "replaced"
        summary.updated_at = datetime.now(timezone.utc)
        summary.artifact_id = await publish_artifact(summary)
        await row.record_artifact(summary.artifact_id)
    finally:
        await row.close()

    logger.info(
        "Summary %s for %s (%s): %s, %s analysis, artifact %s, %s",
        action, root.name, root.id, summary.analysis.category.value, summary.status,
        summary.artifact_id, "NOT stored in the database" if row.error else f"row in {where}",
    )
    if row.error is not None:
        # The artifact is out; the run still ends Failed so that the missing row is noticed.
        raise StorageError(f"Summary published as artifact {summary.artifact_id} but not stored: {row.error}")
    return SummaryOutcome(
        requested_flow_run_id=requested,
        flow_run_id=root.id,
        action=action,
        reason=summary.reason,
        summary=summary,
        stored=True,
    )
