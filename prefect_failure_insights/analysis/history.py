"""What ended earlier similar failures, recalled for a summary, and what the answer without an LLM
learns from it.

`recall_resolutions` asks Prefect what happened after each of the most similar earlier failures
(`prefect_api.history`) and adds the team's corrections (`reporting.history.describe_history` says
it in one sentence). `apply_history` gives the deterministic analysis what worked before: a retry that
fixed every earlier occurrence makes the failure TRANSIENT (unless the analysis found it
PERMANENT: a rejected key fixed by a retry once is still a rejected key) and puts "retry" first
among the fix steps; a next run that completed after a change names that change as the first step.
An LLM's answer is left as it is: the history is shown beside it.
"""

from __future__ import annotations

from prefect.client.orchestration import PrefectClient

from prefect_failure_insights.defaults import ANSWER_LIST_MAX
from prefect_failure_insights.exceptions import StorageError
from prefect_failure_insights.models import FailureAnalysis, Resolution, Summary, Transience
from prefect_failure_insights.prefect_api.history import resolution_history
from prefect_failure_insights.reporting.history import latest, resolved_on
from prefect_failure_insights.store import Database
from prefect_failure_insights.store.corrections import corrections_of_runs


def history_fix(history: list[Resolution]) -> str | None:
    """The fix step the history suggests, or None when it suggests none."""
    known = [r for r in history if r.outcome != "unknown"]
    retries = [r for r in known if r.outcome == "retry"]
    changed = [r for r in known if r.outcome == "next_run" and r.changes]
    if changed:
        last = latest(changed)
        return (f"Check for the change that ended the last similar failure: the deployment's next run completed "
                f"after {'; '.join(last.changes)} (on {resolved_on(last)}).")
    if retries and len(retries) == len(known):
        return (f"Retry the run: a retry fixed each of the last {len(retries)} similar failure(s), last on "
                f"{resolved_on(latest(retries))}.")
    return None


def apply_history(analysis: FailureAnalysis, history: list[Resolution]) -> FailureAnalysis:
    """The deterministic analysis with what worked before: the fix step first, the transience
    TRANSIENT when a retry fixed every earlier occurrence (never over a PERMANENT finding)."""
    step = history_fix(history)
    if step is None or step in analysis.how_to_fix:
        return analysis
    update: dict = {
        "how_to_fix": [step, *analysis.how_to_fix][:ANSWER_LIST_MAX],
        "citations": analysis.citations.model_copy(update={
            "how_to_fix": [[], *analysis.citations.how_to_fix][:ANSWER_LIST_MAX]}),
    }
    known = [r for r in history if r.outcome != "unknown"]
    if (all(r.outcome == "retry" for r in known)
            and analysis.transience in (Transience.UNKNOWN, Transience.INTERMITTENT)):
        update["transience"] = Transience.TRANSIENT
    return analysis.model_copy(update=update)


async def recall_resolutions(database: Database, client: PrefectClient, summary: Summary) -> Summary:
    """``summary`` with what ended each of its most similar earlier failures (``similar.history``)
    and, for the deterministic analysis, what worked before (`apply_history`). The team's
    corrections are added when the database answers (they are optional: the history stands without)."""
    earlier = summary.similar.most_similar
    if not earlier:
        return summary
    try:
        corrected = await database.run(corrections_of_runs, [e.flow_run_id for e in earlier])
    except StorageError:
        corrected = {}
    past = await resolution_history(client, earlier, corrected)
    update: dict = {"similar": summary.similar.model_copy(update={"history": past})}
    if summary.status == "fallback":
        update["analysis"] = apply_history(summary.analysis, past)
    return summary.model_copy(update=update)
