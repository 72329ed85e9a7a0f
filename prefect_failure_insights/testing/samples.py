"""Realistic failed-run material for tests and benchmarks, without a server.

`failed_run()` builds the `FailedRun` and log lines of a flow whose task fails
the way Prefect logs it (attempt messages, a final traceback, the task's and the
flow's "Finished in state Failed", the flow re-raising), with noise around it.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from prefect_failure_insights.models import FailedRun, FlowRunInfo, LogLine, TaskRunInfo

RUN_ID = "11111111-2222-4333-8444-555555555555"
TASK_ID = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
OTHER_TASK_ID = "abababab-bbbb-4ccc-8ddd-eeeeeeeeeeee"

VENDOR_TRACEBACK = """Traceback (most recent call last):
  File "/usr/local/lib/python3.11/site-packages/prefect/task_engine.py", line 1027, in run_context
    yield self
  File "/usr/local/lib/python3.11/site-packages/prefect/task_engine.py", line 1044, in call_task_fn
    result = call_with_parameters(self.task.fn, parameters)
             ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/opt/pipelines/orders.py", line 41, in extract_orders
    response.raise_for_status()
  File "/usr/local/lib/python3.11/site-packages/httpx/_models.py", line 829, in raise_for_status
    raise HTTPStatusError(message, request=request, response=self)
httpx.HTTPStatusError: Server error '503 Service Unavailable' for url 'https://api.vendor.example/v2/orders?page=7'
For more information check: https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/503"""

ROOT_EXCEPTION = "HTTPStatusError(\"Server error '503 Service Unavailable' for url 'https://api.vendor.example/v2/orders?page=7'\")"


def _ts(base: datetime, i: int) -> str:
    return (base + timedelta(milliseconds=10 * i)).isoformat()


def failed_run(
    noise_before: int = 20,
    noise_after: int = 5,
    secrets: bool = True,
    retries: int = 1,
    flow_name: str = "nightly-orders",
) -> tuple[FailedRun, list[LogLine]]:
    """A flow whose ``extract_orders`` task fails with a vendor 503 after ``retries`` retries."""
    rnd = random.Random(7)
    base = datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)
    msgs: list[tuple[int, str, str | None]] = [
        (20, f"Beginning flow run 'brave-otter' for flow '{flow_name}'", None),
    ]
    if secrets:
        msgs.append((20, "Connecting to postgresql://etl:Sup3rS3cret!@warehouse.internal:5432/orders", None))
        msgs.append((20, "Using headers {'Authorization': 'Bearer sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789'}", TASK_ID))
    for i in range(noise_before):
        msgs.append((20, f"Fetched page {i} with {rnd.randint(100, 999)} orders in {rnd.random():.2f}s", TASK_ID))
    for attempt in range(retries):
        msgs.append((20, f"Task run failed with exception: {ROOT_EXCEPTION} - Retry {attempt + 1}/{retries} will start immediately", TASK_ID))
    msgs.append((40, f"Task run failed with exception: {ROOT_EXCEPTION} - Retries are exhausted\n{VENDOR_TRACEBACK}", TASK_ID))
    msgs.append((40, "Finished in state Failed(\"Task run encountered an exception HTTPStatusError: Server error '503 Service Unavailable'\")", TASK_ID))
    for i in range(noise_after):
        msgs.append((30, f"Upstream task run 'extract_orders-3f1' did not reach a 'COMPLETED' state {i}", OTHER_TASK_ID))
    msgs.append((40, f"Encountered exception during execution: {ROOT_EXCEPTION}\n{VENDOR_TRACEBACK}", None))
    msgs.append((20, "Finished in state Failed('Flow run encountered an exception: HTTPStatusError: Server error')", None))

    lines = [
        LogLine(
            lineno=i,
            timestamp=_ts(base, i),
            level=level,
            message=message,
            logger="prefect.task_runs" if task else "prefect.flow_runs",
            flow_run_id=RUN_ID,
            task_run_id=task,
            task_run_name={TASK_ID: "extract_orders-3f1", OTHER_TASK_ID: "load_orders-9c2"}.get(task or ""),
        )
        for i, (level, message, task) in enumerate(msgs, start=1)
    ]
    run = FlowRunInfo(
        id=RUN_ID,
        name="brave-otter",
        flow_name=flow_name,
        deployment=f"{flow_name}/prod",
        work_pool="k8s-pool",
        tags=["prod", "orders"],
        state="Failed",
        state_type="FAILED",
        state_message="Flow run encountered an exception: HTTPStatusError: Server error '503 Service Unavailable'",
        start_time=base,
        end_time=base + timedelta(seconds=30),
    )
    tasks = [
        TaskRunInfo(id=TASK_ID, name="extract_orders-3f1", state="Failed", state_type="FAILED",
                    message="Task run encountered an exception HTTPStatusError: Server error '503 Service Unavailable'",
                    run_count=retries + 1, flow_run_id=RUN_ID),
        TaskRunInfo(id=OTHER_TASK_ID, name="load_orders-9c2", state="NotReady", state_type="PENDING",
                    flow_run_id=RUN_ID),
    ]
    return FailedRun(run=run, task_runs=tasks), lines
