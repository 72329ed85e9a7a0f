"""`failure-insights doctor`: is everything a summary needs in place? A line per check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound

from prefect_failure_insights.defaults import (
    BATCH_DEPLOYMENT,
    DEFAULT_BLOCK_NAME,
    LLM_CONCURRENCY_LIMIT,
    SUMMARIZER_DEPLOYMENT,
)
from prefect_failure_insights.exceptions import (
    ConfigurationError,
    LLMError,
    LLMRejected,
    StorageError,
)

Status = Literal["ok", "warn", "fail"]
MARKS = {"ok": "[ ok ]", "warn": "[warn]", "fail": "[FAIL]"}


@dataclass
class Check:
    name: str
    status: Status
    detail: str

    @property
    def mark(self) -> str:
        return MARKS[self.status]


async def _llm_answers(llm) -> Check:
    """One tiny request through the same backend the summaries use (so every provider is checked)."""
    from prefect_failure_insights.llm.backends import backend_for

    backend = backend_for(llm)
    try:
        await backend.complete([{"role": "user", "content": "Reply with OK."}], None, 5, timeout=min(llm.timeout, 20.0))
    except LLMRejected as exc:
        return Check("LLM", "fail", str(exc))
    except LLMError as exc:
        return Check("LLM", "fail", f"{llm.display} did not answer ({exc}).")
    finally:
        await backend.close()
    return Check("LLM", "ok", f"{llm.display} answers")


def _served(deployment) -> bool:
    """A runner or worker polls it (Prefect marks the deployment READY)."""
    status = getattr(deployment, "status", None)
    return status is None or str(getattr(status, "value", status)) == "READY"


async def _llm_limit(client, settings) -> Check:
    NAME = LLM_CONCURRENCY_LIMIT  # noqa: N806

    fix = "`failure-insights automation install` creates or updates it"
    try:
        limit = await client.read_global_concurrency_limit_by_name(NAME)
    except ObjectNotFound:
        return Check("LLM limit", "warn", f"no global concurrency limit {NAME!r}: LLM calls are not "
                     f"limited across runs; {fix}.")
    if not limit.active:
        return Check("LLM limit", "warn", f"{NAME!r} is inactive: LLM calls are not limited across runs; "
                     "activate it under Concurrency in the Prefect UI.")
    if limit.limit != settings.max_concurrent_llm_calls:
        return Check("LLM limit", "warn", f"{NAME!r} has {limit.limit} slots, the settings say "
                     f"max_concurrent_llm_calls={settings.max_concurrent_llm_calls}; {fix}.")
    return Check("LLM limit", "ok", f"{NAME!r}: {limit.limit} slots, {limit.active_slots} in use")


async def _budget(database, settings) -> Check | None:
    from prefect_failure_insights.analysis.gate import over_budget

    if settings.daily_token_budget is None and settings.daily_cost_budget_usd is None:
        return None
    try:
        spent = await database.run(over_budget, settings)
    except StorageError as exc:
        return Check("LLM budget", "warn", f"today's LLM use could not be read: {exc}")
    if spent:
        return Check("LLM budget", "warn", f"{spent}: summaries are deterministic until midnight UTC.")
    return Check("LLM budget", "ok", "today's LLM use is within the daily budgets")


async def run_checks(settings_block: str = DEFAULT_BLOCK_NAME) -> list[Check]:
    """Run every check; never raises for a failing check."""
    from prefect.settings import get_current_settings

    from prefect_failure_insights.automations.failure_trigger import status
    from prefect_failure_insights.blocks.loading import (
        load_database,
        load_llm,
        load_settings,
    )
    from prefect_failure_insights.store.summaries import probe_write

    checks: list[Check] = []
    api = get_current_settings().api.url or "ephemeral (PREFECT_API_URL not set)"
    async with get_client() as client:
        healthy = await client.api_healthcheck()
    if healthy is not None:
        checks.append(Check("Prefect API", "fail",
                            f"{api} unreachable ({type(healthy).__name__}): start it or set PREFECT_API_URL."))
        return checks
    checks.append(Check("Prefect API", "ok", f"{api} reachable"))

    try:
        settings = await load_settings(settings_block)
        checks.append(Check("Settings", "ok", f"failure-insights-settings/{settings_block}"
                            if settings._block_document_id else "no settings block: defaults in use"))
    except ConfigurationError as exc:
        checks.append(Check("Settings", "fail", str(exc)))
        return checks

    try:
        choice = await load_llm(settings)
    except ConfigurationError as exc:
        checks.append(Check("LLM", "fail", str(exc)))
    else:
        if choice.credentials is None:
            checks.append(Check("LLM", "warn", "none: summaries are deterministic. " + choice.source))
        else:
            checks.append(await _llm_answers(choice.credentials))

    try:
        database = await load_database(settings)
    except ConfigurationError as exc:
        checks.append(Check("Database", "fail", str(exc)))
    else:
        async with database:
            try:
                await database.run(probe_write)
                checks.append(Check("Database", "ok", f"{database.description} writable"))
                budget = await _budget(database, settings)
                if budget is not None:
                    checks.append(budget)
            except StorageError as exc:
                checks.append(Check("Database", "fail", str(exc)))

    async with get_client() as client:
        checks.append(await _llm_limit(client, settings))
        st = await status(client)
        try:
            deployment = await client.read_deployment_by_name(SUMMARIZER_DEPLOYMENT)
        except ObjectNotFound:
            deployment = None
        batch = await _batch(client)
        followups = await _followups(client)
    if st.ok:
        checks.append(Check("Automation", "ok", f"installed, runs {st.deployment_name}"))
    else:
        checks.append(Check("Automation", "fail", str(st.problem)))
    if deployment is None:
        checks.append(Check("Summarizer", "fail",
                            f"no deployment {SUMMARIZER_DEPLOYMENT}: run `failure-insights serve` or `prefect deploy`."))
    elif not _served(deployment):
        checks.append(Check("Summarizer", "warn",
                            f"{SUMMARIZER_DEPLOYMENT} exists but no runner or worker is polling it: "
                            "summaries will wait as Late runs until one does."))
    else:
        checks.append(Check("Summarizer", "ok", f"{SUMMARIZER_DEPLOYMENT} is being served"))
    checks.append(batch)
    checks += followups
    return checks


async def _followups(client) -> list[Check]:
    """The automations that act on summaries: notifications (any number) and retries (opt-in)."""
    from prefect_failure_insights.automations import notify, retry

    out = []
    notifications = await notify.status(client)
    if not notifications:
        out.append(Check("Notifications", "warn", "no summary reaches a notification: "
                         "`failure-insights notify install --block SLUG/NAME` (Slack, Teams, e-mail, ...)."))
    for st in notifications:
        out.append(Check("Notifications", "fail" if st.problem else "ok",
                         f"{st.block}: {st.problem}" if st.problem else f"{st.block}: {st.scope}"))
    retries = await retry.status(client)
    if retries.problem:
        out.append(Check("Retries", "fail", str(retries.problem)))
    else:
        out.append(Check("Retries", "ok", retries.detail))
    return out


async def _batch(client) -> Check:
    try:
        deployment = await client.read_deployment_by_name(BATCH_DEPLOYMENT)
    except ObjectNotFound:
        return Check("Batch insights", "warn", f"no deployment {BATCH_DEPLOYMENT}: `failure-insights serve` "
                     "serves it, or `prefect deploy --all` from prefect.yaml.")
    crons = [s.schedule.cron for s in deployment.schedules or [] if s.active and getattr(s.schedule, "cron", None)]
    if not crons or deployment.paused:
        return Check("Batch insights", "warn", f"{BATCH_DEPLOYMENT} has no active schedule: it runs only when "
                     "started (`failure-insights batch run` or the UI).")
    if not _served(deployment):
        return Check("Batch insights", "warn", f"{BATCH_DEPLOYMENT} is scheduled but nothing is polling it: "
                     "its runs will wait as Late runs.")
    return Check("Batch insights", "ok", f"{BATCH_DEPLOYMENT} scheduled ({', '.join(crons)}) and served")
