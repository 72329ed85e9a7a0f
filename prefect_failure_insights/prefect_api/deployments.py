"""Running the batch deployment once per partition of a window (a fan-out to other workers)."""

from __future__ import annotations

from typing import Any

import anyio

from prefect_failure_insights.defaults import BATCH_DEPLOYMENT
from prefect_failure_insights.models import BatchWindow, PartitionRun


async def run_partitions(window: BatchWindow, partition_by: str, names: list[str], *, max_parallel: int,
                         parameters: dict[str, Any]) -> list[PartitionRun]:
    """One child run of the batch deployment per partition, at most ``max_parallel`` at once.

    Each child classifies its part of ``window`` and stores its rows; a child that fails or
    cannot start is reported in its `PartitionRun`, and does not fail the others. Called in a
    flow run, the children show as its subflows.
    """
    from prefect.deployments import run_deployment

    limit = anyio.CapacityLimiter(max_parallel)
    out: dict[str, PartitionRun] = {}

    async def one(name: str) -> None:
        child = window.narrowed(**({"work_pools": [name]} if partition_by == "work_pool" else {"tags": [name]}))
        problem = None
        async with limit:
            try:
                run = await run_deployment(
                    BATCH_DEPLOYMENT, timeout=None, as_subflow=True,
                    parameters={**parameters, **child.filters.model_dump(), "since": child.start,
                                "until": child.end, "partition_by": "none", "publish": False},
                )
            except Exception as exc:  # noqa: BLE001 - one partition must not fail the others
                problem = f"{partition_by} {name}: could not start ({type(exc).__name__}: {exc})"
            else:
                if not (run.state and run.state.is_completed()):
                    problem = f"{partition_by} {name}: child run {run.id} ended {run.state.name if run.state else '?'}"
        out[name] = PartitionRun(name=name, window=child, problem=problem)

    async with anyio.create_task_group() as tg:
        for name in names:
            tg.start_soon(one, name)
    return [out[name] for name in names]
