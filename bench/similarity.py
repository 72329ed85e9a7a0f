"""Benchmark: similar past failures (issue 16) -- precision of the links, and the lookup's cost.

1. Precision on labelled pairs (`tests/fixtures/similar/pairs.jsonl`: real error texts from
   public issue threads and docs, each pair labelled similar or not, with provenance; see that
   folder's README). A pair is linked when the Jaccard similarity of the two patterns' shingles
   reaches the threshold. The set is split once, by a hash of each pair's id, into a tuning part
   (70 %) and a frozen test part (30 %): the threshold is chosen by 5-fold cross-validation on the
   tuning part (per fold: the threshold with the best F0.5 on the other folds, precision weighing
   twice recall since a wrong link costs the reader more than a missing one, scored on the fold);
   the frozen part is scored once with `SIMILARITY_THRESHOLD`, the product's default.
2. The lookup at N stored summaries (default 100,000) in a real SQLite file: summaries of
   generated failures (40 error families, identifiers varied: several thousand distinct
   patterns), each distinct pattern indexed once with its LSH bands, as the summarizer does.
   Timed per lookup: index the new pattern, find candidates (one indexed query), re-rank, read
   the similar summaries' counts and links. Baseline in the same run: the same answer by a scan
   (every stored summary's pattern compared). Also the recall of the index against that scan.
3. With ``--embeddings URL`` (issue 29; `bench/embedding_server.py` serves a real model): the
   same pairs scored by the cosine of the patterns' embeddings, alone and as the product links
   them (the lexical links plus the pairs at or above ``embedding_threshold``), cross-validated
   the same way; then every distinct pattern of the seeded summaries embedded and indexed, and the
   lookups of new failures through the product's embedder (the HTTP request included), against a
   scan of every stored embedding.
4. With ``--synthetic``: the embedding index's worst case, N distinct patterns (one per summary)
   with their own embeddings, 384 dimensions, timed without a model.

Usage: python bench/similarity.py [--summaries 100000] [--lookups 200] [--embeddings URL
       [--embedding-model all-MiniLM-L6-v2]] [--synthetic] [--precision-only] [--frozen]
"""

from __future__ import annotations

import hashlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from random import Random

ROOT = Path(__file__).resolve().parents[1]
PAIRS = ROOT / "tests" / "fixtures" / "similar" / "pairs.jsonl"

FAMILIES = [
    ("requests.exceptions.HTTPError", "503 Server Error: Service Unavailable for url: https://{host}/v{n}/{path}"),
    ("requests.exceptions.HTTPError", "401 Client Error: Unauthorized for url: https://{host}/v{n}/{path}"),
    ("requests.exceptions.HTTPError", "429 Client Error: Too Many Requests for url: https://{host}/{path}"),
    ("httpx.ConnectError", "[Errno -2] Name or service not known"),
    ("httpx.ReadTimeout", "The read operation timed out"),
    ("KeyError", "'{col}'"),
    ("KeyError", "\"['{col}'] not in index\""),
    ("ValueError", "could not convert string to float: '{word}'"),
    ("psycopg2.errors.UniqueViolation", "duplicate key value violates unique constraint \"{table}_pkey\""),
    ("psycopg2.OperationalError", "could not connect to server: Connection refused Is the server running on host "
                                  "\"{host}\" and accepting TCP/IP connections on port 5432?"),
    ("psycopg2.OperationalError", "FATAL: password authentication failed for user \"{word}\""),
    ("psycopg2.errors.UndefinedColumn", "column \"{col}\" does not exist"),
    ("psycopg2.errors.UndefinedTable", "relation \"{table}\" does not exist"),
    ("botocore.exceptions.ClientError", "An error occurred (AccessDenied) when calling the {op} operation: Access "
                                        "Denied"),
    ("botocore.exceptions.ClientError", "An error occurred (ThrottlingException) when calling the {op} operation: "
                                        "Rate exceeded"),
    ("botocore.errorfactory.NoSuchKey", "An error occurred (NoSuchKey) when calling the GetObject operation: The "
                                        "specified key does not exist."),
    ("snowflake.connector.errors.ProgrammingError", "000606 (57P03): No active warehouse selected in the current "
                                                    "session."),
    ("snowflake.connector.errors.ProgrammingError", "002003 (42S02): SQL compilation error: Object '{table}' does "
                                                    "not exist or not authorized."),
    ("google.api_core.exceptions.NotFound", "404 Not found: Table {project}:{table} was not found in location EU"),
    ("google.api_core.exceptions.Forbidden", "403 Access Denied: Table {project}:{table}: Permission "
                                             "bigquery.tables.getData denied"),
    ("pandas.errors.ParserError", "Error tokenizing data. C error: Expected {n} fields in line {n}, saw {n}"),
    ("UnicodeDecodeError", "'utf-8' codec can't decode byte 0x{hex} in position {n}: invalid start byte"),
    ("pydantic_core._pydantic_core.ValidationError", "1 validation error for {word} {col} Field required"),
    ("OSError", "[Errno 28] No space left on device: '/tmp/{path}'"),
    ("MemoryError", ""),
    ("prefect.exceptions.TaskRunTimeoutError", "Task run exceeded timeout of {n}.0 second(s)"),
    ("sqlite3.OperationalError", "database is locked"),
    ("ModuleNotFoundError", "No module named '{word}'"),
    ("kafka.errors.KafkaTimeoutError", "Failed to update metadata after {n}.0 secs."),
    ("ssl.SSLCertVerificationError", "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: certificate has "
                                     "expired (_ssl.c:{n})"),
    ("ZeroDivisionError", "float division by zero"),
    ("RecursionError", "maximum recursion depth exceeded while calling a Python object"),
    ("dbt.exceptions.CompilationError", "Compilation Error in model {table} (models/{path}.sql) '{col}' is "
                                        "undefined."),
    ("paramiko.ssh_exception.AuthenticationException", "Authentication failed."),
    ("docker.errors.ImageNotFound", "404 Client Error for http+docker://localhost/v1.43/images/{word}:latest/json: "
                                    "Not Found"),
    ("kubernetes.client.exceptions.ApiException", "(403) Reason: Forbidden: pods is forbidden: User "
                                                  "\"system:serviceaccount:{word}:default\" cannot create resource"),
    ("RuntimeError", "Crash detected! Pod '{word}-{hex}' was terminated: OOMKilled (exit code 137)"),
    ("TypeError", "unsupported operand type(s) for +: 'int' and '{word}'"),
    ("AttributeError", "'NoneType' object has no attribute '{col}'"),
    ("json.decoder.JSONDecodeError", "Expecting value: line 1 column 1 (char 0)"),
]
WORDS = ["orders", "customers", "invoices", "events", "sessions", "payments", "accounts", "users", "items", "stock",
         "ledger", "campaigns", "leads", "shipments", "rates", "reviews", "prices", "refunds", "tickets", "devices"]


def _error(rng: Random, family: int) -> tuple[str, str]:
    kind, text = FAMILIES[family]
    word, col = rng.choice(WORDS), f"{rng.choice(WORDS)}_{rng.choice(['id', 'amount', 'date', 'code', 'name'])}"
    return kind, text.format(host=f"api.{rng.choice(WORDS)}.example", n=rng.randint(1, 9999), path=rng.choice(WORDS),
                             col=col, word=word, table=f"{rng.choice(['stg', 'raw', 'mart'])}_{word}",
                             op=rng.choice(["PutObject", "GetObject", "ListObjectsV2"]), project="acme-prod",
                             hex=f"{rng.randint(0, 0xffff):04x}")


def _split(pairs: list[dict]) -> tuple[list[dict], list[dict]]:
    frozen = [p for p in pairs if int(hashlib.sha256(p["id"].encode()).hexdigest(), 16) % 10 < 3]
    return [p for p in pairs if p not in frozen], frozen


def _lexical(pairs: list[dict]) -> dict[str, float]:
    from prefect_failure_insights.analysis.similarity import jaccard, pattern, shingles

    return {p["id"]: jaccard(shingles(pattern(p["a"].get("exception_type"), p["a"]["error"])),
                             shingles(pattern(p["b"].get("exception_type"), p["b"]["error"]))) for p in pairs}


def _embedder(url: str, model: str, threshold: float | None = None):
    from prefect_failure_insights.blocks import LLMCredentials
    from prefect_failure_insights.llm.embeddings import Embedder

    chosen = {"embedding_threshold": threshold} if threshold else {}
    return Embedder(LLMCredentials(base_url=url, model="unused", embedding_model=model, timeout=60, **chosen))


def _embedded(pairs: list[dict], url: str, model: str) -> dict[str, float]:
    """The cosine of the two patterns' embeddings, asked of the endpoint through the product's client."""
    import asyncio

    from prefect_failure_insights.analysis.similarity import pattern
    from prefect_failure_insights.analysis.vectors import cosine

    async def go() -> dict[str, float]:
        async with _embedder(url, model) as embedder:
            seen: dict[str, list[float]] = {}

            async def vector(side: dict) -> list[float]:
                text = pattern(side.get("exception_type"), side["error"])
                if text not in seen:
                    seen[text] = await embedder.embed(text)
                return seen[text]

            return {p["id"]: cosine(await vector(p["a"]), await vector(p["b"])) for p in pairs}

    return asyncio.run(go())


def _prf(scored: list[tuple[float, bool]], threshold: float) -> tuple[float, float, float, int]:
    tp = sum(s >= threshold and y for s, y in scored)
    fp = sum(s >= threshold and not y for s, y in scored)
    fn = sum(s < threshold and y for s, y in scored)
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    # F0.5: a wrong link costs the reader more than a missing one
    return p, r, (1.25 * p * r / (0.25 * p + r) if p + r else 0.0), tp + fp


def _cross_validated(name: str, scores: dict[str, float], tune: list[dict], frozen: list[dict],
                     grid: list[float], default: float) -> None:
    """Per fold, the threshold with the best F0.5 on the other folds, scored on the fold; then the
    product's default on the whole tuning part; the frozen part only with --frozen."""
    def scored(pairs: list[dict]) -> list[tuple[float, bool]]:
        return [(scores[p["id"]], bool(p["similar"])) for p in pairs]

    folds = [tune[i::5] for i in range(5)]
    cv = []
    for i, fold in enumerate(folds):
        rest = [p for j, f in enumerate(folds) if j != i for p in f]
        best = max(grid, key=lambda t: (_prf(scored(rest), t)[2], t))
        cv.append((best, *_prf(scored(fold), best)))
    linked = sum(c[4] for c in cv)
    tp_cv = sum(round(c[1] * c[4]) for c in cv)
    positives = sum(bool(p["similar"]) for p in tune)
    print(f"-- {name}")
    print(f"cross-validated on the tuning part (5 folds): precision {tp_cv / linked if linked else 1:.0%} over "
          f"{linked} links, recall {tp_cv / positives:.0%}; thresholds chosen {sorted(c[0] for c in cv)}")
    chosen = max(grid, key=lambda t: (_prf(scored(tune), t)[2], t))
    print(f"  threshold with the best F0.5 on the whole tuning part: {chosen:.2f} (the default: {default:.2f})")
    for t in sorted({chosen, default}):
        p, r, _f, n = _prf(scored(tune), t)
        print(f"  tuning part, threshold {t:.2f}: precision {p:.0%} recall {r:.0%} ({n} links)")
    if "--frozen" in sys.argv:
        p, r, _f, n = _prf(scored(frozen), default)
        print(f"  FROZEN part, threshold {default:.2f} (the default): precision {p:.0%} recall {r:.0%} "
              f"({n} links of {len(frozen)} pairs)")
    else:
        print("  frozen part: not scored (run with --frozen, once, at the end)")


def precision(embeddings: tuple[str, str] | None) -> None:
    from prefect_failure_insights.analysis.fingerprint import error_signature
    from prefect_failure_insights.defaults import EMBEDDING_SIMILARITY_THRESHOLD, SIMILARITY_THRESHOLD

    if not PAIRS.exists():
        print(f"no labelled pairs at {PAIRS}: precision not measured")
        return
    pairs = [json.loads(line) for line in PAIRS.read_text().splitlines() if line.strip()]
    tune, frozen = _split(pairs)
    print(f"== Similar-failure links on {len(pairs)} labelled pairs "
          f"({sum(p['similar'] for p in pairs)} similar), {len(tune)} tuning / {len(frozen)} frozen ==")
    _cross_validated("lexical: Jaccard of the patterns' shingles", _lexical(pairs), tune, frozen,
                     [round(0.2 + 0.05 * i, 2) for i in range(13)], SIMILARITY_THRESHOLD)
    if embeddings:
        url, model = embeddings
        lexical, cosines = _lexical(pairs), _embedded(pairs, url, model)
        _cross_validated(f"embeddings alone: cosine of the patterns' embeddings by {model} at {url}", cosines,
                         tune, frozen, [round(0.3 + 0.05 * i, 2) for i in range(14)], EMBEDDING_SIMILARITY_THRESHOLD)
        # What the product links with an embedding model: the lexical links, and the pairs whose
        # cosine reaches the threshold.
        union = {k: 1.0 if lexical[k] >= SIMILARITY_THRESHOLD else cosines[k] for k in lexical}
        _cross_validated(f"the product with {model}: lexical links, plus cosine >= threshold", union, tune, frozen,
                         [round(0.6 + 0.05 * i, 2) for i in range(9)], EMBEDDING_SIMILARITY_THRESHOLD)
    exact = [(1.0 if error_signature(p["a"]["error"], p["a"].get("exception_type"))
              == error_signature(p["b"]["error"], p["b"].get("exception_type")) else 0.0, bool(p["similar"]))
             for p in tune]
    p, r, _f, n = _prf(exact, 1.0)
    print(f"-- baseline (the exact signature, no flow or task): tuning part precision {p:.0%} recall "
          f"{r:.0%} ({n} links)")


def seed(n_summaries: int):
    """A real SQLite file with ``n_summaries`` summaries of generated failures, each distinct pattern
    indexed once as the summarizer indexes it; the engine, the patterns and the generator."""
    from sqlalchemy import create_engine, insert

    from prefect_failure_insights.analysis.similarity import bands, pattern, pattern_id, shingles
    from prefect_failure_insights.store import similar as store
    from prefect_failure_insights.store.migrations import ensure_schema
    from prefect_failure_insights.store.sql import now
    from prefect_failure_insights.store.tables import summaries

    rng = Random(16)
    tmp = Path(tempfile.mkdtemp(prefix="fi-similar-"))
    engine = create_engine(f"sqlite:///{tmp / 'summaries.db'}")
    ensure_schema(engine)
    started = time.perf_counter()
    known: dict[str, str] = {}
    rows = []
    for i in range(n_summaries):
        kind, error = _error(rng, rng.randrange(len(FAMILIES)))
        text = pattern(kind, error)
        pid = pattern_id(text)
        if pid not in known:
            known[pid] = text
            store.index_pattern(engine, pid, text, bands=bands(shingles(text)))
        rows.append({"flow_run_id": f"{i:036d}", "flow_run_name": f"run-{i}", "flow_name": f"flow-{i % 300}",
                     "tags": "[]", "state": "Failed", "status": "llm", "title": error[:80], "pattern": text,
                     "pattern_id": pid, "failed_at": now(), "regenerated_count": 0, "created_at": now(),
                     "updated_at": now()})
        if len(rows) == 5000:
            with engine.begin() as conn:
                conn.execute(insert(summaries), rows)
            rows = []
    if rows:
        with engine.begin() as conn:
            conn.execute(insert(summaries), rows)
    print(f"\n== Lookup at {n_summaries:,} stored summaries ({len(known):,} distinct patterns), SQLite file; "
          f"seeded in {time.perf_counter() - started:.0f} s ==")
    return engine, known, rng


def _pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def lookup(engine, rng: Random, n_lookups: int) -> None:  # noqa: ANN001
    from sqlalchemy import select

    from prefect_failure_insights.analysis.similarity import bands, jaccard, pattern, pattern_id, shingles
    from prefect_failure_insights.analysis.similarity import similar_patterns
    from prefect_failure_insights.defaults import SIMILAR_LINKS, SIMILARITY_CANDIDATES, SIMILARITY_THRESHOLD
    from prefect_failure_insights.store import similar as store
    from prefect_failure_insights.store.tables import summaries

    queries = [pattern(*_error(rng, rng.randrange(len(FAMILIES)))) for _ in range(n_lookups)]
    ours, found_sets = [], []
    for i, text in enumerate(queries):
        t0 = time.perf_counter()
        lsh = bands(shingles(text))
        store.index_pattern(engine, pattern_id(text), text, bands=lsh)
        scores = similar_patterns(text, store.candidate_patterns(engine, lsh, SIMILARITY_CANDIDATES),
                                  SIMILARITY_THRESHOLD)
        store.similar_summaries(engine, scores, f"query-{i}", links=SIMILAR_LINKS)
        ours.append((time.perf_counter() - t0) * 1000)
        found_sets.append(set(scores))

    scans, recall_hits, recall_all = [], 0, 0
    for i, text in enumerate(queries[:10]):
        t0 = time.perf_counter()
        tokens = shingles(text)
        with engine.connect() as conn:
            stored = conn.execute(select(summaries.c.pattern_id, summaries.c.pattern)).all()
        cache: dict[str, float] = {}
        for pid, other in stored:
            if pid not in cache:
                cache[pid] = jaccard(tokens, shingles(other))
        exact = {pid for pid, s in cache.items() if s >= SIMILARITY_THRESHOLD}
        scans.append((time.perf_counter() - t0) * 1000)
        recall_all += len(exact)
        recall_hits += len(exact & found_sets[i])

    print(f"{'':<34} {'p50 ms':>8} {'p95 ms':>8}")
    print(f"{'ours: LSH bands, one indexed query':<34} {statistics.median(ours):>8.1f} {_pct(ours, 0.95):>8.1f}"
          f"   ({n_lookups} lookups)")
    print(f"{'baseline: scan every summary':<34} {statistics.median(scans):>8.1f} {_pct(scans, 0.95):>8.1f}"
          f"   ({len(scans)} lookups)")
    print(f"recall of the index against the scan (similar patterns found): {recall_hits}/{recall_all}")


class _Here:
    """The summarizer's `Database`, minus its worker thread: the lookup's own work is what is timed."""

    def __init__(self, engine) -> None:  # noqa: ANN001
        self.engine = engine

    async def run(self, fn, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN201
        return fn(self.engine, *args, **kwargs)


def _index_vectors(engine, vectors_by_id: dict[str, list[float]], model: str) -> None:  # noqa: ANN001
    """Store many patterns' embeddings and bands as `store.similar.index_vector` does, in bulk."""
    from sqlalchemy import insert

    from prefect_failure_insights.analysis import vectors
    from prefect_failure_insights.store.sql import now
    from prefect_failure_insights.store.tables import pattern_bands, pattern_vectors

    planes = vectors.hyperplanes(len(next(iter(vectors_by_id.values()))))
    ids = list(vectors_by_id)
    for start in range(0, len(ids), 2000):
        chunk = ids[start:start + 2000]
        with engine.begin() as conn:
            conn.execute(insert(pattern_vectors), [
                {"pattern_id": pid, "model": model, "dimensions": len(vectors_by_id[pid]),
                 "vector": vectors.pack(vectors_by_id[pid]), "created_at": now()} for pid in chunk])
            conn.execute(insert(pattern_bands), [
                {"band": band, "bucket": bucket, "pattern_id": pid} for pid in chunk
                for band, bucket in vectors.vector_bands(vectors_by_id[pid], model, planes)])


async def _lookups(engine, embedder, queries: list[tuple[str, str]]) -> tuple[list[float], list[set[str]]]:  # noqa: ANN001
    """The product's embedding lookup (`similar_by_embedding`, then the similar summaries' counts
    and links) per query: milliseconds, and the similar patterns found (the query's own left out)."""
    from prefect_failure_insights.analysis.similarity import similar_by_embedding
    from prefect_failure_insights.defaults import SIMILAR_LINKS
    from prefect_failure_insights.store import similar as store

    here, times, found = _Here(engine), [], []
    for i, (pid, text) in enumerate(queries):
        t0 = time.perf_counter()
        scores = await similar_by_embedding(here, embedder, pid, text=text)
        store.similar_summaries(engine, scores, f"query-{i}", links=SIMILAR_LINKS)
        times.append((time.perf_counter() - t0) * 1000)
        found.append(set(scores) - {pid})
    return times, found


def _scans(engine, model: str, queries: list[tuple[str, str]], threshold: float) -> list[tuple[float, set[str]]]:  # noqa: ANN001
    """The baseline for the first 10 queries (already embedded and stored by the lookups): every
    stored embedding compared. Milliseconds and the similar patterns, per query."""
    from sqlalchemy import select

    from prefect_failure_insights.analysis import vectors
    from prefect_failure_insights.store import similar as store
    from prefect_failure_insights.store.tables import pattern_vectors

    out = []
    for pid, _text in queries[:10]:
        t0 = time.perf_counter()
        vector = vectors.unpack(store.stored_vector(engine, pid, model))
        with engine.connect() as conn:
            rows = conn.execute(select(pattern_vectors.c.pattern_id, pattern_vectors.c.vector)
                                .where(pattern_vectors.c.model == model)).all()
        similar = {other for other, packed in rows
                   if other != pid and vectors.cosine(vector, vectors.unpack(packed)) >= threshold}
        out.append(((time.perf_counter() - t0) * 1000, similar))
    return out


def _report(name: str, times: list[float], found: list[set[str]], scans: list[tuple[float, set[str]]],
            n_scanned: int) -> None:
    print(f"{'':<46} {'p50 ms':>8} {'p95 ms':>8}")
    print(f"{name:<46} {statistics.median(times):>8.1f} {_pct(times, 0.95):>8.1f}   ({len(times)} lookups)")
    scan_ms = [t for t, _ in scans]
    print(f"{'baseline: compare every stored embedding':<46} {statistics.median(scan_ms):>8.1f} "
          f"{_pct(scan_ms, 0.95):>8.1f}   ({len(scans)} lookups, {n_scanned:,} embeddings)")
    hits = sum(len(exact & found[i]) for i, (_, exact) in enumerate(scans))
    print(f"recall of the index against the scan (similar patterns found): {hits}/{sum(len(e) for _, e in scans)}")


def lookup_embeddings(engine, known: dict[str, str], rng: Random, url: str, model: str,  # noqa: ANN001
                      n_lookups: int) -> None:
    """At the seeded summaries: every distinct pattern embedded by the real model (in batches, over
    HTTP), then lookups of new failures through the product's embedder (the HTTP request included)."""
    import asyncio

    import httpx

    from prefect_failure_insights.analysis.similarity import pattern, pattern_id
    from prefect_failure_insights.llm.embeddings import unit_vector

    started = time.perf_counter()
    ids = list(known)
    vectors_by_id: dict[str, list[float]] = {}
    with httpx.Client(timeout=300) as client:
        for start in range(0, len(ids), 128):
            chunk = ids[start:start + 128]
            data = client.post(f"{url}/embeddings", json={"model": model, "input": [known[p] for p in chunk]}).json()
            vectors_by_id.update({pid: unit_vector(d["embedding"], url) for pid, d in zip(chunk, data["data"])})
    _index_vectors(engine, vectors_by_id, model)
    print(f"\n== Embedding lookup by {model} at the same summaries ({len(ids):,} distinct patterns embedded and "
          f"indexed in {time.perf_counter() - started:.0f} s) ==")
    queries = []
    for _ in range(n_lookups):
        text = pattern(*_error(rng, rng.randrange(len(FAMILIES))))
        queries.append((pattern_id(text), text))

    # Threshold 0.8, not the default 0.9: the generated families' patterns (quoted names differ)
    # are rarely that close by this model, and the index's recall needs links to count.
    async def go() -> tuple[float, list[float], list[set[str]]]:
        async with _embedder(url, model, 0.8) as embedder:
            return embedder.threshold, *await _lookups(engine, embedder, queries)

    threshold, times, found = asyncio.run(go())
    _report("ours: embed (HTTP) + LSH bands, one query", times, found, _scans(engine, model, queries, threshold),
            len(vectors_by_id))


class _Given:
    """An embedder whose vectors are given (the synthetic case times the index, not a model)."""

    model, threshold = "synthetic", 0.9

    def __init__(self, given: dict[str, list[float]]) -> None:
        self.given = given

    async def embed(self, text: str) -> list[float]:
        return self.given[text]


def lookup_synthetic(n_patterns: int, n_lookups: int, dimensions: int = 384) -> None:
    """The worst case for the index: ``n_patterns`` distinct patterns, each with its own embedding
    (clusters of 50 around random centres, cosine about 0.94 within a cluster, about 0 across)."""
    import asyncio
    import math

    from sqlalchemy import create_engine

    from prefect_failure_insights.store.migrations import ensure_schema

    rng = Random(29)

    def unit(v: list[float]) -> list[float]:
        n = math.sqrt(sum(x * x for x in v))
        return [x / n for x in v]

    centres = [[rng.gauss(0, 1) for _ in range(dimensions)] for _ in range(max(1, n_patterns // 50))]

    def member() -> list[float]:
        c = rng.choice(centres)
        return unit([x + rng.gauss(0, 0.25) for x in c])

    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="fi-vectors-"))
    engine = create_engine(f"sqlite:///{tmp / 'summaries.db'}")
    ensure_schema(engine)
    _index_vectors(engine, {f"p{i}": member() for i in range(n_patterns)}, _Given.model)
    print(f"\n== Embedding lookup at {n_patterns:,} distinct stored patterns, {dimensions} dimensions (synthetic: "
          f"the index's worst case, one pattern per summary), SQLite file; seeded in "
          f"{time.perf_counter() - started:.0f} s ==")
    given = {f"q{i}": member() for i in range(n_lookups)}
    queries = [(text, text) for text in given]
    times, found = asyncio.run(_lookups(engine, _Given(given), queries))
    _report("ours: LSH bands, one query (no HTTP)", times, found, _scans(engine, _Given.model, queries, 0.9),
            n_patterns)


def main() -> None:
    n = int(sys.argv[sys.argv.index("--summaries") + 1]) if "--summaries" in sys.argv else 100_000
    k = int(sys.argv[sys.argv.index("--lookups") + 1]) if "--lookups" in sys.argv else 200
    url = sys.argv[sys.argv.index("--embeddings") + 1] if "--embeddings" in sys.argv else None
    model = (sys.argv[sys.argv.index("--embedding-model") + 1] if "--embedding-model" in sys.argv
             else "all-MiniLM-L6-v2")
    precision((url, model) if url else None)
    if "--precision-only" in sys.argv:
        return
    engine, known, rng = seed(n)
    lookup(engine, rng, k)
    if url:
        lookup_embeddings(engine, known, rng, url, model, k)
    if "--synthetic" in sys.argv:
        lookup_synthetic(n, k)


if __name__ == "__main__":
    main()
