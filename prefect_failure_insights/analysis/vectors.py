"""Embedding vectors of failure patterns: stored compactly, compared by cosine, and indexed by
random-hyperplane LSH (SimHash), so that a lookup among 100,000 stored patterns is one indexed
query on the same band table as the lexical index, not a scan.

Each band is `EMBEDDING_ROWS` sign bits: on which side of a random hyperplane through the
origin the vector lies. Two vectors at angle θ agree on a bit with probability 1 - θ/π, so
vectors of cosine 0.9 share a band far more often than vectors of cosine 0.3. The hyperplanes
are drawn from a generator seeded by the vector's dimension: the same for every process and
release, so stored bands stay comparable. Buckets carry the model's name: two models' vectors
never meet.
"""

from __future__ import annotations

import hashlib
import math
import sys
from array import array
from random import Random

from prefect_failure_insights.defaults import EMBEDDING_BAND_BASE, EMBEDDING_BANDS, EMBEDDING_ROWS


def hyperplanes(dimensions: int) -> list[list[float]]:
    """The index's random hyperplanes for vectors of ``dimensions`` (about 20 ms for 384: a caller
    banding many vectors draws them once)."""
    rng = Random(f"failure-insights-simhash-{dimensions}")
    return [[rng.gauss(0.0, 1.0) for _ in range(dimensions)] for _ in range(EMBEDDING_BANDS * EMBEDDING_ROWS)]


def vector_bands(vector: list[float], model: str, planes: list[list[float]] | None = None) -> list[tuple[int, str]]:
    """The vector's LSH bands: ``(band, bucket)`` pairs, bands numbered from `EMBEDDING_BAND_BASE`
    (``planes``: `hyperplanes` of the vector's dimensions, drawn here when not given)."""
    planes = planes if planes is not None else hyperplanes(len(vector))
    bits = [sum(a * b for a, b in zip(plane, vector)) >= 0 for plane in planes]
    out = []
    for band in range(EMBEDDING_BANDS):
        rows = "".join("1" if b else "0" for b in bits[band * EMBEDDING_ROWS:(band + 1) * EMBEDDING_ROWS])
        out.append((EMBEDDING_BAND_BASE + band, hashlib.blake2b(f"{model}\0{rows}".encode(),
                                                                  digest_size=8).hexdigest()))
    return out


def pack(vector: list[float]) -> bytes:
    """Float32, little-endian: 1.5 kB for 384 dimensions."""
    values = array("f", vector)
    if sys.byteorder == "big":
        values.byteswap()
    return values.tobytes()


def unpack(data: bytes) -> list[float]:
    values = array("f")
    values.frombytes(data)
    if sys.byteorder == "big":
        values.byteswap()
    return values.tolist()


def cosine(a: list[float], b: list[float]) -> float:
    """Cosine similarity; 0 for vectors of different dimensions (another model's)."""
    if len(a) != len(b):
        return 0.0
    dot = math.fsum(x * y for x, y in zip(a, b))
    norms = math.sqrt(math.fsum(x * x for x in a) * math.fsum(y * y for y in b))
    return dot / norms if norms else 0.0
