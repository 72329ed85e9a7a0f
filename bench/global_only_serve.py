"""Baseline for the fault benchmark's storm: `failure-insights serve` exactly, but without the
process's own LLM slots in front of the Prefect global concurrency limit (the previous
release's slot handling): every summary of the process polls the server for a slot."""

from __future__ import annotations

import asyncio

from prefect_failure_insights.serve import service


async def main() -> None:
    await service.serve_plugin(poll_seconds=1.0, batch_cron=None, local_slots=False)


if __name__ == "__main__":
    asyncio.run(main())
