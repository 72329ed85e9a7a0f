"""Benchmark: what 10,000 summaries cost in the database, and how fast retention deletes them.

On a real SQLite file and the local PostgreSQL (a schema of its own, dropped after): 10,000
summaries with evidence of the default budget (6,000 tokens, ~18,000 characters of log lines),
their size on disk, then one retention pass's deletion rate (`store.retention.enforce`, the
production code, bounded batches of 500) and the size after. The baseline in the same run: the
same rows inserted, the time to insert them (what the summarizers spent writing them).

Usage: python bench/retention.py [--rows 10000] [--postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import create_engine, event, insert, text


def _arg(name: str, default: str) -> str:
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


def _rows(n: int) -> list[dict]:
    from prefect_failure_insights.models import EvidenceRef, FailureAnalysis, FlowRunInfo, LLMUsage, Summary
    from prefect_failure_insights.store.mapping import to_row
    from prefect_failure_insights.store.tables import summaries

    made = datetime.now(timezone.utc) - timedelta(days=400)
    evidence = "\n".join(f"L{i} 02:00:{i % 60:02d}.000 INFO [load_orders-3f1] Processed batch {i} of 20000 "
                         f"({(i * 37) % 900} rows) from s3://lake/orders/part-{i:05d}.parquet" for i in range(170))
    out = []
    for i in range(n):
        run = FlowRunInfo(id=str(uuid.uuid4()), name=f"run-{i}", flow_name=f"flow-{i % 50}", state="Failed",
                          tags=["prod"], end_time=made)
        summary = Summary(run=run, analysis=FailureAnalysis(
            title=f"load_orders failed: HTTPStatusError 503 ({i})", what_happened="The vendor answered 503. " * 5,
            how_to_fix=["Retry when the vendor recovers.", "Add retries with backoff."],
            root_cause="The vendor's outage. " * 5, category="THIRD_PARTY_SYSTEM", confidence=0.9),
            status="llm", usage=LLMUsage(model="m", prompt_tokens=6000, completion_tokens=400),
            evidence=EvidenceRef(text=evidence, tokens=6000))
        row = to_row(summary, summaries)
        row.update(created_at=made, updated_at=made, flow_run_id=run.id)
        out.append(row)
    return out


def _size(engine, kind: str, path: Path | None, schema: str | None) -> float:  # noqa: ANN001
    if kind == "sqlite":
        return path.stat().st_size / 1e6
    with engine.connect() as conn:
        return float(conn.execute(text(
            "SELECT coalesce(sum(pg_total_relation_size(quote_ident(schemaname) || '.' || quote_ident(tablename))), 0)"
            " FROM pg_tables WHERE schemaname = :s"), {"s": schema}).scalar()) / 1e6


def measure(kind: str, n: int, pg_url: str, tmp: Path) -> None:
    from prefect_failure_insights.store import migrations
    from prefect_failure_insights.store.retention import enforce
    from prefect_failure_insights.store.tables import summaries

    schema = None
    path = None
    if kind == "sqlite":
        path = tmp / "retention.db"
        engine = create_engine(f"sqlite:///{path}")
    else:
        schema = f"fi_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(pg_url)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine = create_engine(pg_url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        migrations.ensure_schema(engine)
        rows = _rows(n)
        started = time.perf_counter()
        with engine.begin() as conn:
            for at in range(0, n, 1000):
                conn.execute(insert(summaries), rows[at:at + 1000])
        inserted_s = time.perf_counter() - started
        if kind == "postgres":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE"))
        before = _size(engine, kind, path, schema)
        started = time.perf_counter()
        deleted = 0
        while True:  # one pass deletes at most RETENTION_MAX_ROWS per table: as many passes as it takes
            found = enforce(engine, 90).get("failure_summaries", 0)
            deleted += found
            if not found:
                break
        deleted_s = time.perf_counter() - started
        after = _size(engine, kind, path, schema)
        print(f"{kind:<9} {n:>7,} summaries: {before:7.1f} MB ({before * 1e6 / n / 1e3:5.1f} kB each)   "
              f"inserted in {inserted_s:5.1f} s (baseline)   deleted {deleted:,} in {deleted_s:5.1f} s "
              f"({deleted / deleted_s:7,.0f} rows/s)   size after {after:7.1f} MB"
              + (" (SQLite keeps freed pages for reuse; VACUUM returns them)" if kind == "sqlite" else ""),
              flush=True)
    finally:
        engine.dispose()
        if schema:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


def main() -> None:
    n = int(_arg("--rows", "10000"))
    pg_url = _arg("--postgres-url", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    with tempfile.TemporaryDirectory(prefix="fi-retention-") as tmp:
        for kind in ("sqlite", "postgres"):
            measure(kind, n, pg_url, Path(tmp))


if __name__ == "__main__":
    main()
