"""Similar failures: near duplicates across flows and deployments, by a lexical similarity.

The *pattern* of a failure is its exception type and its error's own lines (the exception line
of a traceback and up to two detail lines after it, frames dropped) with ids, times, URLs,
paths and numbers masked as the evidence's templates mask them (quoted values kept): no flow,
no task, so the same vendor outage in two flows has one pattern. Two patterns are
similar when the Jaccard similarity of their word shingles (words and word pairs, the exception
type as a token of its own) reaches `SIMILARITY_THRESHOLD`.

Looking them up among 100,000 stored summaries must cost one indexed query, not a scan: each
distinct pattern is stored once with its MinHash signature cut into `SIMILARITY_BANDS` bands
(locality-sensitive hashing); the candidates are the patterns that share a band, re-ranked by
their exact similarity.

With an embedding model on the LLM block (issue 29), two patterns are also similar when the cosine
of their embeddings reaches the block's ``embedding_threshold``: the same failure worded
otherwise. Looked up the same way (`vectors`: each distinct pattern embedded once per model,
random-hyperplane bands); when the embeddings endpoint fails, the lexical lookup answers alone
and the summary says why. Measured on the labelled pairs with all-MiniLM-L6-v2, a small model
puts hard negatives above hard positives: embeddings add links, never replace the lexical ones.
"""

from __future__ import annotations

import hashlib
import re
import struct

from prefect_failure_insights.analysis import vectors
from prefect_failure_insights.defaults import (
    SIMILAR_LINKS,
    SIMILARITY_BANDS,
    SIMILARITY_CANDIDATES,
    SIMILARITY_ROWS,
    SIMILARITY_THRESHOLD,
)
from prefect_failure_insights.evidence.signals import short_type, template
from prefect_failure_insights.exceptions import EmbeddingsUnavailable
from prefect_failure_insights.llm.embeddings import Embedder
from prefect_failure_insights.models import ClassifiedError, Evidence, FailedRun, Recurrence, SimilarFailures
from prefect_failure_insights.store import Database
from prefect_failure_insights.store import similar as similar_store

_WORD = re.compile(r"[a-z0-9_]+(?:'[a-z0-9_]+)?")
_MASK = re.compile(r"<[a-z]+>")
_PRIME = (1 << 61) - 1
_SEEDS = [(hashlib.blake2b(f"a{i}".encode(), digest_size=8).digest(),
           hashlib.blake2b(f"b{i}".encode(), digest_size=8).digest()) for i in range(SIMILARITY_BANDS * SIMILARITY_ROWS)]
_COEFFS = [(struct.unpack("<Q", a)[0] % _PRIME or 1, struct.unpack("<Q", b)[0] % _PRIME) for a, b in _SEEDS]


_FRAME = re.compile(r'^\s*(?:File "|at [\w.$]+\(|Traceback \(most recent call last\)|\^+\s*$|~+\^*\s*$|\.\.\.)')
_EXCEPTION_AT = re.compile(r"^\s*(?:[\w.]+\.)?[A-Z]\w*(?:Error|Exception|Exit|Interrupt|Failure|Fault|Timeout)\b"
                           r"(?::|$)")
#: Lines of an error kept in its pattern: the error's own line and the details after it.
PATTERN_LINES = 3


def error_lines(message: str) -> list[str]:
    """The lines of an error text that say what went wrong: traceback frames and the code lines
    under them dropped, starting at the exception's own line (``Type: message``, the last one in a
    traceback) when there is one, else at the first line; at most `PATTERN_LINES`."""
    lines, code_next = [], False
    for raw in message.splitlines():
        if not raw.strip():
            continue
        if _FRAME.match(raw):
            code_next = raw.lstrip().startswith("File ")
            continue
        if code_next and raw.startswith((" ", "\t")):
            code_next = False
            continue
        code_next = False
        lines.append(raw.strip())
    at = max((i for i, line in enumerate(lines) if _EXCEPTION_AT.match(line)), default=0)
    return lines[at:at + PATTERN_LINES]


def pattern(exception_type: str | None, message: str) -> str:
    """The failure's pattern (see the module docstring), e.g. ``KeyError | KeyError: 'amount' at row <n>``."""
    lines = [template(line, mask_strings=False) for line in error_lines(message)]
    return " | ".join(filter(None, [short_type(exception_type), " / ".join(lines)]))


def failure_pattern(evidence: Evidence, failed: FailedRun) -> str:
    """The pattern of a summarized failure: its root error, else its final state message."""
    message = evidence.exception_message or evidence.root_error or failed.run.state_message or ""
    return pattern(evidence.exception_type, message)


def pattern_id(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def shingles(text: str) -> set[str]:
    """Words (masks and case dropped) and adjacent word pairs of ``text``; its exception type
    (before the first `` | ``) as a token of its own, so that it weighs like a word pair."""
    kind, _, rest = text.partition(" | ") if " | " in text else ("", "", text)
    words = _WORD.findall(_MASK.sub(" ", rest.lower()))
    out = set(words) | {f"{a} {b}" for a, b in zip(words, words[1:])}
    if kind:
        out.add(f"type:{kind.lower()}")
    return out


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def _hash(token: str) -> int:
    return struct.unpack("<Q", hashlib.blake2b(token.encode(), digest_size=8).digest())[0]


def bands(tokens: set[str]) -> list[tuple[int, str]]:
    """The pattern's LSH bands: ``(band, bucket)`` pairs, one per band of its MinHash signature."""
    if not tokens:
        return []
    hashes = [_hash(t) for t in tokens]
    signature = [min((a * h + b) % _PRIME for h in hashes) for a, b in _COEFFS]
    out = []
    for band in range(SIMILARITY_BANDS):
        rows = signature[band * SIMILARITY_ROWS:(band + 1) * SIMILARITY_ROWS]
        out.append((band, hashlib.blake2b(repr(rows).encode(), digest_size=8).hexdigest()))
    return out


def similar_patterns(text: str, candidates: dict[str, str], threshold: float) -> dict[str, float]:
    """Of the candidate patterns (id -> pattern), those similar to ``text``: id -> similarity."""
    tokens = shingles(text)
    scores = {pid: jaccard(tokens, shingles(other)) for pid, other in candidates.items()}
    return {pid: score for pid, score in scores.items() if score >= threshold}


async def find_similar_failures(database: Database, recurrence: Recurrence, run_id: str, *,
                                embedder: Embedder | None = None) -> SimilarFailures:
    """Index this failure's pattern, then find the earlier summaries of similar ones (one indexed
    lookup, `SIMILARITY_CANDIDATES` re-ranked): lexically, and with an ``embedder`` also those
    whose embedding is close (worded otherwise); when the embeddings endpoint fails, lexically only,
    saying why."""
    if not recurrence.pattern or not recurrence.pattern_id:
        return SimilarFailures()
    lsh = bands(shingles(recurrence.pattern))
    await database.run(similar_store.index_pattern, recurrence.pattern_id, recurrence.pattern, bands=lsh)
    candidates = await database.run(similar_store.candidate_patterns, lsh, SIMILARITY_CANDIDATES)
    scores = similar_patterns(recurrence.pattern, candidates, SIMILARITY_THRESHOLD)
    method, fallback = "lexical", None
    if embedder is not None:
        try:
            close = await similar_by_embedding(database, embedder, recurrence.pattern_id, text=recurrence.pattern)
            scores = {pid: max(scores.get(pid, 0.0), close.get(pid, 0.0)) for pid in {*scores, *close}}
            method = f"lexical+embeddings:{embedder.model}"
        except EmbeddingsUnavailable as exc:
            fallback = str(exc)
    found = await database.run(similar_store.similar_summaries, scores, run_id, links=SIMILAR_LINKS)
    return found.model_copy(update={"method": method, "fallback_reason": fallback})


async def similar_by_embedding(database: Database, embedder: Embedder, pattern_id: str, *,
                               text: str) -> dict[str, float]:
    """The stored patterns whose embedding's cosine with this pattern's reaches the embedder's
    threshold: id -> cosine. The pattern is embedded once per model (a stored embedding is
    reused), then indexed.

    Raises:
        EmbeddingsUnavailable: it has no stored embedding and the endpoint gave none.
    """
    stored = await database.run(similar_store.stored_vector, pattern_id, embedder.model)
    vector = vectors.unpack(stored) if stored else await embedder.embed(text)
    lsh = vectors.vector_bands(vector, embedder.model)
    if stored is None:
        await database.run(similar_store.index_vector, pattern_id, embedder.model, vector=vectors.pack(vector),
                           dimensions=len(vector), bands=lsh)
    candidates = await database.run(similar_store.candidate_vectors, lsh, embedder.model,
                                    limit=SIMILARITY_CANDIDATES)
    scores = {pid: vectors.cosine(vector, vectors.unpack(packed)) for pid, packed in candidates.items()}
    return {pid: round(score, 4) for pid, score in scores.items() if score >= embedder.threshold}


def group_similar(rows: list[ClassifiedError], threshold: float = SIMILARITY_THRESHOLD) -> list[ClassifiedError]:
    """The batch's errors, each marked with its group of similar errors (the same similarity as the
    summaries' links): the most frequent signature of a group stands for it. Greedy, in order of
    frequency: a signature joins the first group whose representative it is similar to."""
    counts: dict[str, int] = {}
    texts: dict[str, str] = {}
    for row in rows:
        sig = row.classification.signature
        counts[sig] = counts.get(sig, 0) + 1
        texts.setdefault(sig, pattern(row.error.exception_type, row.error.error_text))
    heads: list[tuple[str, set[str]]] = []
    group: dict[str, str] = {}
    for sig in sorted(counts, key=lambda s: (-counts[s], s)):
        tokens = shingles(texts[sig])
        head = next((h for h, t in heads if jaccard(tokens, t) >= threshold), None)
        if head is None:
            heads.append((sig, tokens))
            head = sig
        group[sig] = head
    return [r.model_copy(update={"classification": r.classification.model_copy(update={
        "group": group[r.classification.signature] if group[r.classification.signature] != r.classification.signature
        else None})}) for r in rows]
