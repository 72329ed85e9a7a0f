"""Seed a Prefect server with failed and crashed runs, fast, through the API (tests, benchmarks).

Running real failing flows costs seconds each; a batch test or a 1,000-failure benchmark
needs many. These runs are real server objects (flow, deployment in a work pool, tags,
a failed task run with its state message, ERROR logs with a traceback), made with a
handful of API calls each, exactly as the batch reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timezone
from uuid import UUID

from prefect import task as prefect_task
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import LogCreate, WorkPoolCreate
from prefect.exceptions import ObjectAlreadyExists
from prefect.states import Crashed, Failed, Running


@dataclass(frozen=True)
class Scenario:
    """A kind of failure: where it happens and what it says."""

    flow: str
    task: str | None  # None: the run fails outside any task (a crash)
    exception: str
    message: str
    work_pool: str = "pool-a"
    tags: tuple[str, ...] = ("team-data",)
    crashed: bool = False


SCENARIOS: dict[str, Scenario] = {
    "vendor-503": Scenario("orders-sync", "call_vendor", "httpx.HTTPStatusError",
                           "Server error '503 Service Unavailable' for url 'https://api.vendor.example/v2/orders?page={i}'",
                           "pool-a", ("team-data", "vendor")),
    "null-amount": Scenario("orders-load", "validate_rows", "pandera.errors.SchemaError",
                            "column 'amount' has {i} null values; nullable=False", "pool-a", ("team-data",)),
    "missing-module": Scenario("reports-build", "render_report", "ModuleNotFoundError",
                               "No module named 'openpyxl'", "pool-b", ("team-bi",)),
    "odd": Scenario("ledger-close", "reconcile", "ledger.ReconcileError",
                    "reconciliation drift of {i} entries between ledger shards", "pool-b", ("team-finance",)),
    "crash": Scenario("nightly-train", None, "", "Crash detected! Execution was interrupted by an unexpected "
                      "exception: SIGTERM received", "pool-b", ("team-ml",), crashed=True),
}


async def _deployment(client: PrefectClient, scenario: Scenario, cache: dict) -> UUID:
    key = (scenario.flow, scenario.work_pool)
    if key not in cache:
        try:
            await client.create_work_pool(WorkPoolCreate(name=scenario.work_pool, type="process"))
        except ObjectAlreadyExists:
            pass
        flow_id = await client.create_flow_from_name(scenario.flow)
        cache[key] = await client.create_deployment(flow_id=flow_id, name=f"{scenario.flow}-prod",
                                                    work_pool_name=scenario.work_pool,
                                                    entrypoint="seeded.py:flow")
    return cache[key]


@prefect_task(name="seeded")
def _placeholder() -> None:  # pragma: no cover - never run; names the seeded task runs
    return None


async def seed_failure(client: PrefectClient, name: str, i: int = 0, cache: dict | None = None,
                       extra_tags: tuple[str, ...] = (), flow: str | None = None,
                       work_pool: str | None = None) -> str:
    """One failed (or crashed) run of scenario ``name`` (of flow ``flow`` instead of the
    scenario's: another flow, another failure to the fingerprint cache; in work pool
    ``work_pool`` instead of the scenario's); returns its id."""
    scenario = SCENARIOS[name]
    if flow is not None:
        scenario = replace(scenario, flow=flow)
    if work_pool is not None:
        scenario = replace(scenario, work_pool=work_pool)
    cache = cache if cache is not None else {}
    deployment_id = await _deployment(client, scenario, cache)
    run = await client.create_flow_run_from_deployment(deployment_id, tags=[*scenario.tags, *extra_tags],
                                                       name=f"{name}-{i}")
    await client.set_flow_run_state(run.id, Running(), force=True)
    message = scenario.message.format(i=i)
    logs = []
    now = datetime.now(timezone.utc)
    if scenario.task:
        short = scenario.exception.rsplit(".", 1)[-1]
        task_run = await client.create_task_run(_placeholder.with_options(name=scenario.task), run.id,
                                                dynamic_key=str(i), name=f"{scenario.task}-{i:03x}"[-len(scenario.task) - 4:])
        await client.set_task_run_state(task_run.id, Running(), force=True)
        await client.set_task_run_state(
            task_run.id, Failed(message=f"Task run encountered an exception {short}: {message}"), force=True)
        traceback = (f"Task run '{scenario.task}' - Encountered exception during execution:\n"
                     "Traceback (most recent call last):\n"
                     f"  File \"/app/pipelines/{scenario.flow}.py\", line 42, in {scenario.task}\n"
                     "    result = step()\n"
                     f"{scenario.exception}: {message}")
        logs.append(LogCreate(name="prefect.task_runs", level=40, message=traceback, timestamp=now,
                              flow_run_id=run.id, task_run_id=task_run.id))
        state = Failed(message=f"Flow run encountered an exception. {short}: {message}")
    else:
        logs.append(LogCreate(name="prefect.flow_runs", level=40, message=message, timestamp=now, flow_run_id=run.id))
        state = Crashed(message=message)
    # The record Prefect's flow engine writes last, which tells a reader the run's logs are complete.
    logs.append(LogCreate(name="prefect.flow_runs", level=40, message=f"Finished in state {state.type.value.title()}"
                          f"({state.message!r})", timestamp=now, flow_run_id=run.id))
    await client.create_logs(logs)
    await client.set_flow_run_state(run.id, state, force=True)
    return str(run.id)


async def seed_failures(client: PrefectClient, specs: list[tuple[str, int, str | None]], concurrency: int = 2,
                        cache: dict | None = None) -> list[str]:
    """Seed many failures, ``(scenario, i, flow)`` each, at most ``concurrency`` at once; their ids
    in order. A server that keeps its state in SQLite answers some writes with 503 ("database is
    locked") under load: such a seed is tried again (a half-made run stays Running, not Failed)."""
    import anyio
    from prefect.exceptions import PrefectHTTPStatusError

    cache = cache if cache is not None else {}
    gate = anyio.Semaphore(concurrency)
    ids: list[str | None] = [None] * len(specs)

    async def one(at: int) -> None:
        name, i, flow = specs[at]
        async with gate:
            for attempt in range(5):
                try:
                    ids[at] = await seed_failure(client, name, i, cache, flow=flow)
                    return
                except PrefectHTTPStatusError as exc:
                    if exc.response.status_code != 503 or attempt == 4:
                        raise
                    await anyio.sleep(1 + attempt)

    firsts = {}
    for at, (name, _, flow) in enumerate(specs):  # one per deployment first: each is created once
        firsts.setdefault((name, flow), at)
    for at in firsts.values():
        await one(at)
    async with anyio.create_task_group() as group:
        for at in range(len(specs)):
            if ids[at] is None:
                group.start_soon(one, at)
    return [i for i in ids if i is not None]
