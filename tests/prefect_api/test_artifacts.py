"""The batch report's artifacts: every cell of the errors table redacted, in memory that the table's size bounds."""

from __future__ import annotations

import asyncio
import json
import tracemalloc
from types import SimpleNamespace
from uuid import uuid4

from prefect_failure_insights.prefect_api.artifacts import publish_report


class _Client:
    def __init__(self) -> None:
        self.created: list = []

    async def create_artifact(self, artifact):  # noqa: ANN001, ANN201
        self.created.append(artifact)
        return SimpleNamespace(id=uuid4())


def test_the_errors_table_is_redacted_cell_by_cell_in_bounded_memory() -> None:
    """Issue 28: the table of 10,000 errors was redacted as one JSON text, whose escapes made the
    redactor keep a position per character: 290 MB more at the batch's peak (~900 MB for 50,000)."""
    row = {"Flow": "orders-sync", "Error": "Task run 'call_vendor' failed:\nhttpx.HTTPStatusError: Server error "
           "'503 Service Unavailable' for url 'https://api.vendor.example/v2/orders?page=7'", "Confidence": 0.9}
    table = [dict(row) for _ in range(5000)]
    table[3] = {**row, "Error": "connect to postgresql://etl:hunter2pass@db:5432/x failed\n\u202eoops"}
    client = _Client()
    tracemalloc.start()
    try:
        asyncio.run(publish_report(client, None, "# Report", table=table, title="Batch"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    data = client.created[1].data
    assert peak < 10 * len(data), f"{peak / 1e6:.0f} MB at the peak for a {len(data) / 1e6:.1f} MB table"
    cells = json.loads(data)
    assert len(cells) == 5000 and cells[0] == row
    assert "hunter2pass" not in data and "[REDACTED:url_password]" in cells[3]["Error"]
    assert "\u202e" not in cells[3]["Error"]  # inert, as every redacted text (in JSON it was an escape, kept)
