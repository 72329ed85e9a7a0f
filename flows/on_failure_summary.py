"""The `summarize-failure` flow: a failed run in, a failure summary on its page out.

    resolve the run (root of its subflows; own flows, scope) -> claim its row (a lease, renewed)
      -> follow the logs as late records arrive ║ secrets -> first answer: state messages + warnings/errors
                                   stored so far -> deterministic analysis -> row + artifact, provisional -> event
      -> read run, subflows, task runs ║ last good run
      -> other systems' logs -> evidence (condensed, redacted) -> analysis (LLM, else deterministic;
         its citations checked) -> similar earlier failures, any flow (one indexed lookup)
      -> row in the database -> markdown artifact on the failed run (one per run, both updated in place)
      -> a `failure-insights.summary.created|updated` event (notifications and retries act on it)

Started by the automation installed with ``failure-insights automation install``
for every ``prefect.flow-run.Failed`` / ``prefect.flow-run.Crashed`` event, or on
demand by ``failure-insights summarize RUN_ID``.
"""

import asyncio
import importlib
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from uuid import UUID, uuid4

from prefect import flow
from prefect.logging import get_run_logger
from prefect.runtime import flow_run as current_run
from prefect_failure_insights.tasks.summary import (
    analyze_failure,
    build_evidence,
    claim_summary,
    compare_with_last_good_run,
    emit_summary_event,
    find_similar_failures,
    follow_run_logs,
    holding,
    load_database,
    load_llm,
    load_log_sources,
    load_secret_values,
    load_settings,
    provisional_summary,
    publish_artifact,
    read_external_logs,
    read_failed_run,
    read_run_logs,
    record_artifact,
    release_summary,
    resolve_failed_run,
    store_summary,
)

from prefect_failure_insights.defaults import (
    DEFAULT_BLOCK_NAME,
    PROVISIONAL_MIN_LEVEL,
    SUMMARIZER_FLOW,
    SUMMARIZER_TIMEOUT_SECONDS,
)
from prefect_failure_insights.exceptions import StorageError
from prefect_failure_insights.models import Claim, Summary, SummaryOutcome

if TYPE_CHECKING:
    from prefect_failure_insights.blocks import FailureInsightsSettings
    from prefect_failure_insights.redaction import Redactor

    from prefect_failure_insights.store import Database


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


async def first_answer(root_id: str, settings: "FailureInsightsSettings", database: "Database", claim: Claim,
                       summarizer_id: str, redactor: "Redactor") -> bool:
    """At once, while the late logs arrive: the run's state messages and the warnings and errors
    already stored (filtered by the server) -> evidence -> deterministic analysis -> the row and
    the artifact, marked provisional -> its event. The final summary replaces them in place.
    Whether it was delivered."""
    failed, logs = await asyncio.gather(read_failed_run(root_id, [], redactor),
                                        read_run_logs([root_id], PROVISIONAL_MIN_LEVEL))
    try:
        logs.name_tasks(failed.task_runs)
        evidence = await build_evidence(failed, logs.lines(redactor), settings.evidence_token_budget, redactor,
                                        None, [], [], "E")
    finally:
        logs.close()
    stored = await store_summary(database, provisional_summary(failed, evidence, settings, summarizer_id), claim)
    if stored.action == "lost":
        return False
    stored = await record_artifact(database, stored, await publish_artifact(stored.summary), claim)
    await emit_summary_event(stored.summary, "created", summarizer_id)
    return True


async def explain(root_id: str, settings: "FailureInsightsSettings", database: "Database | None", summarizer_id: str,
                  regenerate: bool, llm_url: str | None, llm_model: str | None,
                  first: "Callable[[Redactor], Awaitable[None]] | None" = None) -> Summary:
    """Follow the logs until their late records are stored (and meanwhile the Secret block values,
    then the ``first`` answer) -> read the run and its last good run, every text redacted as it
    is read -> evidence -> analysis."""
    async def redactor_then_first() -> "Redactor":
        redactor = await load_secret_values()
        if first is not None:
            try:
                await first(redactor)
            except Exception as exc:  # noqa: BLE001 - the final summary does not depend on it
                get_run_logger().warning("No provisional summary (%s: %s); the final one follows.",
                                         type(exc).__name__, exc)
        return redactor

    (waited, logs), redactor = await asyncio.gather(follow_run_logs(root_id, settings.max_log_wait_seconds),
                                                    redactor_then_first())
    notes = [] if waited.complete else [
        f"logs may be incomplete: no final-state record after {waited.waited_s:.0f}s"]
    try:
        # Independent reads: do them at once.
        failed, baseline = await asyncio.gather(
            read_failed_run(root_id, waited.run_ids[1:], redactor),
            compare_with_last_good_run(root_id, redactor),
        )
        logs.name_tasks(failed.task_runs)
        lines = logs.lines(redactor)
        sections = await read_external_logs(failed, lines, await load_log_sources(settings))
        evidence = await build_evidence(failed, lines, settings.evidence_token_budget, redactor, baseline, notes,
                                        sections)
    finally:
        logs.close()
    llm = await load_llm(settings, llm_url, llm_model)
    return await analyze_failure(failed, evidence, settings, llm.credentials,
                                 None if llm.credentials else llm.source, redactor, database, regenerate,
                                 summarizer_id)


@flow(
    name=SUMMARIZER_FLOW,
    description="Explain a failed or crashed flow run: what happened, how to fix it, why.",
    retries=0,
    timeout_seconds=SUMMARIZER_TIMEOUT_SECONDS,
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
    target = await resolve_failed_run(flow_run_id, settings)
    root = target.root

    def skipped(reason: str, action: str = "skipped") -> SummaryOutcome:
        logger.info("Not summarizing %s: %s", requested, reason)
        return SummaryOutcome(requested_flow_run_id=requested, flow_run_id=root.id, action=action, reason=reason)

    if target.skip_reason:
        return skipped(target.skip_reason)
    me = str(current_run.id or uuid4())
    async with await load_database(settings) as database:
        claim = await claim_summary(database, root, me, regenerate)
        if stop := claim.stop_reason:
            return skipped(stop[1], stop[0])
        # A provisional summary at once, unless there is a summary already (regenerating keeps the
        # old one readable until the new one replaces it) or no row to mark it in.
        provisional = settings.provisional_summary and claim.row_is_new
        delivered_first = False

        async def first(redactor: "Redactor") -> None:
            nonlocal delivered_first
            delivered_first = await first_answer(root.id, settings, database, claim, me, redactor)

        async with holding(database, claim):  # the claim's lease, renewed until the row is written
            try:
                summary = await explain(root.id, settings, database, me, regenerate, llm_url, llm_model,
                                        first if provisional else None)
            except BaseException:
                await release_summary(database, root.id, claim)
                raise
            stored = await store_summary(database, await find_similar_failures(database, summary), claim)
        if stored.action == "lost":
            return skipped("another summarizer run took over this run's summary")
        stored = await record_artifact(database, stored, await publish_artifact(stored.summary), claim)
    replaced = delivered_first or claim.replaces_summary
    await emit_summary_event(stored.summary, "updated" if replaced else "created", me)

    summary = stored.summary
    action = "created" if stored.action == "not_stored" else stored.action
    logger.info(
        "Summary %s for %s (%s): %s, %s analysis, artifact %s, %s",
        action, root.name, root.id, summary.analysis.category.value, summary.status,
        summary.delivery.artifact_id, "NOT stored in the database" if stored.error else f"row in {database.description}",
    )
    if stored.error is not None:
        # The artifact is out; the run still ends Failed so that the missing row is noticed.
        raise StorageError(f"Summary published as artifact {summary.delivery.artifact_id} but not stored: "
                           f"{stored.error}")
    return SummaryOutcome(requested_flow_run_id=requested, flow_run_id=root.id, action=action,
                          reason=summary.reason, summary=summary, stored=True)
