"""Reading a window's failed runs: newest first, and "capped" only when the window holds more than the cap."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from prefect_failure_insights.models import Filters
from prefect_failure_insights.prefect_api.failures import list_failed_runs

END = datetime(2026, 12, 5, tzinfo=timezone.utc)


class _Client:
    def __init__(self, n: int) -> None:
        self.runs = [SimpleNamespace(id=i, end_time=END - timedelta(seconds=i + 1)) for i in range(n)]

    async def read_flow_runs(self, *, limit: int, offset: int, **_):  # noqa: ANN003, ANN202
        return self.runs[offset:offset + limit]


@pytest.mark.parametrize(("n", "capped"), [(399, False), (400, False), (401, True), (1000, True)])
def test_a_window_of_exactly_max_runs_is_not_capped(n: int, capped: bool) -> None:
    """Issue 28: a window of exactly `max_runs` runs was reported capped ("the newest 400 of more")."""
    runs, was_capped = asyncio.run(list_failed_runs(_Client(n), END - timedelta(days=1), END, filters=Filters(),
                                                    max_runs=400))
    assert was_capped is capped
    assert [r.id for r in runs] == list(range(min(n, 400)))
