"""The citation check: a claim holds when it cites lines that were sent and quotes them right."""

from __future__ import annotations

from prefect_failure_insights.analysis.citations import checked, sent_lines, verify
from prefect_failure_insights.models import Evidence, FailureAnalysis

EVIDENCE = """## Run
flow: orders
## Log excerpt
L3 02:00:00.030 INFO [extract-1] Fetched page 0
L25 02:00:00.250 ERROR [extract-1] Task run failed with exception: HTTPStatusError("Server error '503'")
        Traceback (most recent call last):
          File "pipelines/orders.py", line 12, in extract
L30 02:00:00.300 ERROR Finished in state Failed('...')"""


def _analysis(**cites) -> FailureAnalysis:
    return FailureAnalysis.model_validate({
        "title": "Vendor 503", "what_happened": "It failed.", "root_cause": "The vendor was down.",
        "how_to_fix": [{"step": "Retry.", "evidence": cites.get("fix", [])}],
        "what_happened_evidence": cites.get("what", []), "root_cause_evidence": cites.get("root", []),
        "category": "THIRD_PARTY_SYSTEM", "confidence": 0.9, "evidence_status": "confirmed"})


def test_sent_lines_keep_continuations_and_stop_at_other_text() -> None:
    lines = sent_lines(EVIDENCE)
    assert sorted(lines) == [3, 25, 30]
    assert "pipelines/orders.py" in lines[25] and "Finished" not in lines[25]
    assert sent_lines(EVIDENCE.replace("L", "E"), "E").keys() == lines.keys()


def test_right_lines_and_quotes_hold_whatever_the_case_spacing_and_quote_marks() -> None:
    good = {"line": 25, "quote": "\u201cserver ERROR  '503'\u201d"}
    v = verify(_analysis(what=[good], root=[{"line": "L25", "quote": 'orders.py", line 12'}], fix=[good]), EVIDENCE)
    assert v.root_cause_verified and not v.unverified, v


def test_each_kind_of_bad_citation_is_named() -> None:
    v = verify(_analysis(what=[{"line": 999, "quote": "x"}], root=[{"line": 25, "quote": "connection reset"}]),
               EVIDENCE)
    problems = {c.claim: c.problems for c in v.claims}
    assert problems == {"what happened": ["L999 was not in the evidence sent"],
                        "root cause": ["the quote \u201cconnection reset\u201d is not on L25"],
                        "fix 1": ["cites no evidence line"]}
    assert not v.root_cause_verified


def test_an_unverified_root_cause_caps_the_confidence_and_the_status() -> None:
    evidence = Evidence(text=EVIDENCE, tokens=10)
    capped, v = checked(_analysis(what=[{"line": 25, "quote": "503"}]), evidence)
    assert capped.confidence == 0.5 and v.confidence_capped_from == 0.9 and capped.evidence_status == "hypothesis"
    nothing, v = checked(_analysis(), evidence)
    assert nothing.evidence_status == "insufficient" and nothing.open_questions
    kept, v = checked(_analysis(root=[{"line": 25, "quote": "503"}]), evidence)
    assert kept.confidence == 0.9 and kept.evidence_status == "confirmed" and v.confidence_capped_from is None


def test_answers_in_the_old_form_still_parse_and_simply_cite_nothing() -> None:
    old = FailureAnalysis.model_validate({"title": "t", "what_happened": "w", "how_to_fix": ["a", "b"],
                                          "root_cause": "r", "category": "UNKNOWN", "confidence": 0.3})
    assert old.how_to_fix == ["a", "b"] and old.citations.how_to_fix == []
    assert [c.problems for c in verify(old, EVIDENCE).claims] == [["cites no evidence line"]] * 4
