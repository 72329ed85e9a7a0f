"""The resolution history in words, and what the answer without an LLM takes from it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from prefect_failure_insights.analysis.history import apply_history, history_fix
from prefect_failure_insights.defaults import ANSWER_LIST_MAX
from prefect_failure_insights.models import Citation, Citations, FailureAnalysis, Resolution, Transience
from prefect_failure_insights.reporting.history import describe_history

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)


def _fixed(i: int, outcome: str = "retry", *, automatic: bool = True, changes: list[str] | None = None) -> Resolution:
    failed = T0 + timedelta(days=i)
    return Resolution(flow_run_id=f"run-{i}", failed_at=failed, outcome=outcome, automatic=automatic,
                      resolved_at=failed + timedelta(minutes=2), changes=changes or [])


def _analysis(transience: Transience = Transience.UNKNOWN, steps: int = 2) -> FailureAnalysis:
    return FailureAnalysis(title="t", what_happened="w", how_to_fix=[f"step {i}" for i in range(steps)],
                           root_cause="r", category="THIRD_PARTY_SYSTEM", confidence=0.6, transience=transience,
                           citations=Citations(how_to_fix=[[Citation(line=i + 1, quote="q")] for i in range(steps)]))


def test_each_earlier_failure_fixed_by_an_automatic_retry_says_so_with_the_last_date() -> None:
    said = describe_history([_fixed(2), _fixed(1), _fixed(0)])
    assert said == ("3 times before; each time a retry fixed it (failure-insights' automatic retry), last on "
                    "2026-12-03 10:02 UTC, 2 min after it failed.")


def test_a_change_that_ended_it_is_named_and_becomes_the_first_fix_step() -> None:
    history = [_fixed(1, "next_run", changes=["deployment version 3 → 4"]), _fixed(0, "retry", automatic=False)]
    said = describe_history(history)
    assert "a retry fixed it once" in said and "deployment version 3 → 4" in said
    step = history_fix(history)
    assert step.startswith("Check for the change") and "deployment version 3 → 4" in step
    assert apply_history(_analysis(), history).how_to_fix[0] == step


def test_open_and_unknown_earlier_failures() -> None:
    assert describe_history([]) is None
    assert describe_history([Resolution(flow_run_id="gone", outcome="unknown")]) is None
    still = [Resolution(flow_run_id="a", failed_at=T0, outcome="open")]
    assert "none of those runs has completed since" in describe_history(still)
    assert history_fix(still) is None and apply_history(_analysis(), still) == _analysis()
    mixed = describe_history([_fixed(0), Resolution(flow_run_id="b", failed_at=T0, outcome="open", correction="X")])
    assert "a retry fixed it once" in mixed and "1 still open" in mixed and "corrected its category to X" in mixed


def test_retries_that_always_worked_make_an_unknown_failure_transient_but_never_a_permanent_one() -> None:
    history = [_fixed(1), _fixed(0)]
    assert apply_history(_analysis(Transience.UNKNOWN), history).transience == Transience.TRANSIENT
    assert apply_history(_analysis(Transience.PERMANENT), history).transience == Transience.PERMANENT
    assert apply_history(_analysis(), history).how_to_fix[0].startswith("Retry the run: a retry fixed each of the last 2")


@given(steps=st.integers(1, ANSWER_LIST_MAX), outcomes=st.lists(st.sampled_from(["retry", "next_run", "open",
                                                                                   "unknown"]), max_size=4),
       changed=st.booleans())
def test_the_fix_steps_and_their_citations_stay_aligned_and_capped(steps: int, outcomes: list[str],
                                                                   changed: bool) -> None:
    history = [Resolution(flow_run_id=str(i), failed_at=T0, outcome=o, resolved_at=T0 + timedelta(minutes=1),
                          changes=["parameters changed: limit"] if changed and o == "next_run" else [])
               for i, o in enumerate(outcomes)]
    before = _analysis(steps=steps)
    after = apply_history(before, history)
    assert len(after.how_to_fix) <= ANSWER_LIST_MAX
    added = len(after.how_to_fix) != len(before.how_to_fix) or after.how_to_fix != before.how_to_fix
    if added:  # the new first step cites nothing; every old step keeps its own citations
        assert after.citations.how_to_fix[0] == []
        assert after.citations.how_to_fix[1:] == before.citations.how_to_fix[:len(after.how_to_fix) - 1]
    assert apply_history(after, history) == after  # applied twice, the same
