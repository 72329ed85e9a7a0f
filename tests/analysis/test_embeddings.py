"""Similar failures by embeddings (issue 29): the block's embedding model over real HTTP (the fake
OpenAI-compatible server's ``/embeddings``), the vector index on SQLite and PostgreSQL, and the
lexical lookup answering alone whenever the endpoint fails or misbehaves."""

from __future__ import annotations

import asyncio
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prefect_failure_insights.analysis import vectors
from prefect_failure_insights.analysis.similarity import find_similar_failures, jaccard, pattern, shingles
from prefect_failure_insights.blocks import LLMCredentials
from prefect_failure_insights.exceptions import EmbeddingsUnavailable
from prefect_failure_insights.llm.embeddings import Embedder, embedder_for, unit_vector
from prefect_failure_insights.store.summaries import claim_summary, store_summary

from .test_similarity import _summary

# Worded otherwise: most words shared, word pairs not (a lexical similarity under 0.5).
REFUSED = "could not connect to warehouse host db port 5432 connection refused by the server"
REFUSED_REWORDED = "the server refused connection: warehouse db host, port 5432, could not connect"
UNRELATED = "year 20261 is out of range"

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


def _credentials(fake, threshold: float = 0.6, **changes) -> LLMCredentials:
    return LLMCredentials(base_url=fake.url, model="fake-model", embedding_model="fake-embed",
                          embedding_threshold=threshold, **changes)


def _lookup(database, summary, credentials=None):
    async def go():
        async with embedder_for(credentials) as embedder:
            return await find_similar_failures(database, summary.recurrence, summary.run.id, embedder=embedder)

    return asyncio.run(go())


def _store(database, *summaries, credentials=None) -> None:
    for s in summaries:
        _lookup(database, s, credentials)
        claim_summary(database.engine, s.run, "a")
        store_summary(database.engine, s, "a")


@settings(max_examples=200, deadline=None)
@given(st.lists(finite, min_size=1, max_size=64).filter(lambda v: any(abs(x) > 1e-3 for x in v)))
def test_a_vector_is_stored_compactly_and_shares_every_band_with_itself(values) -> None:
    unit = unit_vector(values, "here")
    assert math.isclose(math.fsum(v * v for v in unit), 1.0, rel_tol=1e-9)
    back = vectors.unpack(vectors.pack(unit))
    assert len(back) == len(unit) and vectors.cosine(unit, back) > 0.999
    assert vectors.vector_bands(unit, "m") == vectors.vector_bands(list(unit), "m")
    # Two models' buckets never meet.
    assert not set(vectors.vector_bands(unit, "m")) & set(vectors.vector_bands(unit, "other"))


@pytest.mark.parametrize("bad", [None, [], "0.1,0.2", [float("nan"), 1.0], [0.0, 0.0], ["a", "b"], [1.0] * 9000,
                                 [float("inf")]])
def test_an_unusable_vector_is_refused_with_one_line(bad) -> None:
    with pytest.raises(EmbeddingsUnavailable, match="embeddings endpoint here"):
        unit_vector(bad, "here")


def test_close_vectors_share_bands_far_more_often_than_unrelated_ones() -> None:
    import random

    rng = random.Random(29)
    near = far = 0
    for _ in range(200):
        a = [rng.gauss(0, 1) for _ in range(96)]
        b = [x + rng.gauss(0, 0.3) for x in a]  # cosine about 0.95
        c = [rng.gauss(0, 1) for _ in range(96)]  # cosine about 0
        bands_a = set(vectors.vector_bands(a, "m"))
        near += bool(bands_a & set(vectors.vector_bands(b, "m")))
        far += bool(bands_a & set(vectors.vector_bands(c, "m")))
    assert near == 200 and far < 60


def test_the_embedder_asks_the_blocks_endpoint_for_its_embedding_model(fake_llm) -> None:
    async def go():
        async with Embedder(_credentials(fake_llm)) as embedder:
            return await embedder.embed("x" * 10_000)

    vector = asyncio.run(go())
    assert math.isclose(math.fsum(v * v for v in vector), 1.0)
    assert [len(t) for t in fake_llm.embedding_inputs] == [2000]  # bounded input
    assert fake_llm.completions() == []  # no chat request, no LLM slot


@pytest.mark.parametrize("behaviour, said", [("404", "HTTP 404"), ("500", "HTTP 500"), ("nan", "not finite"),
                                             ("empty", "unreadable answer|no usable vector"), ("slow", "did not answer within 1s")])
def test_a_misbehaving_embeddings_endpoint_is_one_clear_error(fake_llm, behaviour, said) -> None:
    fake_llm.embeddings_behaviour = behaviour

    async def go():
        async with Embedder(_credentials(fake_llm, timeout=1)) as embedder:
            return await embedder.embed("connection refused")

    with pytest.raises(EmbeddingsUnavailable, match=said):
        asyncio.run(go())


def test_no_embedding_model_no_embedder_and_anthropic_has_none() -> None:
    async def go():
        async with embedder_for(LLMCredentials()) as embedder:
            return embedder

    assert asyncio.run(go()) is None
    with pytest.raises(ValueError, match="Anthropic has no embeddings API"):
        LLMCredentials(provider="anthropic", embedding_model="x")


def test_embeddings_add_the_same_failure_worded_otherwise(database, fake_llm) -> None:
    a, b = pattern(None, REFUSED), pattern(None, REFUSED_REWORDED)
    assert jaccard(shingles(a), shingles(b)) < 0.5  # the lexical lookup misses it
    earlier = [_summary(1, "loader", REFUSED_REWORDED), _summary(2, "ads", UNRELATED)]
    _store(database, *earlier, credentials=_credentials(fake_llm))
    new = _summary(3, "exporter", REFUSED)

    assert _lookup(database, new).count == 0
    found = _lookup(database, new, _credentials(fake_llm))
    assert found.method == "lexical+embeddings:fake-embed" and found.fallback_reason is None
    assert found.count == 1 and found.flows == ["loader"]
    assert found.most_similar[0].flow_run_id == earlier[0].run.id and found.most_similar[0].similarity >= 0.6
    # A threshold above that cosine: the embeddings add nothing.
    assert _lookup(database, new, _credentials(fake_llm, threshold=0.99)).count == 0


def test_each_distinct_pattern_is_embedded_once_per_model(database, fake_llm) -> None:
    first, again = _summary(1, "loader", REFUSED), _summary(2, "loader", REFUSED)
    _lookup(database, first, _credentials(fake_llm))
    _lookup(database, again, _credentials(fake_llm))
    assert len(fake_llm.embedding_inputs) == 1
    _lookup(database, again, _credentials(fake_llm).model_copy(update={"embedding_model": "other-embed"}))
    assert len(fake_llm.embedding_inputs) == 2


@pytest.mark.parametrize("behaviour", ["404", "nan"])
def test_a_failing_endpoint_leaves_the_lexical_lookup_and_says_why(database, fake_llm, behaviour) -> None:
    _store(database, _summary(1, "loader", "503 Server Error: Service Unavailable for url: https://c.example/a"))
    fake_llm.embeddings_behaviour = behaviour
    found = _lookup(database, _summary(2, "fx", "503 Server Error: Service Unavailable for url: https://r.example/b"),
                    _credentials(fake_llm))
    assert found.count == 1 and found.method == "lexical"
    assert "embeddings endpoint" in found.fallback_reason
