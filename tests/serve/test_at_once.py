"""`Pairing`: each failure's start at once and the automation's run, matched; the first runs."""

from __future__ import annotations

import time

from prefect_failure_insights.serve.at_once import Pairing


def test_a_start_at_once_makes_the_automations_run_a_duplicate_once() -> None:
    pairing = Pairing()
    assert pairing.start_at_once("run-a")
    assert pairing.is_duplicate("run-a")
    assert not pairing.is_duplicate("run-a")  # a second automation run (the run failed again): it runs


def test_the_automations_run_first_means_no_start_at_once() -> None:
    pairing = Pairing()
    assert not pairing.is_duplicate("run-a")
    assert not pairing.start_at_once("run-a")
    assert pairing.start_at_once("run-a")  # a later failure of the same run starts at once again


def test_failures_are_paired_one_for_one_and_by_run() -> None:
    pairing = Pairing()
    assert pairing.start_at_once("run-a") and pairing.start_at_once("run-a") and pairing.start_at_once("run-b")
    assert [pairing.is_duplicate(r) for r in ("run-b", "run-a", "run-a", "run-a")] == [True, True, True, False]


def test_an_undone_start_leaves_the_automations_run_to_run() -> None:
    pairing = Pairing()
    assert pairing.start_at_once("run-a")
    pairing.undo("run-a")
    assert not pairing.is_duplicate("run-a")


def test_an_unmatched_start_is_forgotten_after_its_ttl() -> None:
    pairing = Pairing(ttl_s=0.05)
    assert pairing.start_at_once("run-a")
    assert not pairing.is_duplicate("run-b")
    time.sleep(0.1)
    assert not pairing.is_duplicate("run-a")  # a very late automation run executes (and finds the claim)
    assert pairing.start_at_once("run-b")
    assert pairing._at_once.keys() == {"run-b"} and pairing._automation.keys() == {"run-a"}
