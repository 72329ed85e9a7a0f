"""Baseline for the latency benchmark: the summarizer served by Prefect's own Runner
(one new Python process per flow run), polling every second, same deployment name."""

from __future__ import annotations

import asyncio

from prefect.runner import Runner
from prefect_failure_insights.flows.on_failure_summary import summarize_failure

from prefect_failure_insights.defaults import SUMMARIZER_DEPLOYMENT_NAME


async def main() -> None:
    runner = Runner(name="bench-baseline", query_seconds=1, limit=10, pause_on_shutdown=False)
    await runner.aadd_flow(summarize_failure, name=SUMMARIZER_DEPLOYMENT_NAME)
    print("Serving summaries (Prefect Runner)", flush=True)
    await runner.start()


if __name__ == "__main__":
    asyncio.run(main())
