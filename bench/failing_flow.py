"""A flow that logs N lines and then fails, run as an ordinary process (bench/first_answer.py --processes).

Usage: python bench/failing_flow.py LINES NAME  -> prints FLOW_RUN_ID=<id>
"""

from __future__ import annotations

import sys

from prefect import flow, task
from prefect.logging import get_run_logger


@task
def extract_orders(lines: int) -> None:
    logger = get_run_logger()
    for i in range(lines):
        logger.info("Processed batch %d of %d (%d rows)", i, lines, (i * 37) % 900)
    raise RuntimeError("503 Server Error: Service Unavailable for url: https://api.vendor.example/v2/orders")


@flow
def failing(lines: int) -> None:
    extract_orders(lines)


if __name__ == "__main__":
    lines, name = int(sys.argv[1]), sys.argv[2]
    state = failing.with_options(name=name)(lines, return_state=True)
    print(f"FLOW_RUN_ID={state.state_details.flow_run_id}", flush=True)
