"""The tasks that load what a run is configured with: settings, database, LLM, other log
sources, the Secret block values (the blocks themselves: `blocks.loading`).

Every task in ``tasks/`` is a thin wrapper around the domain function of the same name: it
gets a Prefect client or the database, calls it, logs, and returns. Retries have one owner
per network: the Prefect client retries the API's transient errors itself
(``PREFECT_CLIENT_MAX_RETRIES``) and `llm.structured` retries the LLM's, so no task retries
on top of them. Prefect's task cache is off everywhere: every step reads live state, and the
fingerprint cache in the database is what saves LLM calls.
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.logging import get_run_logger
from prefect_failure_insights.blocks import FailureInsightsSettings, loading

from prefect_failure_insights.evidence import sources
from prefect_failure_insights.exceptions import ConfigurationError
from prefect_failure_insights.models import LLMEndpoint
from prefect_failure_insights.prefect_api import secrets
from prefect_failure_insights.redaction import Redactor
from prefect_failure_insights.store import Database


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
async def load_llm(settings: FailureInsightsSettings, endpoint: LLMEndpoint | None = None,
                   model: str | None = None) -> loading.LLMChoice:
    """The LLM to ask, or none with the reason (a block the settings name that does not exist is one)."""
    try:
        return await loading.load_llm(settings, endpoint, model)
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
