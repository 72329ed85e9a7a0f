"""Answers you can check (issue 16): every claim cites evidence lines, checked by code against the
evidence sent; the result is in the row and on the card. Three answers of the test LLM: faithful,
citing lines that were not sent, and citing nothing."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


def _final(e2e, scenario: str = "vendor"):
    run_id = e2e.run_pipeline(scenario)
    summary = e2e.wait_for_row(e2e.sqlite_engine(), run_id)
    (card,) = e2e.summary_artifacts(run_id)
    return summary, card.data


def test_a_faithful_answer_is_verified_and_its_cited_lines_are_on_the_card(e2e) -> None:
    summary, card = _final(e2e)
    v, a = summary.verification, summary.analysis
    assert summary.status == "llm" and v.checked and v.root_cause_verified and not v.unverified
    assert [c.claim for c in v.claims] == ["what happened", "root cause", "fix 1", "fix 2"]
    root = summary.evidence.root_error_line
    assert a.citations.root_cause[0].line == root and a.confidence == 0.9 and a.evidence_status == "confirmed"
    assert card.count(f"- L{root}: `") == 1 and "**Citations checked:** 4 of 4 claims" in card
    assert "Unverified" not in card


def test_an_answer_citing_lines_that_were_not_sent_is_marked_and_its_confidence_capped(e2e) -> None:
    e2e.fake.reset(default="invented_lines")
    summary, card = _final(e2e)
    v, a = summary.verification, summary.analysis
    assert v.checked and not v.root_cause_verified and len(v.unverified) == len(v.claims) == 4
    assert all("L987654 was not in the evidence sent" in c.problems for c in v.claims)
    assert a.confidence == 0.5 and v.confidence_capped_from == 0.9 and a.evidence_status == "insufficient"
    assert "*(unverified: L987654 was not in the evidence sent" in card
    assert "Confidence capped at 50% (the answer said 90%)" in card and "**Open questions:**" in card


def test_an_answer_citing_nothing_is_unverified_insufficient_with_an_open_question(e2e) -> None:
    e2e.fake.reset(default="no_citations")
    summary, card = _final(e2e)
    v, a = summary.verification, summary.analysis
    assert v.checked and v.unverified and all(c.problems == ["cites no evidence line"] for c in v.claims)
    assert a.evidence_status == "insufficient" and a.open_questions and a.confidence == 0.5
    assert "*(unverified: cites no evidence line)*" in card and "**Citations checked:** 0 of 4" in card


def test_a_similar_failure_in_another_flow_is_linked_from_the_card(e2e) -> None:
    first, _ = _final(e2e, "vendor")
    summary, card = _final(e2e, "carrier")
    similar = summary.similar
    assert similar.checked and similar.count >= 1 and "e2e-vendor-sync" in similar.flows, similar
    assert first.run.id in {r.flow_run_id for r in similar.most_similar}
    linked = next(r for r in similar.most_similar if r.flow_run_id == first.run.id)
    assert f"/artifacts/artifact/{linked.artifact_id}" in card and "**Similar to" in card
    assert summary.recurrence.pattern.startswith("RuntimeError | ")


@pytest.fixture
def embeddings_block(e2e):
    """The default LLM block naming the test server's embedding model, restored afterwards."""
    from prefect_failure_insights.blocks import LLMCredentials

    plain = LLMCredentials(base_url=e2e.fake.url, model="fake-model", timeout=3, max_retries=1)
    e2e.save_block(plain.model_copy(update={"embedding_model": "fake-embed", "embedding_threshold": 0.8}), "default")
    try:
        yield
    finally:
        e2e.save_block(plain, "default")


def test_with_an_embedding_model_similar_failures_are_also_found_by_embeddings(e2e, embeddings_block) -> None:
    first, _ = _final(e2e, "vendor")
    summary, card = _final(e2e, "carrier")
    similar = summary.similar
    assert similar.method == "lexical+embeddings:fake-embed" and similar.fallback_reason is None, similar
    assert first.run.id in {r.flow_run_id for r in similar.most_similar}
    assert "Found by wording and by embeddings (`fake-embed`)" in card
    # Each distinct pattern was embedded through the block's endpoint, redacted like the prompt.
    assert summary.recurrence.pattern in e2e.fake.embedding_inputs


def test_an_embeddings_endpoint_that_fails_leaves_the_lexical_lookup_and_says_why(e2e, embeddings_block) -> None:
    from prefect_failure_insights.blocks import LLMCredentials

    # A model no pattern was embedded by yet (a stored embedding is reused, not asked for again).
    e2e.save_block(LLMCredentials(base_url=e2e.fake.url, model="fake-model", timeout=3, max_retries=1,
                                  embedding_model="never-served"), "default")
    e2e.fake.embeddings_behaviour = "404"
    first, _ = _final(e2e, "vendor")
    summary, _card = _final(e2e, "carrier")
    assert summary.status == "llm" and summary.similar.method == "lexical"
    assert "answered HTTP 404" in summary.similar.fallback_reason
    assert first.run.id in {r.flow_run_id for r in summary.similar.most_similar}
