"""Summary rows on a real SQLite file and a real PostgreSQL: one row per run, always."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import update

from prefect_failure_insights.exceptions import SchemaVersionError, StorageError
from prefect_failure_insights.models import (
    EvidenceRef,
    FailureAnalysis,
    FlowRunInfo,
    LLMUsage,
    Summary,
)
from prefect_failure_insights.store import migrations
from prefect_failure_insights.store.summaries import (
    claim_summary,
    get_summary,
    list_summaries,
    release_summary,
    store_summary,
)
from prefect_failure_insights.store.tables import summaries
from prefect_failure_insights.testing.prefect_server import free_port


def _run(run_id: str = "11111111-0000-4000-8000-000000000001", flow: str = "orders") -> FlowRunInfo:
    return FlowRunInfo(id=run_id, name="brave-otter", flow_name=flow, state="Failed", tags=["prod"],
                       end_time=datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc))


def _summary(run: FlowRunInfo, title: str = "Vendor down", category: str = "THIRD_PARTY_SYSTEM") -> Summary:
    return Summary(
        run=run,
        analysis=FailureAnalysis(title=title, what_happened="x", how_to_fix=["y"], root_cause="z",
                                 category=category, confidence=0.8),
        status="llm",
        usage=LLMUsage(model="m", prompt_tokens=10, completion_tokens=5, latency_ms=12.5, prompt_version="summary-v1"),
        evidence=EvidenceRef(text="L1 ...", tokens=3),
    )


def test_schema_is_created_once_and_versioned(engine) -> None:
    migrations.ensure_schema(engine)  # idempotent
    with engine.begin() as conn:
        conn.execute(update(migrations.schema_table).values(version=migrations.SCHEMA_VERSION + 1))
    with pytest.raises(SchemaVersionError, match="upgrade prefect-failure-insights"):
        migrations.ensure_schema(engine)


def test_claim_save_exists_regenerate(engine) -> None:
    run = _run()
    assert claim_summary(engine, run, "summarizer-a").result == "claimed"
    assert get_summary(engine, run.id) is None  # pending rows are not summaries yet
    assert claim_summary(engine, run, "summarizer-b").result == "in_progress"
    assert store_summary(engine, _summary(run), "summarizer-a").action == "created"
    assert claim_summary(engine, run, "summarizer-c").result == "exists"

    regen = claim_summary(engine, run, "summarizer-d", regenerate=True)
    assert regen.result == "claimed"
    assert get_summary(engine, run.id).analysis.title == "Vendor down"  # old one readable meanwhile
    assert store_summary(engine, _summary(run, title="Vendor down again"), "summarizer-d").action == "replaced"
    got = get_summary(engine, run.id)
    assert got.analysis.title == "Vendor down again" and got.delivery.regenerated
    assert got.usage.prompt_tokens == 10 and got.usage.model == "m" and got.usage.prompt_version == "summary-v1"
    assert list_summaries(engine)[1] == 1


def test_concurrent_claims_yield_exactly_one_winner(engine) -> None:
    """Two triggers at once for the same run must give one row and one summarizer doing the work."""
    run = _run()
    results: list[str] = []
    barrier = threading.Barrier(8)

    def worker(i: int) -> None:
        barrier.wait()
        results.append(claim_summary(engine, run, f"summarizer-{i}").result)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["claimed"] + ["in_progress"] * 7
    with engine.connect() as conn:
        assert conn.execute(summaries.select()).all().__len__() == 1


def test_a_stale_claim_is_taken_over_and_the_old_holder_loses(engine) -> None:
    run = _run()
    claim_summary(engine, run, "dead-summarizer")
    with engine.begin() as conn:
        conn.execute(update(summaries).values(
            claimed_at=datetime.now(timezone.utc) - timedelta(hours=1)))
    assert claim_summary(engine, run, "new-summarizer").result == "claimed"
    assert store_summary(engine, _summary(run), "dead-summarizer").action == "lost"
    assert store_summary(engine, _summary(run), "new-summarizer").action == "created"


def test_release_removes_only_an_unfinished_claim(engine) -> None:
    run = _run()
    claim_summary(engine, run, "a")
    release_summary(engine, run.id, "a")
    assert claim_summary(engine, run, "b").result == "claimed"
    store_summary(engine, _summary(run), "b")
    release_summary(engine, run.id, "b")  # a finished summary is never deleted
    assert get_summary(engine, run.id) is not None


def test_list_filters_and_total(engine) -> None:
    for i in range(5):
        run = _run(f"11111111-0000-4000-8000-00000000000{i}", flow="orders" if i % 2 else "billing")
        claim_summary(engine, run, "s")
        store_summary(engine, _summary(run, category="INPUT_DATA_QUALITY" if i < 2 else "THIRD_PARTY_SYSTEM"), "s")
    rows, total = list_summaries(engine, limit=2)
    assert total == 5 and len(rows) == 2
    assert list_summaries(engine, flow="orders")[1] == 2
    assert list_summaries(engine, category="INPUT_DATA_QUALITY")[1] == 2
    future = datetime.now(timezone.utc) + timedelta(days=1)
    assert list_summaries(engine, since=future)[1] == 0


def test_unreachable_database_is_a_clear_storage_error() -> None:
    from sqlalchemy import create_engine

    engine = create_engine(f"postgresql+psycopg://etl:hunter2@127.0.0.1:{free_port()}/x",
                           connect_args={"connect_timeout": 2})
    with pytest.raises(StorageError) as info:
        migrations.ensure_schema(engine)
    message = str(info.value)
    assert "hunter2" not in message
    assert "Check that the database is running" in message


def test_a_provisional_summary_is_readable_claimed_and_replaced_in_place(engine) -> None:
    from prefect_failure_insights.store.summaries import live_claims, summarized

    run = _run()
    claim = claim_summary(engine, run, "summarizer-a")
    first = store_summary(engine, _summary(run, "Provisional: vendor down").model_copy(update={"status": "provisional"}),
                          "summarizer-a")
    assert first.action == "created" and get_summary(engine, run.id).status == "provisional"
    assert summarized(engine, [run.id]) == set()  # not final: the reconciler still owes it one
    assert claim_summary(engine, run, "summarizer-b").result == "in_progress"  # still claimed, still live
    assert live_claims(engine) == {run.id: claim.claimed_by}
    final = store_summary(engine, _summary(run, "Vendor down"), "summarizer-a")
    assert final.summary.status == "llm" and final.summary.analysis.title == "Vendor down"
    assert final.summary.delivery.regenerated_count == 0  # the provisional one is no earlier summary
    assert summarized(engine, [run.id]) == {run.id}


def test_a_provisional_summary_whose_summarizer_died_stays_and_is_summarized_again(engine) -> None:
    from prefect_failure_insights.store.summaries import release_expired

    run = _run()
    claim_summary(engine, run, "dead")
    store_summary(engine, _summary(run).model_copy(update={"status": "provisional"}), "dead")
    with engine.begin() as conn:
        conn.execute(update(summaries).values(claimed_at=datetime.now(timezone.utc) - timedelta(seconds=31)))
    assert release_expired(engine) == [run.id]
    assert get_summary(engine, run.id).status == "provisional"  # kept, saying the final step is missing
    assert claim_summary(engine, run, "next").holds


def test_a_run_that_failed_again_after_a_retry_is_summarized_again_once(engine) -> None:
    run = _run("11111111-0000-4000-8000-000000000031")
    claim_summary(engine, run, "a")
    store_summary(engine, _summary(run), "a")
    assert claim_summary(engine, run, "b").result == "exists"  # the same failure: nothing to do
    again = run.model_copy(update={"run_count": 2, "auto_retries": 1})
    claim = claim_summary(engine, again, "c")
    assert claim.result == "claimed" and claim.replaces_summary and not claim.row_is_new
    assert claim_summary(engine, again, "d").result == "in_progress"  # the second trigger of the new failure
    stored = store_summary(engine, _summary(again, title="Vendor down again"), "c")
    assert stored.action == "replaced" and stored.summary.run.run_count == 2 and stored.summary.run.auto_retries == 1
    assert claim_summary(engine, again, "e").result == "exists"


def _decision(verdict: str = "not_retried", rule: str = "not-transient", attempt: int = 1, variant: int = 0):
    from prefect_failure_insights.models import RetryDecision

    return RetryDecision(decision=verdict, rule=rule, reason=f"because {rule} {variant} (rule {rule})",
                         transience="PERMANENT", attempt=attempt, retries=1 if verdict == "retried" else 0,
                         max_retries=2)


def test_a_decision_is_noted_in_a_finished_summary_only(engine) -> None:
    from prefect_failure_insights.store.summaries import note_decision

    run = _run("11111111-0000-4000-8000-000000000032")
    assert note_decision(engine, run.id, _decision()) == (None, "no_row")
    claim_summary(engine, run, "a")
    assert note_decision(engine, run.id, _decision()) == (None, "no_row")  # pending: nothing to note it in
    store_summary(engine, _summary(run), "a")
    noted, action = note_decision(engine, run.id, _decision("retried", "transient"))
    assert action == "recorded" and noted.retry.retried and noted.retry.rule == "transient"
    assert noted.run.auto_retries == 1 and noted.analysis.title == "Vendor down" and noted.retry.decided_at
    assert get_summary(engine, run.id).retry == noted.retry  # the row holds it


def test_a_later_decision_on_the_same_failure_never_turns_retried_into_not_retried(engine) -> None:
    """Issue 29: the summary is made again in place when late logs arrive, which starts the retry flow
    again; that run finds the run Scheduled (retried) and must leave "retried" alone."""
    from prefect_failure_insights.store.summaries import note_decision

    run = _run("11111111-0000-4000-8000-000000000033")
    claim_summary(engine, run, "a")
    store_summary(engine, _summary(run), "a")
    assert note_decision(engine, run.id, _decision("retried", "transient"))[1] == "recorded"
    assert note_decision(engine, run.id, _decision("retried", "transient"))[1] == "unchanged"  # the claim: once
    assert note_decision(engine, run.id, _decision(rule="not-failed"))[1] == "unchanged"
    assert note_decision(engine, run.id, _decision(rule="not-transient"))[1] == "unchanged"
    # The summary made again in place (late logs) keeps the decision on its failure.
    claim_summary(engine, run, "b", regenerate=True)
    stored = store_summary(engine, _summary(run, title="Vendor down, complete logs"), "b")
    assert stored.summary.retry.retried and stored.summary.analysis.title == "Vendor down, complete logs"
    # Only the server refusing that very retry replaces it; the run's next failure gets its own decision.
    refused, action = note_decision(engine, run.id, _decision(rule="refused"))
    assert action == "recorded" and refused.run.auto_retries == 0  # the refused retry is not counted
    assert note_decision(engine, run.id, _decision(rule="not-transient", attempt=2))[1] == "recorded"
    assert note_decision(engine, run.id, _decision("retried", "transient", attempt=1))[1] == "unchanged"
    assert get_summary(engine, run.id).retry.attempt == 2


def test_a_skip_never_replaces_a_decision_on_the_failure_but_a_new_reason_does(engine) -> None:
    from prefect_failure_insights.store.summaries import note_decision

    run = _run("11111111-0000-4000-8000-000000000034")
    claim_summary(engine, run, "a")
    store_summary(engine, _summary(run), "a")
    assert note_decision(engine, run.id, _decision(rule="not-failed"))[1] == "recorded"  # better than nothing
    assert note_decision(engine, run.id, _decision(rule="not-transient"))[1] == "recorded"
    assert note_decision(engine, run.id, _decision(rule="earlier-attempt"))[1] == "unchanged"
    assert note_decision(engine, run.id, _decision(rule="category"))[1] == "recorded"  # a summary made again
    assert note_decision(engine, run.id, _decision(rule="category"))[1] == "unchanged"  # idempotent
    assert note_decision(engine, run.id, _decision("retried", "transient"))[1] == "recorded"


RULES = ("transient", "infra-sigterm", "not-transient", "limit", "category", "not-failed", "earlier-attempt")


def test_decisions_are_idempotent_and_their_outcome_independent_of_order(engine) -> None:
    """For any decisions on a run's failures, in any order, twice over: the row ends on the latest
    failure, "retried" if any decision retried it, a decision on the failure rather than a skip if
    there was one; and noting the stored decision again changes nothing."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from prefect_failure_insights.models import RETRY_SKIP_RULES
    from prefect_failure_insights.store.summaries import note_decision

    decision = st.builds(lambda attempt, rule, variant: _decision(
        "retried" if rule in ("transient", "infra-sigterm") else "not_retried", rule, attempt, variant),
        st.integers(1, 2), st.sampled_from(RULES), st.integers(0, 2))
    counter = iter(range(10_000))

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(decision, min_size=1, max_size=6), st.randoms(use_true_random=False))
    def check(decisions, rnd) -> None:
        outcomes = []
        for order in (decisions, rnd.sample(decisions, len(decisions))):
            run = _run(f"22222222-0000-4000-8000-{next(counter):012d}")
            claim_summary(engine, run, "a")
            store_summary(engine, _summary(run), "a")
            for d in [*order, *order]:
                note_decision(engine, run.id, d)
            final = get_summary(engine, run.id).retry
            assert note_decision(engine, run.id, final)[1] == "unchanged"
            outcomes.append((final.attempt, final.decision, final.rule in RETRY_SKIP_RULES))
        last = max(d.attempt for d in decisions)
        on_last = [d for d in decisions if d.attempt == last]
        assert outcomes[0] == outcomes[1] == (
            last, "retried" if any(d.retried for d in on_last) else "not_retried",
            all(d.rule in RETRY_SKIP_RULES for d in on_last))

    check()
