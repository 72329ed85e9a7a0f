"""Shared fixtures. Tests never read ../shared and never reach the network.

Environment variables that would point the plugin at a real LLM or Prefect API are
removed for every test, so a developer's OPENAI_API_KEY can never be used (or billed).
"""

from __future__ import annotations

import os

import pytest

from prefect_failure_insights.testing.fake_llm import FakeLLM

LEAKY_ENV = (
    "OPENAI_API_KEY", "OPENAI_BASE_URL", "FAILURE_INSIGHTS_LLM_URL", "FAILURE_INSIGHTS_LLM_API_KEY",
    "FAILURE_INSIGHTS_LLM_MODEL", "PREFECT_API_KEY",
)

# The live tier (`make test-live`, tests/live) may use a real OpenAI key on purpose: it is
# kept here, out of the environment, and only tests marked `live` ever read it.
LIVE_OPENAI_API_KEY = os.environ.get("OPENAI_API_KEY")

for name in LEAKY_ENV:  # before any test module imports prefect settings
    os.environ.pop(name, None)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--live", action="store_true", help="Run the live tier against real models (make test-live).")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `live` run only with --live, whatever -m says (`make test` never runs them)."""
    if config.getoption("--live"):
        return
    skip = pytest.mark.skip(reason="live tier: run `make test-live`")
    for item in items:
        if "live" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def live_openai_api_key() -> str | None:
    """OPENAI_API_KEY as it was before the tests removed it (for tests marked `live` only)."""
    return LIVE_OPENAI_API_KEY


@pytest.fixture(autouse=True)
def _no_leaky_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in LEAKY_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def fake_llm_server():
    with FakeLLM() as fake:
        yield fake


@pytest.fixture
def fake_llm(fake_llm_server: FakeLLM) -> FakeLLM:
    """The session's fake LLM, reset to answer correctly."""
    fake_llm_server.reset()
    fake_llm_server.slow_seconds = 5.0
    return fake_llm_server


POSTGRES_URL = os.environ.get("FI_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture
def postgres_schema():
    """A fresh schema in the local PostgreSQL, dropped afterwards.

    Skipped when PostgreSQL is not reachable, unless FI_REQUIRE_POSTGRES=1 (as in CI),
    where it fails instead: a CI run must not silently skip the PostgreSQL tests.
    """
    from uuid import uuid4

    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    engine = create_engine(POSTGRES_URL)
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        engine.dispose()
        message = f"PostgreSQL at {POSTGRES_URL} is not reachable: {exc.orig}"
        if os.environ.get("FI_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    schema = f"fi_test_{uuid4().hex[:10]}"
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield schema
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def _postgres_connector(schema: str):
    """An unsaved SqlAlchemyConnector for the test schema (search_path set per connection)."""
    from prefect_sqlalchemy import ConnectionComponents, SqlAlchemyConnector
    from sqlalchemy.engine import make_url

    url = make_url(POSTGRES_URL)
    return SqlAlchemyConnector(
        connection_info=ConnectionComponents(
            driver=url.drivername, username=url.username, host=url.host, port=url.port,
            database=url.database, query={"options": f"-csearch_path={schema}"},
        )
    )


@pytest.fixture
def make_postgres_connector():
    """Build a connector for a `postgres_schema` (for saving as a block in end-to-end tests)."""
    return _postgres_connector


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def connector(request, tmp_path):
    """A prefect-sqlalchemy connector for a real SQLite file, and for a real PostgreSQL."""
    from prefect_failure_insights.blocks.loading import sqlite_connector

    if request.param == "sqlite":
        conn = sqlite_connector(tmp_path / "summaries.db")
    else:
        conn = _postgres_connector(request.getfixturevalue("postgres_schema"))
    yield conn
    conn.close()


@pytest.fixture
def database(connector):
    """A `Database` on the `connector` (SQLite and PostgreSQL), its schema migrated."""
    from prefect_failure_insights.store import Database

    db = Database(connector, f"test {connector.connection_info.driver}")
    db.call(lambda engine: None)
    return db


@pytest.fixture
def engine(database):
    """The `database`'s engine, for the store's functions."""
    return database.engine


@pytest.fixture
def make_row():
    """Build a batch row (`ClassifiedError`) of error ``i``: ``make_row(i, text, exception_type, **changes)``,
    where ``changes`` sets fields of the error's run (``flow_name``, ``tags``) or of the classification."""
    from prefect_failure_insights.analysis.fingerprint import (
        error_signature,
        fingerprint,
    )
    from prefect_failure_insights.models import (
        Classification,
        ClassifiedError,
        FailureError,
        FlowRunInfo,
    )

    def make(i: int, text: str, exception_type: str | None = None, **changes) -> ClassifiedError:
        run_changes = {k: changes.pop(k) for k in list(changes) if k in FlowRunInfo.model_fields}
        run = FlowRunInfo(id=f"00000000-0000-4000-8000-{i:012d}", name=f"run-{i}", flow_name="ledger-close",
                          work_pool="pool-b", tags=["a", "b"], state="Failed").model_copy(update=run_changes)
        sig = error_signature(text, exception_type)
        return ClassifiedError(
            error=FailureError(error_id=f"r{i}:t", run=run, failed_task="reconcile-1a2",
                               exception_type=exception_type, error_text=text),
            classification=Classification(id=f"r{i}:t", category="UNKNOWN", confidence=0.0, classified_by="none",
                                          reasoning="x", signature=sig, fingerprint=fingerprint(sig)
                                          ).model_copy(update=changes),
        )

    return make
