"""Similar failures: patterns across flows, their similarity, and the indexed lookup on real databases."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from prefect_failure_insights.analysis.similarity import (
    bands,
    find_similar_failures,
    jaccard,
    pattern,
    pattern_id,
    shingles,
    similar_patterns,
)
from prefect_failure_insights.models import (
    EvidenceRef,
    FailureAnalysis,
    FlowRunInfo,
    Recurrence,
    Summary,
)
from prefect_failure_insights.store.summaries import claim_summary, store_summary

VENDOR = "requests.exceptions.HTTPError"


def test_a_pattern_masks_identifiers_and_keeps_no_flow_or_task() -> None:
    a = pattern(VENDOR, "503 Server Error: Service Unavailable for url: https://api.a.example/v1/orders?page=7")
    b = pattern(VENDOR, "503 Server Error: Service Unavailable for url: https://api.a.example/v1/orders?page=9")
    assert a == b and a.startswith("HTTPError | ")
    assert "type:httperror" in shingles(a)


def test_same_cause_other_identifiers_is_similar_other_cause_same_type_is_not() -> None:
    s503 = shingles(pattern(VENDOR, "503 Server Error: Service Unavailable for url: https://carrier.example/track"))
    s503b = shingles(pattern(VENDOR, "503 Server Error: Service Unavailable for url: https://rates.example/v2/latest"))
    s401 = shingles(pattern(VENDOR, "401 Client Error: Unauthorized for url: https://carrier.example/track"))
    assert jaccard(s503, s503b) >= 0.5 > jaccard(s503, s401)


def test_similar_patterns_share_a_band_and_unrelated_ones_rarely_do() -> None:
    base = pattern("botocore.exceptions.ClientError", "An error occurred (AccessDenied) when calling the PutObject "
                   "operation: Access Denied")
    near = pattern("botocore.exceptions.ClientError", "An error occurred (AccessDenied) when calling the GetObject "
                   "operation: Access Denied")
    far = pattern("KeyError", "'billing_country'")
    b, n, f = (set(bands(shingles(x))) for x in (base, near, far))
    assert b & n and not b & f
    assert similar_patterns(base, {"n": near, "f": far}, 0.5).keys() == {"n"}


def _summary(i: int, flow: str, error: str) -> Summary:
    text = pattern(VENDOR, error)
    run = FlowRunInfo(id=f"00000000-0000-4000-8000-{i:012d}", name=f"run-{i}", flow_name=flow, state="Failed",
                      end_time=datetime(2026, 12, 1, i, 0, tzinfo=timezone.utc))
    return Summary(run=run, analysis=FailureAnalysis(title=f"failure {i}", what_happened="x", how_to_fix=["y"],
                                                     root_cause="z", category="THIRD_PARTY_SYSTEM", confidence=0.8),
                   status="llm", evidence=EvidenceRef(text="L1 x"),
                   recurrence=Recurrence(pattern=text, pattern_id=pattern_id(text)))


def test_the_lookup_finds_earlier_similar_failures_in_other_flows_only(database) -> None:
    engine = database.engine
    earlier = [_summary(1, "carrier-sync", "503 Server Error: Service Unavailable for url: https://c.example/a"),
               _summary(2, "fx-rates", "503 Server Error: Service Unavailable for url: https://r.example/b"),
               _summary(3, "ads", "401 Client Error: Unauthorized for url: https://ads.example/c")]
    for s in earlier:
        asyncio.run(find_similar_failures(database, s.recurrence, s.run.id))
        claim_summary(engine, s.run, "a")
        store_summary(engine, s, "a")
    new = _summary(4, "shipments", "503 Server Error: Service Unavailable for url: https://s.example/d")
    found = asyncio.run(find_similar_failures(database, new.recurrence, new.run.id))
    assert found.checked and found.count == 2 and found.flows == ["carrier-sync", "fx-rates"]
    assert {r.flow_run_id for r in found.most_similar} == {earlier[0].run.id, earlier[1].run.id}
    assert found.first_seen.hour == 1 and found.last_seen.hour == 2
    alone = _summary(5, "ads", "ValueError: year 20261 is out of range")
    assert asyncio.run(find_similar_failures(database, alone.recurrence, alone.run.id)).count == 0


def test_the_batch_groups_similar_errors_under_the_most_frequent_signature(make_row) -> None:
    from prefect_failure_insights.analysis.similarity import group_similar
    from prefect_failure_insights.reporting.batch import patterns

    rows = [make_row(1, "503 Server Error: Service Unavailable for url: https://a.example/x", VENDOR),
            make_row(2, "503 Server Error: Service Unavailable for url: https://a.example/x", VENDOR),
            make_row(3, "503 Server Error: Service Unavailable for url: https://b.example/y?page=2", VENDOR),
            make_row(4, "401 Client Error: Unauthorized for url: https://a.example/x", VENDOR)]
    grouped = group_similar(rows)
    assert grouped[0].classification.group is None  # the representative
    assert grouped[2].classification.group == rows[0].classification.signature != rows[2].classification.signature
    assert grouped[3].classification.group is None  # a 401 is not a 503
    assert sorted(p["count"] for p in patterns(grouped)) == [1, 3]
