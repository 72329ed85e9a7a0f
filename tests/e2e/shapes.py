"""The failure shapes Prefect produces, as flows run in their own process against the test server.

Usage: python shapes.py SHAPE  -> runs it, prints FLOW_RUN_ID=<id>
       python shapes.py serve  -> serves the child deployment "e2e-shapes-child/e2e" (run_deployment)

Each shape's root error carries a phrase (`ROOT`) that its final card must show. Read from
Prefect's engines: a flow's `timeout_seconds` and any `TimeoutError` a task raises end in a
Failed-type state named `TimedOut`; a flow may return its own `Failed(name=...)`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

from prefect import flow, task
from prefect.logging import get_run_logger
from prefect.states import Failed

CHILD_DEPLOYMENT = "e2e-shapes-child/e2e"

#: The phrase of each shape's root error that its final card must show.
ROOT = {
    "flow-timeout": "timeout",
    "task-timeout": "warehouse query exceeded",
    "named-failed": "12 rows without order_id",
    "mapped": "negative quantity",
    "exception-group": "carrier api refused",
    "hook-logs-after": "ledger balance mismatch",
    "subflow": "17 null values",
    "child-deployment": "sftp login rejected",
    "async": "customer_id",
    "sigterm": "termination signal",
    "shell-tool": "analytics.orders",
    "late-error": "checksum mismatch",
}


@flow(name="e2e-shape-flow-timeout", timeout_seconds=1)
def flow_timeout() -> None:
    get_run_logger().info("Waiting for the upstream export")
    time.sleep(8)


@task(retries=1, retry_delay_seconds=0)
def query_warehouse() -> None:
    get_run_logger().info("SELECT count(*) FROM orders")
    raise TimeoutError("warehouse query exceeded 30 s")


@flow(name="e2e-shape-task-timeout")
def task_timeout() -> None:
    query_warehouse()


@flow(name="e2e-shape-named-failed")
def named_failed():
    get_run_logger().info("Checking the orders contract")
    return Failed(name="ContractViolated", message="orders contract: 12 rows without order_id")


@task
def check_row(i: int) -> int:
    if i == 13:
        raise ValueError(f"row {i} has negative quantity -4")
    return i


@flow(name="e2e-shape-mapped")
def mapped() -> None:
    futures = check_row.map(range(20))
    futures.wait()
    [f.result() for f in futures]


@task
async def load(target: str) -> None:
    if target == "carrier":
        raise ConnectionError("carrier api refused connection on port 443")
    raise ValueError(f"{target}: schema drift")


@flow(name="e2e-shape-exception-group")
async def exception_group() -> None:
    results = await asyncio.gather(load("carrier"), load("ledger"), return_exceptions=True)
    raise ExceptionGroup("loads failed", [r for r in results if isinstance(r, Exception)])


def page_on_call(flow, flow_run, state) -> None:  # noqa: ARG001 - Prefect's hook signature
    get_run_logger().warning("on_failure hook: paging the on-call engineer")


@flow(name="e2e-shape-hook", on_failure=[page_on_call])
def hook_logs_after() -> None:
    raise RuntimeError("ledger balance mismatch by 42.17")


@task
def validate_rows() -> None:
    raise ValueError("column 'amount' has 17 null values in rows 3..19")


@flow(name="e2e-shape-subflow-child")
def subflow_child() -> None:
    validate_rows()


@flow(name="e2e-shape-subflow")
def subflow() -> None:
    subflow_child()


@flow(name="e2e-shapes-child")
def child() -> None:
    get_run_logger().info("Connecting to sftp.partner.example:22")
    raise RuntimeError("partner sftp login rejected for user etl")


@flow(name="e2e-shape-child-deployment")
def child_deployment() -> None:
    from prefect.deployments import run_deployment

    run = run_deployment(CHILD_DEPLOYMENT, timeout=120)
    if not run.state.is_completed():
        raise RuntimeError(f"child run {run.name} ended {run.state.name}")


@task
async def enrich(rows: list[dict]) -> list[dict]:
    return [{**r, "segment": r["customer_id"]} for r in rows]


@flow(name="e2e-shape-async")
async def async_flow() -> None:
    await enrich([{"cust_id": 1}])


@flow(name="e2e-shape-sigterm")
def sigterm() -> None:
    from prefect import runtime

    print(f"FLOW_RUN_ID={runtime.flow_run.id}", flush=True)  # the process will not return
    get_run_logger().info("Working on a large batch")
    os.kill(os.getpid(), signal.SIGTERM)


DBT_LIKE = """\
Running with dbt=1.8.4
Found 12 models, 4 tests, 0 snapshots
Concurrency: 4 threads (target='prod')
1 of 12 START sql table model analytics.orders ........ [RUN]
1 of 12 ERROR creating sql table model analytics.orders  [ERROR in 0.21s]
Database Error in model orders (models/orders.sql)
  relation "raw.orders_v2" does not exist
  LINE 4: from raw.orders_v2
Done. PASS=0 WARN=0 ERROR=1 SKIP=11 TOTAL=12"""


@task
def dbt_run() -> None:
    """A shell task as prefect-shell runs one: the tool's output streamed to the log at INFO."""
    logger = get_run_logger()
    proc = subprocess.Popen(["sh", "-c", f"cat <<'EOF'\n{DBT_LIKE}\nEOF\nexit 1"], stdout=subprocess.PIPE, text=True)
    for line in proc.stdout:
        logger.info(line.rstrip())
    if proc.wait():
        raise RuntimeError(f"Command failed with exit code {proc.returncode}")


@flow(name="e2e-shape-shell-tool")
def shell_tool() -> None:
    dbt_run()


@flow(name="e2e-shape-late-error")
def late_error(lines: int = 20_000) -> None:
    logger = get_run_logger()
    for i in range(lines):
        logger.info("processed record batch %d of %d", i, lines)
    raise ValueError("checksum mismatch in batch 19999")


SHAPES = {"flow-timeout": flow_timeout, "task-timeout": task_timeout, "named-failed": named_failed,
          "mapped": mapped, "exception-group": exception_group, "hook-logs-after": hook_logs_after,
          "subflow": subflow, "child-deployment": child_deployment, "async": async_flow, "sigterm": sigterm,
          "shell-tool": shell_tool, "late-error": late_error}

if __name__ == "__main__":
    if sys.argv[1] == "serve":
        child.serve(name="e2e", print_starting_message=True)
        sys.exit(0)
    state = SHAPES[sys.argv[1]](return_state=True)
    if asyncio.iscoroutine(state):
        state = asyncio.run(state)
    print(f"FLOW_RUN_ID={state.state_details.flow_run_id}", flush=True)
