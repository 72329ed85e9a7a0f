"""Recurring failures say what ended them last time, on the real server with `serve`.

Two failures of a vendor outage are summarized, then each is fixed by failure-insights' automatic
retry (its state history as the retry flow leaves it: AwaitingRetry with the retry's mark, then
Running, then Completed; the retry flow itself is tested in test_retries.py). The third failure's
card, row and event say so; a fourth, in a deployment whose next run completed after a new
deployment version, names that change.
"""

from __future__ import annotations

import random
from dataclasses import replace
from uuid import UUID, uuid4

import pytest
from prefect.states import AwaitingRetry, Completed, Running

from prefect_failure_insights.defaults import RETRY_STATE_MARK
from prefect_failure_insights.testing.seed import SCENARIOS, seed_failure

from .conftest import wait_for

pytestmark = pytest.mark.e2e


def _scenario() -> str:
    """A vendor failure of its own: words no other test's failure has (ids and hex strings are masked
    in a pattern, so letters only), so that only its own runs are similar to it."""
    words = ["".join(random.choices("ghijklmnopqrstuvwxyz", k=9)) for _ in range(5)]
    name = f"history-{words[0]}"
    SCENARIOS[name] = replace(SCENARIOS["vendor-503"], flow=f"history-{words[0]}",
                              message=f"Vendor {words[1]} refused {words[2]} while {words[3]} {words[4]} (page {{i}})")
    return name


def _fix_by_automatic_retry(e2e, run_id: str) -> None:
    async def retry(client):
        await client.set_flow_run_state(UUID(run_id), AwaitingRetry(
            message=f"{RETRY_STATE_MARK} 1 of 2: transient THIRD_PARTY_SYSTEM failure"), force=True)
        await client.set_flow_run_state(UUID(run_id), Running(), force=True)
        await client.set_flow_run_state(UUID(run_id), Completed(), force=True)

    e2e.call(retry)


@pytest.mark.timeout(300)
def test_a_failure_fixed_twice_by_an_automatic_retry_says_so_on_its_third_card_and_event(e2e) -> None:
    scenario = _scenario()
    engine = e2e.sqlite_engine()
    cache: dict = {}
    for i in range(2):
        run_id = e2e.call(lambda client, i=i: seed_failure(client, scenario, i, cache))
        e2e.wait_for_row(engine, run_id)
        _fix_by_automatic_retry(e2e, run_id)
    third = e2e.call(lambda client: seed_failure(client, scenario, 2, cache))
    summary = e2e.wait_for_row(engine, third)
    assert [r.outcome for r in summary.similar.history] == ["retry", "retry"]
    assert all(r.automatic for r in summary.similar.history)
    (card,) = e2e.summary_artifacts(third)
    assert "**What ended them:** Twice before; each time a retry fixed it (failure-insights' automatic retry)" \
        in card.data
    event = wait_for(lambda: next((e for e in reversed(e2e.summary_events(third)) if e["payload"]["final"]), None))
    assert event["payload"]["fixed_by_retry"] == 2
    assert event["payload"]["history"].startswith("Twice before; each time a retry fixed it")


@pytest.mark.timeout(300)
def test_a_failure_that_stopped_after_a_new_deployment_version_names_that_change(e2e) -> None:
    from prefect.client.schemas.actions import DeploymentUpdate

    scenario = _scenario()
    engine = e2e.sqlite_engine()
    cache: dict = {}
    first = e2e.call(lambda client: seed_failure(client, scenario, 0, cache))
    e2e.wait_for_row(engine, first)
    (deployment_id,) = cache.values()

    async def ship_a_fix(client):
        """Version 2 of the deployment, whose next run completes."""
        await client.update_deployment(deployment_id, DeploymentUpdate(version="2"))
        run = await client.create_flow_run_from_deployment(deployment_id)
        await client.set_flow_run_state(run.id, Running(), force=True)
        await client.set_flow_run_state(run.id, Completed(), force=True)
        return (await client.read_flow_run(run.id)).deployment_version

    assert e2e.call(ship_a_fix) == "2"
    second = e2e.call(lambda client: seed_failure(client, scenario, 1, cache))
    summary = e2e.wait_for_row(engine, second)
    (before,) = summary.similar.history
    assert before.outcome == "next_run" and before.changes == ["deployment version (none) → 2"], before
    (card,) = e2e.summary_artifacts(second)
    assert "the deployment's next run completed after a change once (deployment version (none) → 2" in card.data

