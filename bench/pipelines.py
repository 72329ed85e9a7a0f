"""Failing pipelines for the benchmarks: N failures of ~LINES log lines each, one at a time.

Usage: python bench/pipelines.py N LINES PAUSE_S  -> prints RUN <id> per failure
"""

from __future__ import annotations

import sys
import time

from prefect import flow, task
from prefect.logging import get_run_logger


@task
def extract(lines: int) -> None:
    logger = get_run_logger()
    for i in range(lines):
        logger.info("processed batch %d: %d rows, 0 rejected", i, 1000 + i)
    raise ConnectionError("vendor API at https://api.vendor.example refused the connection")


@flow(name="bench-failing-pipeline")
def failing_pipeline(lines: int) -> None:
    extract(lines)


if __name__ == "__main__":
    n, lines, pause = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    for _ in range(n):
        state = failing_pipeline(lines, return_state=True)
        print(f"RUN {state.state_details.flow_run_id}", flush=True)
        time.sleep(pause)
