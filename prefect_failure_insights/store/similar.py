"""Similar failures: each distinct failure pattern once, with its LSH bands (the lookup's index)
and, with an embedding model, its embedding per model; the summaries of a set of patterns, counted
and linked (see `analysis.similarity`)."""

from __future__ import annotations

from sqlalchemy import Engine, and_, func, or_, select

from prefect_failure_insights.models import SimilarFailures, SimilarRun
from prefect_failure_insights.store.sql import guard, insert_ignore, now, utc
from prefect_failure_insights.store.summaries import UNFINISHED
from prefect_failure_insights.store.tables import pattern_bands, pattern_vectors, patterns, summaries


def index_pattern(engine: Engine, pattern_id: str, pattern: str, *, bands: list[tuple[int, str]]) -> None:
    """Store a pattern and its bands (once: a known pattern changes nothing)."""
    with guard(engine, "index the failure pattern"), engine.begin() as conn:
        if insert_ignore(conn, patterns, {"pattern_id": pattern_id, "pattern": pattern, "created_at": now()}):
            for band, bucket in bands:
                insert_ignore(conn, pattern_bands, {"band": band, "bucket": bucket, "pattern_id": pattern_id})


def stored_vector(engine: Engine, pattern_id: str, model: str) -> bytes | None:
    """The pattern's stored embedding by ``model`` (packed), if it was embedded before."""
    with guard(engine, "read the failure pattern's embedding"), engine.connect() as conn:
        return conn.execute(select(pattern_vectors.c.vector).where(
            pattern_vectors.c.pattern_id == pattern_id, pattern_vectors.c.model == model)).scalar()


def index_vector(engine: Engine, pattern_id: str, model: str, *, vector: bytes, dimensions: int,
                 bands: list[tuple[int, str]]) -> None:
    """Store a pattern's embedding by ``model`` and its LSH bands (once per pattern and model)."""
    with guard(engine, "index the failure pattern's embedding"), engine.begin() as conn:
        if insert_ignore(conn, pattern_vectors, {"pattern_id": pattern_id, "model": model, "dimensions": dimensions,
                                                 "vector": vector, "created_at": now()}):
            for band, bucket in bands:
                insert_ignore(conn, pattern_bands, {"band": band, "bucket": bucket, "pattern_id": pattern_id})


def candidate_vectors(engine: Engine, bands: list[tuple[int, str]], model: str, *, limit: int) -> dict[str, bytes]:
    """The patterns whose embedding by ``model`` shares at least one band with ``bands`` (at most
    ``limit``, most shared bands first): pattern id -> packed embedding. One query on the bands."""
    ids = _sharing(engine, bands, limit)
    if not ids:
        return {}
    with guard(engine, "look up similar failures"), engine.connect() as conn:
        rows = conn.execute(select(pattern_vectors.c.pattern_id, pattern_vectors.c.vector).where(
            pattern_vectors.c.pattern_id.in_(ids), pattern_vectors.c.model == model))
        return {r.pattern_id: r.vector for r in rows}


def _sharing(engine: Engine, bands: list[tuple[int, str]], limit: int) -> list[str]:
    """The ids of the patterns sharing at least one of ``bands``, most shared first (at most ``limit``)."""
    if not bands:
        return []
    shared = func.count().label("shared")
    with guard(engine, "look up similar failures"), engine.connect() as conn:
        return list(conn.execute(
            select(pattern_bands.c.pattern_id, shared)
            .where(or_(*[and_(pattern_bands.c.band == b, pattern_bands.c.bucket == h) for b, h in bands]))
            .group_by(pattern_bands.c.pattern_id).order_by(shared.desc()).limit(limit)
        ).scalars().all())


def candidate_patterns(engine: Engine, bands: list[tuple[int, str]], limit: int) -> dict[str, str]:
    """The patterns sharing at least one band with ``bands`` (at most ``limit``, most shared bands
    first): pattern id -> pattern. One query on the bands' primary key."""
    ids = _sharing(engine, bands, limit)
    if not ids:
        return {}
    with guard(engine, "look up similar failures"), engine.connect() as conn:
        rows = conn.execute(select(patterns.c.pattern_id, patterns.c.pattern).where(patterns.c.pattern_id.in_(ids)))
        return {r.pattern_id: r.pattern for r in rows}


def similar_summaries(engine: Engine, scores: dict[str, float], exclude_run_id: str, *, links: int) -> SimilarFailures:
    """The finished summaries of the patterns in ``scores`` (id -> similarity), except
    ``exclude_run_id``'s: how many, their flows, first and last seen, and the ``links`` most
    similar (newest first among equals)."""
    if not scores:
        return SimilarFailures(checked=True)
    mine = [summaries.c.pattern_id.in_(list(scores)), summaries.c.flow_run_id != exclude_run_id,
            summaries.c.status.not_in(UNFINISHED)]
    with guard(engine, "read similar failures"), engine.connect() as conn:
        count, first, last = conn.execute(
            select(func.count(), func.min(summaries.c.failed_at), func.max(summaries.c.failed_at)).where(*mine)
        ).one()
        if not count:
            return SimilarFailures(checked=True)
        flows = conn.execute(select(summaries.c.flow_name).where(*mine).distinct().limit(10)).scalars().all()
        best = sorted(scores, key=lambda p: -scores[p])
        found: list[SimilarRun] = []
        for pid in best:
            if len(found) >= links:
                break
            rows = conn.execute(
                select(summaries.c.flow_run_id, summaries.c.flow_name, summaries.c.title, summaries.c.artifact_id,
                       summaries.c.failed_at).where(*mine).where(summaries.c.pattern_id == pid)
                .order_by(summaries.c.created_at.desc()).limit(links - len(found))
            ).all()
            found += [SimilarRun(flow_run_id=r.flow_run_id, flow_name=r.flow_name, title=r.title or "",
                                 similarity=round(scores[pid], 2), artifact_id=r.artifact_id,
                                 failed_at=utc(r.failed_at)) for r in rows]
    return SimilarFailures(checked=True, count=int(count), flows=sorted(flows), first_seen=utc(first),
                           last_seen=utc(last), most_similar=found)
