"""Named, ordered migrations: a new database gets every one, an older one the ones it lacks,
and a row written before an upgrade still reads back."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import inspect, select, text, update

from prefect_failure_insights.models import (
    BatchRecord,
    ClassifiedError,
    Correction,
    Summary,
)
from prefect_failure_insights.store import migrations
from prefect_failure_insights.store.mapping import field_paths, mapped
from prefect_failure_insights.store.summaries import get_summary
from prefect_failure_insights.store.tables import (
    batch_errors,
    batch_runs,
    corrections,
    summaries,
)


def _apply(engine, count: int) -> None:
    """The database an older plugin left: its first ``count`` migrations, that version."""
    with engine.begin() as conn:
        migrations.schema_table.create(conn)
        conn.execute(migrations.schema_table.insert().values(id=1, version=count, updated_at=datetime.now(timezone.utc)))
        executor = migrations._Executor(conn)
        for step in migrations.MIGRATIONS[:count]:
            step(executor)


def test_a_new_database_gets_every_migration(connector) -> None:
    engine = connector.get_engine()
    migrations.ensure_schema(engine)
    assert migrations.schema_version(engine) == migrations.SCHEMA_VERSION == len(migrations.MIGRATIONS)
    tables = set(inspect(engine).get_table_names())
    assert {t.name for t in (summaries, batch_errors, batch_runs, corrections)} <= tables
    present = {c["name"] for c in inspect(engine).get_columns("failure_summaries")}
    assert {c.name for c in summaries.columns} == present


@pytest.mark.parametrize("version", [1, 3])
def test_an_older_database_is_upgraded_and_its_rows_still_read(connector, version: int) -> None:
    """A v1 database (summaries only) and a v3 one (before the complete run facts) are upgraded in place."""
    engine = connector.get_engine()
    _apply(engine, version)
    now = datetime.now(timezone.utc)
    with engine.begin() as conn:  # a row as the plugin of that version wrote it
        conn.execute(text(
            "INSERT INTO failure_summaries (flow_run_id, flow_run_name, flow_name, tags, state, status, category, "
            "title, analysis, evidence, regenerated_count, created_at, updated_at) VALUES ('r1', 'old-run', 'etl', "
            "'[\"prod\"]', 'Failed', 'fallback', 'UNKNOWN', 't', :analysis, 'L1 boom', 0, :now, :now)"),
            {"now": now, "analysis": '{"title": "t", "what_happened": "w", "how_to_fix": ["f"], "root_cause": "r", '
                                     '"category": "UNKNOWN", "confidence": 0.1}'})
    migrations.ensure_schema(engine)
    assert migrations.schema_version(engine) == migrations.SCHEMA_VERSION
    old = get_summary(engine, "r1")
    assert old.run.name == "old-run" and old.run.tags == ["prod"] and old.evidence.text == "L1 boom"
    assert old.run.run_count == 1 and old.recurrence.cache_hit is False  # columns it lacked: the defaults
    migrations.ensure_schema(engine)  # idempotent


def test_a_database_of_a_newer_plugin_is_refused(engine) -> None:
    with engine.begin() as conn:
        conn.execute(update(migrations.schema_table).values(version=migrations.SCHEMA_VERSION + 1))
    with pytest.raises(migrations.SchemaVersionError, match="upgrade prefect-failure-insights"):
        migrations.ensure_schema(engine)
    with engine.connect() as conn:
        assert conn.execute(select(migrations.schema_table.c.version)).scalar() == migrations.SCHEMA_VERSION + 1


@pytest.mark.parametrize("table,model", [(summaries, Summary), (batch_errors, ClassifiedError),
                                         (corrections, Correction), (batch_runs, BatchRecord)])
def test_every_field_of_the_model_has_a_column(table, model) -> None:
    """Adding a field to a model without a column (a migration) would lose it on the way to the row."""
    columns = [path for _, info in mapped(table) for path in info["field"] if not info["copy"]]
    missing = [p for p in sorted(field_paths(model))
               if not any(p == c or p.startswith(c + ".") for c in columns)]
    assert not missing, f"{table.name} has no column for {missing}"
