"""The `summarize-failure` flow: a failed run in, a failure summary on its page out.

    resolve the failed run (the root of its subflows; skip the plugin's own flows, out of scope)
      -> claim its row (a lease, renewed until the summary is stored)
      -> Secret block values ║ the LLM to ask                         -> SummarizerRun
      -> follow the logs as late records arrive
           ║ provisional answer: state messages + warnings/errors stored so far
             -> evidence -> deterministic analysis -> deliver (provisional)
      -> final answer: run, subflows, task runs ║ last good run -> other systems' logs
           -> evidence (condensed, redacted) -> analysis (LLM, else deterministic; citations
              checked) -> similar earlier failures -> what ended them (a retry, a change)
      -> deliver: row -> markdown artifact on the failed run -> its id in the row
           -> `failure-insights.summary.created|updated` event (notifications and retries act on it)
      -> one record at the end of the failed run's logs: where its summary is
      -> logs were incomplete (no final-state record within the wait): wait longer for the last
           records -> every line, read -> the final answer again -> deliver (updated in place)

One row and one artifact per failed run: the provisional answer is replaced in place. Started
by the automation installed with ``failure-insights automation install`` (or at the failure
event itself by ``failure-insights serve``) for every failed or crashed flow run, or on
demand by ``failure-insights summary create RUN_ID``.
"""

import asyncio
import importlib
import threading
from typing import TYPE_CHECKING
from uuid import UUID, uuid4

from prefect import flow
from prefect.logging import get_run_logger
from prefect.runtime import flow_run as current_run
from prefect_failure_insights.tasks.analysis import (
    analyze_failure,
    build_evidence,
    find_similar_failures,
    provisional_summary,
    recall_resolutions,
)
from prefect_failure_insights.tasks.claims import claim_summary, holding, release_summary
from prefect_failure_insights.tasks.delivery import (
    emit_summary_event,
    log_summary_record,
    publish_artifact,
    record_artifact,
    store_summary,
)
from prefect_failure_insights.tasks.loading import (
    load_database,
    load_llm,
    load_log_sources,
    load_secret_values,
    load_settings,
)
from prefect_failure_insights.tasks.reading import (
    compare_with_last_good_run,
    follow_run_logs,
    read_external_logs,
    read_failed_run,
    read_run_logs,
    resolve_failed_run,
    wait_for_final_records,
)
from pydantic.json_schema import SkipJsonSchema

from prefect_failure_insights.defaults import (
    DEFAULT_BLOCK_NAME,
    PROVISIONAL_MIN_LEVEL,
    SUMMARIZER_FLOW,
    SUMMARIZER_TIMEOUT_SECONDS,
)
from prefect_failure_insights.exceptions import StorageError
from prefect_failure_insights.lifecycle.context import LLMGate, SummarizerRun
from prefect_failure_insights.models import EventAction, LLMEndpoint, LogWait, Stored, Summary, SummaryOutcome

if TYPE_CHECKING:
    from prefect_failure_insights.prefect_api.logs import RunLogs


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
    llm_model: str | None = None,
    answer_again_when_logs_complete: bool = True,
    gate: SkipJsonSchema[LLMGate | None] = None,
    llm_endpoint: SkipJsonSchema[LLMEndpoint | None] = None,
) -> SummaryOutcome:
    """Summarize the failed flow run ``flow_run_id`` onto its page and into the database.

    Args:
        flow_run_id: The failed or crashed flow run. A failed subflow is summarized
            on its root run, once.
        regenerate: Replace an existing summary instead of keeping it.
        settings_block: Name of the ``failure-insights-settings`` block; without
            such a block the defaults apply.
        llm_model: Use this model instead of the configured one.
        answer_again_when_logs_complete: When the run's last log records had not been stored,
            wait for them (the settings' ``late_log_wait_seconds``) and make the summary again
            in place. `failure-insights summary create` turns it off: it prints the summary made
            from what was stored, which says so.
        gate: For in-process callers only (not stored, not in the UI's form): what the
            summaries of the calling process share on their way to the LLM (`serve` passes
            one to all of its runs); by default the run has its own.
        llm_endpoint: For in-process callers only (not in the UI's form): another endpoint
            to ask, with its own key (the block's key never goes to another URL). The
            deployment takes no URL, so nobody who may run it can send the key elsewhere.

    Example:
        ```python
        from prefect_failure_insights.flows.on_failure_summary import summarize_failure

        summarize_failure(flow_run_id="0b7c...", regenerate=True)
        ```
    """
    _warm_up_imports()
    me = str(current_run.id or uuid4())
    settings = await load_settings(settings_block)
    target = await resolve_failed_run(flow_run_id, settings)
    if target.skip_reason:
        return _skipped(flow_run_id, target.root.id, target.skip_reason)
    async with await load_database(settings) as database:
        claim = await claim_summary(database, target.root, me, regenerate=regenerate)
        if stop := claim.stop_reason:
            return _skipped(flow_run_id, target.root.id, stop[1], stop[0])
        redactor, llm = await asyncio.gather(load_secret_values(), load_llm(settings, llm_endpoint, llm_model))
        run = SummarizerRun(root=target.root, summarizer_id=me, settings=settings, database=database, claim=claim,
                            redactor=redactor, llm=llm, gate=gate or LLMGate(), regenerate=regenerate)
        async with holding(run):
            try:
                (waited, logs), first_delivered = await follow_logs_while_answering_first(run)
                summary = await final_summary(run, waited, logs)
            except BaseException:
                await release_summary(run)
                raise
            stored = await deliver(run, summary, "updated" if first_delivered or claim.replaces_summary else "created")
            if stored.action != "lost":
                await log_summary_record(run, stored.summary)
            if not waited.complete and stored.action != "lost" and answer_again_when_logs_complete:
                stored = await answer_again(run, waited) or stored
    if stored.action == "lost":
        return _skipped(flow_run_id, target.root.id, "another summarizer run took over this run's summary")
    return _outcome(flow_run_id, run, stored)


async def follow_logs_while_answering_first(run: SummarizerRun) -> tuple[tuple[LogWait, "RunLogs"], bool]:
    """The concurrent step: follow the logs until their late records are stored ║ deliver the
    provisional answer meanwhile. If one fails, the other is cancelled."""
    step = asyncio.gather(follow_run_logs(run), provisional_answer(run))
    try:
        return await step
    except BaseException:
        step.cancel()
        raise


async def provisional_answer(run: SummarizerRun) -> bool:
    """At once, while the late logs arrive: the run's state messages and the warnings and errors
    already stored (filtered by the server) -> evidence -> deterministic analysis -> delivered,
    marked provisional. Whether it was delivered; a failure is logged (the final answer follows)."""
    if not run.provisional:
        return False
    try:
        failed, logs = await asyncio.gather(read_failed_run(run, []), read_run_logs([run.root.id],
                                                                                    PROVISIONAL_MIN_LEVEL))
        try:
            logs.name_tasks(failed.task_runs)
            evidence = await build_evidence(run, failed, logs.lines(run.redactor), prefix="E")
        finally:
            logs.close()
        stored = await deliver(run, await provisional_summary(run, failed, evidence), "created")
    except Exception as exc:  # noqa: BLE001 - the final summary does not depend on it
        get_run_logger().warning("No provisional summary (%s: %s); the final one follows.", type(exc).__name__, exc)
        return False
    return stored.action != "lost"


async def final_summary(run: SummarizerRun, waited: LogWait, logs: "RunLogs") -> Summary:
    """The final answer -> similar earlier failures -> what ended them."""
    return await recall_resolutions(run, await find_similar_failures(run, await final_answer(run, waited, logs)))


async def final_answer(run: SummarizerRun, waited: LogWait, logs: "RunLogs") -> Summary:
    """Every log line, read -> the run, its failed subflows and task runs ║ its last good run
    -> other systems' logs -> evidence -> analysis."""
    notes = [waited.note] if waited.note else []
    try:
        failed, baseline = await asyncio.gather(read_failed_run(run, waited.run_ids[1:]),
                                                compare_with_last_good_run(run))
        logs.name_tasks(failed.task_runs)
        lines = logs.lines(run.redactor)
        sections = await read_external_logs(failed, lines, await load_log_sources(run.settings))
        evidence = await build_evidence(run, failed, lines, baseline=baseline, notes=notes, sections=sections,
                                        logs_complete=waited.complete)
    finally:
        logs.close()
    return await analyze_failure(run, failed, evidence)


async def answer_again(run: SummarizerRun, waited: LogWait) -> Stored | None:
    """The summary delivered was made from incomplete logs (and says so): wait longer for the
    run's last records -> every line, read -> the final answer again -> delivered in place. None
    when they did not come (the summary keeps saying its logs were incomplete)."""
    if run.settings.late_log_wait_seconds <= 0:
        return None
    try:
        now = await wait_for_final_records(run, waited)
        if not now.complete:
            return None
        summary = await final_summary(run, now, await read_run_logs(now.run_ids))
        return await deliver(run, summary, "updated")
    except Exception as exc:  # noqa: BLE001 - the summary delivered stands, and says its logs were incomplete
        get_run_logger().warning("The summary was not made again from the complete logs (%s: %s); "
                                 "`failure-insights summary create --regenerate` makes it.", type(exc).__name__, exc)
        return None


async def deliver(run: SummarizerRun, summary: Summary, action: EventAction) -> Stored:
    """The row -> the markdown artifact on the failed run -> its id in the row -> the summary event.
    Nothing after the row when another summarizer took the row over."""
    stored = await store_summary(run, summary)
    if stored.action == "lost":
        return stored
    stored = await record_artifact(run, stored, await publish_artifact(stored.summary))
    await emit_summary_event(run, stored.summary, action)
    return stored


def _skipped(requested: UUID | str, root_id: str, reason: str, action: str = "skipped") -> SummaryOutcome:
    get_run_logger().info("Not summarizing %s: %s", requested, reason)
    return SummaryOutcome(requested_flow_run_id=str(requested), flow_run_id=root_id, action=action, reason=reason)


def _outcome(requested: UUID | str, run: SummarizerRun, stored: Stored) -> SummaryOutcome:
    """The outcome of a delivered summary; a row that could not be written fails the run (after
    its artifact is out), so that the missing row is noticed."""
    summary = stored.summary
    action = "created" if stored.action == "not_stored" else stored.action
    get_run_logger().info(
        "Summary %s for %s (%s): %s, %s analysis, artifact %s, %s",
        action, run.root.name, run.root.id, summary.analysis.category.value, summary.status,
        summary.delivery.artifact_id,
        "NOT stored in the database" if stored.error else f"row in {run.database.description}",
    )
    if stored.error is not None:
        raise StorageError(f"Summary published as artifact {summary.delivery.artifact_id} but not stored: "
                           f"{stored.error}")
    return SummaryOutcome(requested_flow_run_id=str(requested), flow_run_id=run.root.id, action=action,
                          reason=summary.reason, summary=summary, stored=True)


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
