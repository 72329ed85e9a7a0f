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

Usage: python bench/similarity.py [--summaries 100000] [--lookups 200]
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


def _scores(pairs: list[dict]) -> list[tuple[float, bool]]:
    from prefect_failure_insights.analysis.similarity import jaccard, pattern, shingles

    return [(jaccard(shingles(pattern(p["a"].get("exception_type"), p["a"]["error"])),
                     shingles(pattern(p["b"].get("exception_type"), p["b"]["error"]))), bool(p["similar"]))
            for p in pairs]


def _prf(scored: list[tuple[float, bool]], threshold: float) -> tuple[float, float, float, int]:
    tp = sum(s >= threshold and y for s, y in scored)
    fp = sum(s >= threshold and not y for s, y in scored)
    fn = sum(s < threshold and y for s, y in scored)
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    # F0.5: a wrong link costs the reader more than a missing one
    return p, r, (1.25 * p * r / (0.25 * p + r) if p + r else 0.0), tp + fp


def precision() -> None:
    from prefect_failure_insights.defaults import SIMILARITY_THRESHOLD

    if not PAIRS.exists():
        print(f"no labelled pairs at {PAIRS}: precision not measured")
        return
    pairs = [json.loads(line) for line in PAIRS.read_text().splitlines() if line.strip()]
    tune, frozen = _split(pairs)
    grid = [round(0.2 + 0.05 * i, 2) for i in range(13)]
    folds = [tune[i::5] for i in range(5)]
    cv = []
    for i, fold in enumerate(folds):
        rest = [p for j, f in enumerate(folds) if j != i for p in f]
        best = max(grid, key=lambda t: (_prf(_scores(rest), t)[2], t))
        cv.append((best, *_prf(_scores(fold), best)))
    linked = sum(c[4] for c in cv)
    precision_cv = sum(c[1] * c[4] for c in cv) / linked if linked else 1.0
    print(f"== Similar-failure links on {len(pairs)} labelled pairs "
          f"({sum(p['similar'] for p in pairs)} similar), {len(tune)} tuning / {len(frozen)} frozen ==")
    print(f"cross-validated on the tuning part (5 folds): precision {precision_cv:.0%} over {linked} links; "
          f"thresholds chosen {sorted(c[0] for c in cv)}")
    chosen = max(grid, key=lambda t: (_prf(_scores(tune), t)[2], t))
    print(f"  threshold with the best F0.5 on the whole tuning part: {chosen:.2f} (the default: "
          f"{SIMILARITY_THRESHOLD:.2f})")
    for t in sorted({0.3, 0.4, SIMILARITY_THRESHOLD, 0.6}):
        p, r, f1, n = _prf(_scores(tune), t)
        print(f"  tuning part, threshold {t:.2f}: precision {p:.0%} recall {r:.0%} ({n} links)")
    from prefect_failure_insights.analysis.fingerprint import error_signature

    exact = [(1.0 if error_signature(p["a"]["error"], p["a"].get("exception_type"))
              == error_signature(p["b"]["error"], p["b"].get("exception_type")) else 0.0, bool(p["similar"]))
             for p in tune]
    p, r, _f, n = _prf(exact, 1.0)
    print(f"  baseline (the exact signature before this change, no flow or task): precision {p:.0%} recall "
          f"{r:.0%} ({n} links)")
    if "--frozen" in sys.argv:
        p, r, f1, n = _prf(_scores(frozen), SIMILARITY_THRESHOLD)
        print(f"FROZEN part, threshold {SIMILARITY_THRESHOLD:.2f} (the default): precision {p:.0%} recall {r:.0%} "
              f"({n} links of {len(frozen)} pairs)")
    else:
        print("frozen part: not scored (run with --frozen, once, at the end)")


def lookup(n_summaries: int, n_lookups: int) -> None:
    from sqlalchemy import create_engine, insert, select

    from prefect_failure_insights.analysis.similarity import bands, jaccard, pattern, pattern_id, shingles
    from prefect_failure_insights.analysis.similarity import similar_patterns
    from prefect_failure_insights.defaults import SIMILAR_LINKS, SIMILARITY_CANDIDATES, SIMILARITY_THRESHOLD
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

    def pct(values: list[float], q: float) -> float:
        return sorted(values)[min(len(values) - 1, int(q * len(values)))]

    print(f"{'':<34} {'p50 ms':>8} {'p95 ms':>8}")
    print(f"{'ours: LSH bands, one indexed query':<34} {statistics.median(ours):>8.1f} {pct(ours, 0.95):>8.1f}"
          f"   ({n_lookups} lookups)")
    print(f"{'baseline: scan every summary':<34} {statistics.median(scans):>8.1f} {pct(scans, 0.95):>8.1f}"
          f"   ({len(scans)} lookups)")
    print(f"recall of the index against the scan (similar patterns found): {recall_hits}/{recall_all}")


def main() -> None:
    n = int(sys.argv[sys.argv.index("--summaries") + 1]) if "--summaries" in sys.argv else 100_000
    k = int(sys.argv[sys.argv.index("--lookups") + 1]) if "--lookups" in sys.argv else 200
    precision()
    lookup(n, k)


if __name__ == "__main__":
    main()
