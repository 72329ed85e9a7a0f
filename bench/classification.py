"""Benchmark: classification quality and speed of the rules, and a 1,000-failure batch window.

1. Quality, rules only (no LLM), on labelled error texts: precision on the rows the
   rules label (not UNKNOWN), UNKNOWN rate, accuracy; against two baselines in the same
   run: "majority class" (everything WORKFLOW_ENGINE) and "exception type only" (the
   rules, matching exception type names but no text).
   Sets: tests/fixtures/labelled_errors.jsonl (ours), and ../shared/data/dev-failures.jsonl
   when it exists (66 real texts from public issue threads).
2. Speed: errors classified per second by the rules, one by one, and by the batch
   `Classifier` (identical signatures once) on 20,000 errors with varying numbers.
3. A window of N failed runs (1,000 by default) seeded into a fresh local Prefect server,
   classified end to end by the `batch-insights` flow without the LLM; against the
   baseline of reading each run the way a summary does (run, task runs, all its logs,
   one run after another).

Usage: python bench/classification.py [N]
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: FI_BENCH_DEV_SET: another path for the real labelled texts, or empty for none (the smoke test).
DEV_SET = os.environ.get("FI_BENCH_DEV_SET", str(ROOT.parent / "shared/data/dev-failures.jsonl"))
SETS = {"ours (tests/fixtures)": ROOT / "tests/fixtures/labelled_errors.jsonl"}
if DEV_SET:
    SETS["dev (../shared, real)"] = Path(DEV_SET)


def quality() -> None:
    from prefect_failure_insights.analysis.evaluation import evaluate
    from prefect_failure_insights.analysis.rules import RULES, classify

    type_only = tuple(r for r in RULES if r.exception_types)

    def by_type(text: str, exc: str | None):
        for rule in type_only:
            if rule.matches_type(exc):
                return str(rule.category.value), f"rule:{rule.name}"
        return "UNKNOWN", "none"

    print("== Quality, rules only ==")
    print(f"{'set':<24} {'method':<22} {'rows':>5} {'precision*':>10} {'UNKNOWN':>8} {'accuracy':>9}")
    for name, path in SETS.items():
        if not path.exists():
            continue
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        labels = [r["label"] for r in rows]
        methods = {}
        ours = [classify(r["error_text"], r.get("exception_type")) for r in rows]
        methods["rules (ours)"] = ([getattr(m.category, "value", m.category) if m.rule else "UNKNOWN" for m in ours],
                                   [m.classified_by for m in ours])
        typed = [by_type(r["error_text"], r.get("exception_type")) for r in rows]
        methods["exception type only"] = ([t[0] for t in typed], [t[1] for t in typed])
        methods["majority class"] = (["WORKFLOW_ENGINE"] * len(rows), ["rule:majority"] * len(rows))
        for method, (pred, by) in methods.items():
            e = evaluate(labels, pred, by)
            print(f"{name:<24} {method:<22} {e['rows']:>5} {100 * (e['answered_precision'] or 0):>9.1f}% "
                  f"{100 * e['unknown_rate']:>7.1f}% {100 * e['accuracy']:>8.1f}%")
    print("* precision on the rows the method labels (not UNKNOWN)")


def speed() -> None:
    from prefect_failure_insights.blocks import FailureInsightsSettings

    from prefect_failure_insights.analysis.classifier import Classifier
    from prefect_failure_insights.analysis.rules import classify
    from prefect_failure_insights.models import ErrorItem

    rows = [json.loads(line) for line in SETS["ours (tests/fixtures)"].read_text().splitlines() if line.strip()]
    n = 20_000
    texts = [(rows[i % len(rows)]["error_text"] + f" (attempt {i})", rows[i % len(rows)].get("exception_type"))
             for i in range(n)]
    started = time.perf_counter()
    for text, exc in texts:
        classify(text, exc)
    one_by_one = time.perf_counter() - started
    items = [ErrorItem(id=str(i), error_text=t, exception_type=e) for i, (t, e) in enumerate(texts)]
    started = time.perf_counter()
    asyncio.run(Classifier(FailureInsightsSettings()).classify(items))
    batched = time.perf_counter() - started
    print("\n== Speed, rules only ==")
    print(f"rules, one by one:          {n / one_by_one:>10,.0f} errors/s ({n:,} errors in {one_by_one:.2f} s)")
    print(f"Classifier (dedupe + rules): {n / batched:>9,.0f} errors/s ({n:,} errors in {batched:.2f} s)")


async def _seed(n: int) -> list[str]:
    from prefect.client.orchestration import get_client

    from prefect_failure_insights.testing.seed import SCENARIOS, seed_failures

    names = list(SCENARIOS)
    async with get_client() as client:
        return await seed_failures(client, [(names[i % len(names)], i, None) for i in range(n)])


async def _baseline(ids: list[str]) -> float:
    """Each run as a summary reads it: the run, its task runs, all its logs (paged), in turn."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        LogFilter,
        LogFilterFlowRunId,
        TaskRunFilter,
        TaskRunFilterFlowRunId,
    )

    started = time.perf_counter()
    async with get_client() as client:
        for run_id in ids:
            await client.read_flow_run(UUID(run_id))
            await client.read_task_runs(task_run_filter=TaskRunFilter(
                flow_run_id=TaskRunFilterFlowRunId(any_=[UUID(run_id)])))
            await client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[UUID(run_id)])),
                                   limit=200)
    return time.perf_counter() - started


def window(n: int) -> None:
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

    from prefect_failure_insights.testing.prefect_server import PrefectServer

    print(f"\n== A window of {n:,} failed runs, local server, no LLM ==")
    with tempfile.TemporaryDirectory() as home, PrefectServer(Path(home)) as server, temporary_settings(
        updates={PREFECT_API_URL: server.api_url, PREFECT_HOME: home}
    ):
        os.environ.update(server.env())
        start = datetime.now(timezone.utc) - timedelta(seconds=1)
        t0 = time.perf_counter()
        ids = asyncio.run(_seed(n))
        print(f"seeded {len(ids):,} failed runs in {time.perf_counter() - t0:.1f} s")
        end = datetime.now(timezone.utc) + timedelta(seconds=1)

        from prefect_failure_insights.flows.batch_insights import batch_insights

        t0 = time.perf_counter()
        result = asyncio.run(batch_insights(since=start, until=end, use_llm=False))
        ours = time.perf_counter() - t0
        m = result.metrics
        t0 = time.perf_counter()
        again = asyncio.run(batch_insights(since=start, until=end, use_llm=False))
        rerun = time.perf_counter() - t0
        base = asyncio.run(_baseline(ids))
        print(f"batch-insights flow: {ours:6.1f} s for {m.runs_queried:,} runs, {m.errors_extracted:,} errors "
              f"({m.classified_by}, {m.unknown} unknown), report {len(result.report):,} chars")
        print(f"re-run, same window: {rerun:6.1f} s, same report: {again.report == result.report}")
        print(f"baseline (per-run reads, no classification): {base:6.1f} s")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    quality()
    speed()
    window(n)


if __name__ == "__main__":
    main()
