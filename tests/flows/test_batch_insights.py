"""The batch flow's wiring: what its tasks receive."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone

from prefect.utilities.annotations import quote

import prefect_failure_insights.flows.batch_insights as module
from prefect_failure_insights.models import BatchMetrics, Filters, WindowFailures, resolve_window

ROWS_TASKS = ("classify_errors", "group_similar", "render_report", "save_batch", "publish_report")


def test_a_windows_rows_reach_the_tasks_quoted(monkeypatch) -> None:
    """Issue 28: Prefect walks every argument of a task call, element by element (`visit_collection`),
    unless it is quoted: over the rows of a 10,000-run window, five calls took ~28 s of an 84 s batch.
    Every collection the flow hands its tasks is quoted; the tasks receive it unwrapped."""
    end = datetime(2026, 12, 5, tzinfo=timezone.utc)
    window = resolve_window(1, end - timedelta(hours=1), end, filters=Filters())
    received: dict[str, list] = {}

    def fake(name: str, result=None):  # noqa: ANN001, ANN202
        async def call(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            received[name] = [*args, *kwargs.values()]
            return result
        return call

    @asynccontextmanager
    async def database():  # noqa: ANN202
        yield "database"

    async def load_database(_settings):  # noqa: ANN001, ANN202
        return database()

    fakes = {"resolve_window": window, "load_settings": "settings", "read_failures": WindowFailures(errors=[]),
             "load_batch_errors": [], "classify_errors": ([], BatchMetrics()), "group_similar": [],
             "render_report": "# Report", "save_batch": None, "publish_report": "artifact-id"}
    for name, result in fakes.items():
        monkeypatch.setattr(module, name, fake(name, result))
    monkeypatch.setattr(module, "load_database", load_database)
    monkeypatch.setattr(module, "get_run_logger", lambda: logging.getLogger("test"))

    result = asyncio.run(module.batch_insights.fn(since=window.start, until=window.end, use_llm=False))

    assert result.artifact_id == "artifact-id"
    for name in ROWS_TASKS:
        assert any(isinstance(a, quote) for a in received[name]), (name, received[name])
        unquoted = [a for a in received[name]  # (a quote is a tuple)
                    if not isinstance(a, quote) and isinstance(a, (list, tuple, dict, WindowFailures))]
        assert not unquoted, (name, unquoted)
