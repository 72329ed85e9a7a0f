"""Starting a summary the moment a flow run fails, not when the automation's run arrives.

The automation's run-deployment action creates the summarizer run inside the server, through
the server's own HTTP client, which sleeps 2 s on a busy SQLite server's 503 (the likely cause of
what was measured: failure -> summarizer run created 0.12 s usually, 2.5 s and 6.3 s in some runs).
So `serve` also reads the failure events themselves and, for each one its automation covers
(the installed automation's own trigger, read from the server, and only while it is enabled),
creates the summarizer run at once and executes it. The automation's run for the same
failure, arriving later, is deleted before it runs: one summarizer run per failure, as
before. Whichever of the two comes first is the one that runs (`Pairing`).

The automation stays the durable path: with `serve` stopped, the event stream lost or the
executor full, its runs are executed as before.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Protocol

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import FlowRun
from prefect.events.actions import RunDeployment

from prefect.events.schemas.automations import EventTrigger

from prefect_failure_insights.automations.failure_trigger import (
    AUTOMATION_NAME,
    FAILURE_STATE_TYPES,
    STATE_TYPE_LABEL,
    covers,
)
from prefect_failure_insights.defaults import AT_ONCE_PAIRING_SECONDS, AT_ONCE_TRIGGER_SECONDS
from prefect_failure_insights.serve.stream import follow_events

if TYPE_CHECKING:
    from uuid import UUID

logger = logging.getLogger("prefect_failure_insights.executor")

#: How the server's run-deployment action keys the runs it creates (`TriggeredAction.idempotency_key`).
AUTOMATION_KEY_PREFIX = "automation "


def failed_run_of(flow_run: FlowRun) -> str:
    """The failed run a summarizer run is for."""
    return str(flow_run.parameters.get("flow_run_id"))


def from_automation(flow_run: FlowRun) -> bool:
    return (flow_run.idempotency_key or "").startswith(AUTOMATION_KEY_PREFIX)


class Pairing:
    """Each failure's two starts, matched: the run started at once for its event, and the
    automation's run. The first of the two runs; the second is dropped. An entry not matched
    within ``ttl_s`` is forgotten (an automation that never fired, or fired very late: its run
    then executes, finds the summary claimed and ends)."""

    def __init__(self, ttl_s: float = AT_ONCE_PAIRING_SECONDS) -> None:
        self.ttl_s = ttl_s
        self._at_once: dict[str, deque[float]] = {}
        self._automation: dict[str, deque[float]] = {}

    def _take(self, table: dict[str, deque[float]], key: str) -> bool:
        """Consume one fresh entry of ``key``; whether there was one. Stale entries go first."""
        oldest = time.monotonic() - self.ttl_s
        for entries in (self._at_once, self._automation):
            for times in entries.values():
                while times and times[0] < oldest:
                    times.popleft()
            for stale in [k for k, times in entries.items() if not times]:
                del entries[stale]
        if key not in table:
            return False
        table[key].popleft()
        if not table[key]:
            del table[key]
        return True

    def _put(self, table: dict[str, deque[float]], key: str) -> None:
        table.setdefault(key, deque()).append(time.monotonic())

    def start_at_once(self, failed_run_id: str) -> bool:
        """A failure event: whether to start its summary now (not when the automation's run came first)."""
        if self._take(self._automation, failed_run_id):
            return False
        self._put(self._at_once, failed_run_id)
        return True

    def undo(self, failed_run_id: str) -> None:
        """A start at once that did not happen: the automation's run must not be dropped."""
        self._take(self._at_once, failed_run_id)

    def is_duplicate(self, failed_run_id: str) -> bool:
        """The automation's run for a failure: whether its summary was started at once (drop it)."""
        if self._take(self._at_once, failed_run_id):
            return True
        self._put(self._automation, failed_run_id)
        return False


class Starter(Protocol):
    deployment_id: UUID

    async def start_at_once(self, client: PrefectClient, failed_run_id: str, event_id: str) -> bool: ...


class FailureEvents:
    """The failure events the installed automation covers, each handed to ``starter`` as it arrives."""

    def __init__(self, starter: Starter, automation_name: str = AUTOMATION_NAME,
                 trigger_ttl_s: float = AT_ONCE_TRIGGER_SECONDS) -> None:
        self.starter = starter
        self.automation_name = automation_name
        self.trigger_ttl_s = trigger_ttl_s
        self._trigger: Any = None
        self._read_at = float("-inf")

    async def trigger(self, client: PrefectClient) -> EventTrigger | None:
        """The automation's trigger, or None when no enabled automation runs our deployment
        (uninstalled, disabled in the UI, pointing elsewhere, or edited into a trigger other than
        an event trigger). Read again every ``trigger_ttl_s``."""
        if time.monotonic() - self._read_at < self.trigger_ttl_s:
            return self._trigger
        found = await client.read_automations_by_name(self.automation_name)
        ours = [a for a in found if a.enabled and isinstance(a.trigger, EventTrigger) and any(
            isinstance(action, RunDeployment) and action.deployment_id == self.starter.deployment_id
            for action in a.actions)]
        self._trigger = ours[0].trigger if ours else None
        self._read_at = time.monotonic()
        return self._trigger

    async def covered(self, client: PrefectClient, event: Any) -> str | None:
        """The failed run's id when the automation would start a summary for ``event``."""
        trigger = await self.trigger(client)
        if trigger is None or not covers(trigger, event):
            return None
        return event.resource.id.removeprefix("prefect.flow-run.")

    async def run(self, client: PrefectClient) -> None:
        """Until cancelled. Without an event stream, summaries simply start with the automation's runs."""
        from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
        from prefect.events.schemas.events import ResourceSpecification

        async def start(event: Any) -> None:
            try:
                if failed_run_id := await self.covered(client, event):
                    await self.starter.start_at_once(client, failed_run_id, str(event.id))
            except Exception as exc:  # noqa: BLE001 - the automation's run still comes
                logger.warning("Could not start the summary of %s at once (%s: %s); the automation's run will.",
                               event.resource.id, type(exc).__name__, exc)

        without = "summaries start with the automation's runs"
        try:
            await self.trigger(client)  # the first read now, not on the first failure's path
        except Exception as exc:  # noqa: BLE001 - an optimisation only
            logger.warning("Could not read the automation (%s); %s.", type(exc).__name__, without)
            return
        failures = EventFilter(
            event=EventNameFilter(prefix=["prefect.flow-run."]),
            resource=EventResourceFilter(labels=ResourceSpecification({STATE_TYPE_LABEL: list(FAILURE_STATE_TYPES)})),
        )
        await follow_events(failures, start, without)
