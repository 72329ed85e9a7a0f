"""Retention on a real SQLite file and a real PostgreSQL: old rows go, in bounded batches; a held
row, a recent one, a pattern still in use and the team's corrections stay."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import func, insert, select, update

from prefect_failure_insights.store.retention import enforce
from prefect_failure_insights.store.summaries import claim_summary, store_summary
from prefect_failure_insights.store.tables import (
    batch_errors,
    batch_runs,
    corrections,
    fingerprints,
    pattern_bands,
    pattern_vectors,
    patterns,
    summaries,
)
from tests.store.test_summaries import _run, _summary

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=timezone.utc)
OLD = NOW - timedelta(days=200)


def _count(engine, table) -> int:  # noqa: ANN001
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


def _summaries(engine, n: int, *, made: datetime, status: str = "done", first: int = 0) -> list[str]:  # noqa: ANN001
    ids = []
    for i in range(first, first + n):
        run = _run(f"11111111-0000-4000-8000-{i:012d}")
        claim_summary(engine, run, "me")
        if status == "done":
            store_summary(engine, _summary(run).model_copy(update={"recurrence": _summary(run).recurrence.model_copy(
                update={"pattern_id": f"p{i}"})}), "me")
        with engine.begin() as conn:
            conn.execute(update(summaries).where(summaries.c.flow_run_id == run.id).values(created_at=made))
        ids.append(run.id)
    return ids


def test_rows_past_their_retention_go_and_the_rest_stays(engine) -> None:
    old = _summaries(engine, 7, made=OLD)
    recent = _summaries(engine, 2, made=NOW - timedelta(days=3), first=100)
    held = _summaries(engine, 1, made=OLD, status="pending", first=200)  # a summarizer holds it
    with engine.begin() as conn:
        conn.execute(insert(patterns), [{"pattern_id": "p0", "pattern": "in use by a summary kept? no",
                                         "created_at": OLD},
                                        {"pattern_id": "p100", "pattern": "used by a recent summary",
                                         "created_at": OLD},
                                        {"pattern_id": "orphan", "pattern": "nobody", "created_at": OLD}])
        conn.execute(insert(pattern_bands), [{"band": 0, "bucket": "b", "pattern_id": p}
                                             for p in ("p0", "p100", "orphan")])
        conn.execute(insert(pattern_vectors), [{"pattern_id": p, "model": m, "dimensions": 1, "vector": b"\0" * 4,
                                                "created_at": OLD} for p in ("p0", "p100") for m in ("m1", "m2")])
        conn.execute(insert(fingerprints), [
            {"cache_key": "old", "fingerprint": "f", "model": "m", "prompt_version": "v", "status": "done",
             "first_seen": OLD, "last_seen": OLD, "occurrences": 1},
            {"cache_key": "recent", "fingerprint": "f", "model": "m", "prompt_version": "v", "status": "done",
             "first_seen": OLD, "last_seen": NOW, "occurrences": 2}])
        conn.execute(insert(batch_runs), [
            {"batch_id": b, "window_start": at - timedelta(days=1), "window_end": at, "filters": "{}",
             "status": "completed", "metrics": "{}", "created_at": at, "updated_at": at}
            for b, at in (("old", OLD), ("new", NOW))])
        conn.execute(insert(batch_errors), [
            {"batch_id": b, "error_id": "r1:t1", "flow_run_id": "r1", "flow_name": "f", "tags": "[]",
             "error_text": "x", "category": "UNKNOWN", "classified_by": "rule", "created_at": at}
            for b, at in (("old", OLD), ("new", NOW))])
        conn.execute(insert(corrections), [{"fingerprint": "c", "signature": "s", "error_text": "x",
                                            "category": "UNKNOWN", "created_at": OLD}])

    deleted = enforce(engine, 90, batch=3, at=NOW)

    assert deleted["failure_summaries"] == len(old)
    with engine.connect() as conn:
        kept = set(conn.execute(select(summaries.c.flow_run_id)).scalars())
        assert kept == set(recent) | set(held)
        assert set(conn.execute(select(patterns.c.pattern_id)).scalars()) == {"p100"}
        assert set(conn.execute(select(pattern_bands.c.pattern_id)).scalars()) == {"p100"}
        assert set(conn.execute(select(pattern_vectors.c.pattern_id)).scalars()) == {"p100"}
        assert set(conn.execute(select(fingerprints.c.cache_key)).scalars()) == {"recent"}
        assert set(conn.execute(select(batch_runs.c.batch_id)).scalars()) == {"new"}
        assert set(conn.execute(select(batch_errors.c.batch_id)).scalars()) == {"new"}  # same error id, other batch
    assert _count(engine, corrections) == 1  # the team's labels are never deleted
    assert enforce(engine, 90, at=NOW) == {}  # nothing left to do
    assert enforce(engine, 0, at=NOW + timedelta(days=9999)) == {}  # 0: keep everything


def test_a_pass_deletes_at_most_its_bound_and_the_next_goes_on(engine) -> None:
    _summaries(engine, 12, made=OLD)
    assert enforce(engine, 30, batch=4, max_rows=5, at=NOW) == {"failure_summaries": 5}
    assert enforce(engine, 30, batch=4, max_rows=5, at=NOW) == {"failure_summaries": 5}
    assert enforce(engine, 30, batch=4, max_rows=5, at=NOW) == {"failure_summaries": 2}
    assert _count(engine, summaries) == 0
