"""The one paged-read loop: every item once, in order, stopping at a short page or the limit."""

from __future__ import annotations

import asyncio

from prefect_failure_insights.prefect_api.paging import read_all


def test_pages_until_a_short_page_or_the_limit() -> None:
    items = list(range(450))
    asked: list[tuple[int, int]] = []

    async def read(offset: int, size: int) -> list[int]:
        asked.append((offset, size))
        return items[offset:offset + size]

    assert asyncio.run(read_all(read)) == items
    assert asked == [(0, 200), (200, 200), (400, 200)]
    asked.clear()
    assert asyncio.run(read_all(read, limit=300)) == items[:400]  # whole pages until the limit is reached
    assert asked == [(0, 200), (200, 200)]
    asked.clear()
    assert asyncio.run(read_all(read, page=150)) == items and len(asked) == 4  # 450 = 3 full pages + an empty one
