"""The demo's example pipeline: a nightly orders sync whose vendor API is down.

It fails the way real pipelines do: the extract task calls the vendor, gets HTTP
503, is retried, fails for good; the load task never runs; the flow ends Failed.
It also logs a database URL with a password, which must never reach a summary.

Run: ``python -m prefect_failure_insights.demo.pipeline VENDOR_URL``; or serve it as the
deployment ``nightly-orders-sync/demo`` (what a retry needs: a runner to pick the run up again):
``python -m prefect_failure_insights.demo.pipeline --serve``.
"""

from __future__ import annotations

import sys

import httpx
from prefect import flow, task
from prefect.logging import get_run_logger


@task(retries=2, retry_delay_seconds=1)
def extract_orders(vendor_url: str, page: int) -> list[dict]:
    logger = get_run_logger()
    logger.info("GET %s/v2/orders?page=%d", vendor_url, page)
    response = httpx.get(f"{vendor_url}/v2/orders", params={"page": page}, timeout=10)
    response.raise_for_status()
    return response.json()["orders"]


@task
def load_orders(orders: list[dict], warehouse_url: str) -> int:
    get_run_logger().info("Loading %d orders", len(orders))
    return len(orders)


@flow(name="nightly-orders-sync", log_prints=True)
def nightly_orders_sync(vendor_url: str, pages: int = 3) -> int:
    logger = get_run_logger()
    warehouse_url = "postgresql://etl:demo-Pa55word@warehouse.internal:5432/analytics"
    logger.info("Syncing %d pages of orders into %s", pages, warehouse_url)
    for page in range(1, pages + 1):
        logger.info("Page %d: starting", page)
    orders = extract_orders(vendor_url, 1)
    return load_orders(orders, warehouse_url)


DEPLOYMENT_NAME = "demo"
DEPLOYMENT = f"nightly-orders-sync/{DEPLOYMENT_NAME}"

if __name__ == "__main__":
    if sys.argv[1] == "--serve":
        nightly_orders_sync.serve(name=DEPLOYMENT_NAME, limit=2, print_starting_message=False)
        sys.exit(0)
    state = nightly_orders_sync(sys.argv[1], return_state=True)
    print(f"FLOW_RUN_ID={state.state_details.flow_run_id}", flush=True)
    sys.exit(0 if state.is_completed() else 1)
