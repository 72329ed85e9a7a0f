"""Loading the blocks a run names: settings, LLM, Airbyte and database, with defaults.

Resolution order, so that zero configuration works and every step is explicit:

* settings: the ``failure-insights-settings`` block with the given name; if the name
  is the default one and no such block exists, the defaults;
* LLM: the block named in the settings; else an ``llm-credentials`` block named
  ``default``; else the environment (``LLMCredentials.from_env``); else none;
* database: the ``sqlalchemy-connector`` block named in the settings; else a
  SQLite file ``failure_insights.db`` in the Prefect home.

A name that was given explicitly and does not exist is a `ConfigurationError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from prefect.blocks.core import Block
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound
from prefect_failure_insights.blocks.airbyte import AirbyteLogCredentials
from prefect_failure_insights.blocks.llm_credentials import LLMCredentials
from prefect_failure_insights.blocks.settings import FailureInsightsSettings

from prefect_failure_insights.defaults import DEFAULT_BLOCK_NAME, SQLITE_FILENAME
from prefect_failure_insights.exceptions import ConfigurationError
from prefect_failure_insights.models import LLMEndpoint

if TYPE_CHECKING:
    from prefect_sqlalchemy import SqlAlchemyConnector

    from prefect_failure_insights.store import Database

B = TypeVar("B", bound=Block)


async def load_block(cls: type[B], name: str) -> B | None:
    """Load block ``name`` of type ``cls``, or None when no such block exists."""
    async with get_client() as client:
        try:
            document = await client.read_block_document_by_name(
                name=name, block_type_slug=cls.get_block_type_slug()
            )
        except ObjectNotFound:
            return None
    return cls._from_block_document(document)


async def _named_in_settings(cls: type[B], name: str, field: str) -> B:
    """A block the settings name explicitly: missing is a configuration error."""
    block = await load_block(cls, name)
    if block is None:
        raise ConfigurationError(
            f"The settings refer to {cls.get_block_type_slug()} block {name!r}, which does not "
            f"exist: create it or clear {field}."
        )
    return block


async def load_settings(name: str | None = DEFAULT_BLOCK_NAME) -> FailureInsightsSettings:
    """The settings block ``name``; the defaults when the default name is absent."""
    name = name or DEFAULT_BLOCK_NAME
    settings = await load_block(FailureInsightsSettings, name)
    if settings is not None:
        return settings
    if name == DEFAULT_BLOCK_NAME:
        return FailureInsightsSettings()
    raise ConfigurationError(
        f"No failure-insights-settings block named {name!r}: create it "
        f"(FailureInsightsSettings(...).save({name!r})) or leave the name empty to use the defaults."
    )


@dataclass(frozen=True)
class LLMChoice:
    """The LLM to use, or None with the reason why none is used."""

    credentials: LLMCredentials | None
    source: str


NO_LLM_HINT = (
    "No LLM configured: create an llm-credentials block named 'default' "
    "(LLMCredentials(base_url=..., model=..., api_key=...).save('default')) "
    "or set FAILURE_INSIGHTS_LLM_URL / OPENAI_API_KEY for the summarizer."
)


async def load_llm(
    settings: FailureInsightsSettings, endpoint: LLMEndpoint | None = None, model: str | None = None
) -> LLMChoice:
    """Which LLM the settings point at, with an optional other endpoint (with its own key, never
    the block's: `LLMCredentials.with_overrides`) or model.

    Raises:
        ConfigurationError: the settings name a block that does not exist.
    """
    choice = await _configured_llm(settings)
    if endpoint is None and not model:
        return choice
    base = choice.credentials or LLMCredentials.from_env() or LLMCredentials()
    url, key = (endpoint.url, endpoint.api_key) if endpoint is not None else (None, None)
    return LLMChoice(base.with_overrides(url, model, api_key=key), f"{choice.source}, overridden")


async def _configured_llm(settings: FailureInsightsSettings) -> LLMChoice:
    if settings.llm_block_name:
        block = await _named_in_settings(LLMCredentials, settings.llm_block_name, "llm_block_name")
        return LLMChoice(block, f"block llm-credentials/{settings.llm_block_name}")
    block = await load_block(LLMCredentials, DEFAULT_BLOCK_NAME)
    if block is not None:
        return LLMChoice(block, f"block llm-credentials/{DEFAULT_BLOCK_NAME}")
    env = LLMCredentials.from_env()
    if env is not None:
        return LLMChoice(env, "environment")
    return LLMChoice(None, NO_LLM_HINT)


async def load_airbyte(settings: FailureInsightsSettings) -> AirbyteLogCredentials | None:
    """The Airbyte log credentials the settings name, if any."""
    if not settings.airbyte_block_name:
        return None
    return await _named_in_settings(AirbyteLogCredentials, settings.airbyte_block_name, "airbyte_block_name")


def default_database_path() -> Path:
    """The SQLite file used when no database block is configured."""
    from prefect.settings import get_current_settings

    return Path(get_current_settings().home).expanduser() / SQLITE_FILENAME


def sqlite_connector(path: Path) -> SqlAlchemyConnector:
    """An (unsaved) `SqlAlchemyConnector` for a SQLite file."""
    from prefect_sqlalchemy import ConnectionComponents, SqlAlchemyConnector, SyncDriver

    path.parent.mkdir(parents=True, exist_ok=True)
    return SqlAlchemyConnector(
        connection_info=ConnectionComponents(driver=SyncDriver.SQLITE_PYSQLITE, database=str(path)),
        # Wait for a concurrent writer instead of failing with "database is locked".
        connect_args={"timeout": 30},
    )


async def load_database(settings: FailureInsightsSettings) -> Database:
    """The database for summary rows (its engine is created on first use)."""
    from prefect_sqlalchemy import SqlAlchemyConnector

    from prefect_failure_insights.store import Database

    if settings.database_block_name:
        block = await _named_in_settings(SqlAlchemyConnector, settings.database_block_name, "database_block_name")
        return Database(block, f"block sqlalchemy-connector/{settings.database_block_name}")
    return default_database()


def default_database() -> Database:
    """The SQLite file in the Prefect home, used when no database block is configured."""
    from prefect_failure_insights.store import Database

    path = default_database_path()
    return Database(sqlite_connector(path), f"sqlite file {path}")
