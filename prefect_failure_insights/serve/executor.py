"""Running the plugin's flow runs inside the long-lived `failure-insights serve` process.

Prefect's runner starts every flow run in a new Python process. On a 2-core machine
that costs 2.5-3.5 s per run (measured: a trivial served flow, created -> running),
before the summarizer has done anything, which alone breaks the "summary within
~3 s of the failure" promise. A summary is short, I/O-bound work, so `serve` runs
it in its own, already-warm process instead, the way Prefect's task workers run
background tasks:

* poll a deployment (the summarizer's, the batch's) for scheduled runs (as a runner does; this also
  marks the deployment ready in the UI), and poll at once when the event stream
  announces a new scheduled run of it;
* claim each run by proposing ``Pending`` (the server rejects the proposal if
  another executor or worker got there first);
* execute it with Prefect's flow engine, concurrently up to ``limit`` runs;
* for the summarizer, also create and start a run the moment a failure event arrives,
  dropping the automation's run for it when that comes later (`serve.at_once`).

Each run is a normal flow run: states, logs, task runs and artifacts appear in
the UI as for any other. What is not provided: cancelling a run from the UI
(summaries end within the flow's 15-minute timeout, batches when their window is
done) and process isolation between runs. Deployments run by workers from
prefect.yaml use Prefect's usual process-per-run path instead.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import anyio
import httpx
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.objects import FlowRun
from prefect.exceptions import Abort
from prefect.flow_engine import run_flow
from prefect.flows import Flow
from prefect.states import Crashed, Pending
from prefect.utilities.engine import propose_state

from prefect_failure_insights.defaults import SERVE_LIMIT, SERVE_POLL_SECONDS
from prefect_failure_insights.prefect_api.quick_retry import promptly
from prefect_failure_insights.serve.at_once import FailureEvents, Pairing, failed_run_of, from_automation
from prefect_failure_insights.serve.stream import follow_events

logger = logging.getLogger("prefect_failure_insights.executor")


class InProcessExecutor:
    """Execute the scheduled runs of one deployment in this process.

    Args:
        flow: The flow the deployment runs.
        deployment_id: The deployment to poll.
        poll_seconds: Seconds between polls.
        limit: Most runs executing at once; further runs wait for the next poll.
        at_once: Start a run on each failure event the automation covers (the summarizer).
        in_process: Parameters given to every run besides its own, for in-process callers only
            (never stored: the summarizer's ``gate``, shared by the process's summaries).
    """

    def __init__(self, flow: Flow[Any, Any], deployment_id: UUID, poll_seconds: float = SERVE_POLL_SECONDS,
                 *, limit: int = SERVE_LIMIT, at_once: bool = False,
                 in_process: Mapping[str, Any] | None = None) -> None:
        self.flow = flow
        self.deployment_id = deployment_id
        self.poll_seconds = poll_seconds
        self.limit = limit
        self.active: set[UUID] = set()
        self.pairing = Pairing() if at_once else None
        self.in_process = dict(in_process or {})
        self._wake = anyio.Event()
        self._tasks: anyio.abc.TaskGroup | None = None

    async def _listen(self) -> None:
        """Wake the poll loop as soon as the server announces a new run of the deployment.

        Polling stays the reliable path; the event stream only removes the wait for
        the next poll (half a poll interval on average). Without a stream (an old
        server, a proxy that drops websockets) the executor simply keeps polling.
        """
        from prefect.events.filters import (
            EventFilter,
            EventNameFilter,
            EventRelatedFilter,
        )

        async def wake(_event: Any) -> None:
            self._wake.set()

        await follow_events(EventFilter(
            event=EventNameFilter(name=["prefect.flow-run.Scheduled"]),
            related=EventRelatedFilter(id=[f"prefect.deployment.{self.deployment_id}"]),
        ), wake, "new runs wait for the next poll")

    async def _claim(self, client: PrefectClient, flow_run: FlowRun) -> bool:
        try:
            state = await propose_state(client, Pending(), flow_run_id=flow_run.id)
        except Abort:
            return False  # another executor or worker claimed it
        return state.is_pending()

    async def _execute(self, client: PrefectClient, flow_run: FlowRun) -> None:
        try:
            parameters = {**flow_run.parameters, **self.in_process} if self.in_process else None
            outcome = run_flow(self.flow, flow_run=flow_run, parameters=parameters, return_type="state")
            if hasattr(outcome, "__await__"):
                await outcome
        except BaseException as exc:  # noqa: BLE001 - the engine already records flow errors
            logger.exception("Flow run %s crashed in the executor", flow_run.id)
            try:
                await propose_state(client, Crashed(message=f"Executor error: {type(exc).__name__}: {exc}"),
                                    flow_run_id=flow_run.id)
            except Exception:  # noqa: BLE001 - best effort; the run is lost either way
                logger.exception("Could not mark %s as crashed", flow_run.id)
            if not isinstance(exc, Exception):
                raise
        finally:
            self.active.discard(flow_run.id)

    async def start_at_once(self, client: PrefectClient, failed_run_id: str, event_id: str) -> bool:
        """Create and start the summarizer run of a failure whose event just arrived, unless the
        automation's run came first or the executor is full (then that run is executed as usual).
        Whether one was started."""
        if self.pairing is None or self._tasks is None or not self.pairing.start_at_once(failed_run_id):
            return False
        if len(self.active) >= self.limit:
            self.pairing.undo(failed_run_id)
            return False
        try:
            # One run per event, even with two `serve` processes listening: the server keeps the first.
            response = await promptly(client, "POST", f"/deployments/{self.deployment_id}/create_flow_run", json={
                "parameters": {"flow_run_id": failed_run_id},
                "idempotency_key": f"failure-insights: at once for event {event_id}",
            })
            flow_run = FlowRun.model_validate(response.json())
        except BaseException:
            self.pairing.undo(failed_run_id)
            raise
        self.active.add(flow_run.id)  # before the claim: a poll meanwhile must not start it too
        if not await self._claim(client, flow_run):
            self.active.discard(flow_run.id)
            return False
        self._tasks.start_soon(self._execute, client, flow_run)
        return True

    async def _drop(self, client: PrefectClient, flow_run: FlowRun) -> bool:
        """Delete the automation's run of a failure whose summary was started at once, once this
        executor holds it (``Pending``); whether it was dropped. With several `serve` replicas, another
        one may have claimed that run a moment ago and be starting it: it is left to run there (it
        finds the summary claimed and ends). Deleted under another replica's feet, the run hung that
        replica: Prefect's engine retries reading a deleted run forever before it starts it."""
        if not await self._claim(client, flow_run):
            return False  # another executor claimed it first: it runs there
        # At once: a run left Pending (this process killed meanwhile) waits for the reconciler.
        try:
            await promptly(client, "DELETE", f"/flow_runs/{flow_run.id}")
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code != 404:
                raise
            return True  # deleted meanwhile (by hand)
        logger.debug("Dropped %s, the automation's run for %s: its summary started at the failure event.",
                    flow_run.name, failed_run_of(flow_run))
        return True

    async def poll_once(self, client: PrefectClient, task_group: anyio.abc.TaskGroup) -> int:
        """Claim and start the runs that are due; return how many were started."""
        free = self.limit - len(self.active)
        if free <= 0:
            return 0
        due = await client.get_scheduled_flow_runs_for_deployments(
            deployment_ids=[self.deployment_id],
            scheduled_before=datetime.now(timezone.utc) + timedelta(seconds=1),
            limit=free,
        )
        started = 0
        for flow_run in due:
            if flow_run.id in self.active:
                continue
            if self.pairing is not None and from_automation(flow_run) \
                    and self.pairing.is_duplicate(failed_run_of(flow_run)):
                await self._drop(client, flow_run)
                continue
            if not await self._claim(client, flow_run):
                continue
            self.active.add(flow_run.id)
            task_group.start_soon(self._execute, client, flow_run)
            started += 1
        return started

    async def run(self, stop: anyio.Event, drain_seconds: float = 60.0) -> None:
        """Poll and execute until ``stop`` is set, then let running flow runs finish."""
        async with get_client() as client, anyio.create_task_group() as task_group:
            self._tasks = task_group
            task_group.start_soon(self._listen)
            if self.pairing is not None:
                task_group.start_soon(FailureEvents(self).run, client)
            while not stop.is_set():
                self._wake = anyio.Event()
                try:
                    await self.poll_once(client, task_group)
                except Exception:  # noqa: BLE001 - a failed poll must not stop the service
                    logger.exception("Polling for %s runs failed; retrying", self.flow.name)
                with anyio.move_on_after(self.poll_seconds):
                    async with anyio.create_task_group() as waiting:
                        async def until(event: anyio.Event) -> None:
                            await event.wait()
                            waiting.cancel_scope.cancel()

                        waiting.start_soon(until, stop)
                        waiting.start_soon(until, self._wake)
            self._tasks = None  # stopping: no more starts at once either
            with anyio.move_on_after(drain_seconds):
                while self.active:
                    await anyio.sleep(0.1)
            task_group.cancel_scope.cancel()
