"""Every failure gets its summary, whatever died: the reconciler.

The automation starts a summarizer run per failure, and a summarizer holds a lease on
the failure's row while it works. What can still go wrong is that a summarizer dies
(its process killed, its machine lost) or never runs (the automation missed the event,
the server was down). One reconcile pass, run by ``serve`` at start and every
`RECONCILE_SECONDS`, and by ``failure-insights summary reconcile`` (or its scheduled deployment)
for worker setups:

1. summarizer runs left Running without a live lease (or Pending for `RECONCILE_PENDING_SECONDS`,
   `RECONCILE_PENDING_SERVED_SECONDS` for one `serve` executes) belong to a dead process: they are
   set Crashed;
2. claims whose lease ran out are deleted, so that nobody waits for them, and rows past the
   settings' ``retention_days`` too (`store.retention`, bounded per pass);
3. failed or crashed runs of the look-back window that are in scope and have no finished
   summary, no live claim and no active summarizer run get a new summarizer run, oldest
   failure first and at most ``limit`` per pass; a failure no summarizer has tried yet is
   left alone for `RECONCILE_GRACE_SECONDS` (the automation may still be creating its
   run), and one whose summarizers ended without a summary `RECONCILE_MAX_ATTEMPTS` times
   is left alone for good (reported, never a loop).

Failed runs are counted as everywhere else in the plugin: a subflow run in its parent's
process (`prefect_api.runs.in_process_subflow`) is part of its root's failure, not one of its own.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta, timezone

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import FlowRun, StateType

from prefect_failure_insights.blocks import FailureInsightsSettings
from prefect_failure_insights.defaults import (
    CLAIM_LEASE,
    OWN_FLOWS,
    RECONCILE_GRACE_SECONDS,
    RECONCILE_LIMIT,
    RECONCILE_MAX_ATTEMPTS,
    RECONCILE_PENDING_SECONDS,
    RECONCILE_PENDING_SERVED_SECONDS,
)
from prefect_failure_insights.models import Filters, Reconciled
from prefect_failure_insights.prefect_api import failures, summarizers
from prefect_failure_insights.prefect_api.runs import flow_run_info, in_process_subflow
from prefect_failure_insights.store import Database
from prefect_failure_insights.store import fingerprints as cache
from prefect_failure_insights.store import retention
from prefect_failure_insights.store import summaries as rows

DEAD = ("Reconciled: this summarizer stopped renewing its claim (its process died); "
        "the failure is summarized by a new run.")


def _since_state(run: FlowRun, now: datetime) -> float:
    """Seconds since the run entered its current state."""
    stamp = run.state.timestamp if run.state is not None else None
    return (now - stamp).total_seconds() if stamp is not None else 0.0


def is_dead(run: FlowRun, holders: set[str], now: datetime) -> bool:
    """Whether an active summarizer run cannot be working any more."""
    if run.state_type == StateType.RUNNING:
        return _since_state(run, now) > CLAIM_LEASE.total_seconds() and str(run.id) not in holders
    if run.state_type == StateType.PENDING:
        limit = RECONCILE_PENDING_SECONDS if run.work_pool_name else RECONCILE_PENDING_SERVED_SECONDS
        return _since_state(run, now) > limit
    return False


async def reconcile(client: PrefectClient, database: Database, settings: FailureInsightsSettings, *, hours: float,
                    limit: int = RECONCILE_LIMIT, start: bool = True) -> Reconciled:
    """One reconcile pass over the last ``hours`` (see the module docstring).

    ``start=False`` finds and reports without changing anything (``reconcile --dry-run``).
    """
    now = datetime.now(timezone.utc)
    since = now - timedelta(hours=hours)
    report = Reconciled(hours=hours)
    claims = await database.run(rows.live_claims)
    holders = set(claims.values())
    attempts: dict[str, list[FlowRun]] = defaultdict(list)
    orphans: set[str] = set()  # failures whose summarizer died: reconciled whatever the window
    for run in await summarizers.summarizer_runs(client, since):
        failed_id = summarizers.failure_of(run)
        if failed_id is not None:
            attempts[failed_id].append(run)
        if run.state_type in summarizers.ACTIVE and is_dead(run, holders, now):
            if start:
                await summarizers.mark_crashed(client, run, DEAD)
            report.crashed.append(str(run.id))
            orphans |= {failed_id} if failed_id else set()
    if start:
        released = await database.run(rows.release_expired)
        orphans |= set(released)
        report.released = len(released) + await database.run(cache.release_expired)
        report.deleted = await database.run(retention.enforce, settings.retention_days)

    runs, _ = await failures.list_failed_runs(client, since, now, filters=Filters())
    runs += await failures.read_failed_runs(client, sorted(orphans - {str(r.id) for r in runs}))
    names: dict = {}
    candidates = []
    for run in sorted(runs, key=lambda r: r.end_time or now):
        if in_process_subflow(run):
            continue  # summarized on its root
        info = await flow_run_info(client, run, names)
        if info.flow_name in OWN_FLOWS or settings.skip_reason(info):
            continue
        candidates.append(run)
    report.failures = len(candidates)
    done = await database.run(rows.summarized, [str(r.id) for r in candidates])
    deployment = None
    for run in candidates:
        failed_id = str(run.id)
        tried = attempts.get(failed_id, [])
        active = [t for t in tried if t.state_type in summarizers.ACTIVE and str(t.id) not in report.crashed]
        if failed_id in done:
            report.summarized += 1
        elif failed_id in claims or active:
            report.in_progress += 1
        elif len(tried) >= RECONCILE_MAX_ATTEMPTS:
            report.gave_up.append(failed_id)
        elif (not tried and run.end_time and (now - run.end_time).total_seconds() < RECONCILE_GRACE_SECONDS) \
                or len(report.started) >= limit:
            report.deferred += 1
        else:
            if start:
                deployment = deployment or await summarizers.summarizer_deployment(client)
                await summarizers.start_summarizer(client, deployment, failed_id, attempt=len(tried))
            report.started.append(failed_id)
    return report


def describe(report: Reconciled, dry_run: bool = False) -> str:
    """The pass in one line, for the CLI and the service's log."""
    verb = "would start" if dry_run else "started"
    parts = [f"{report.failures} failed run{'s' if report.failures != 1 else ''} in scope in the last "
             f"{report.hours:g} h", f"{report.summarized} summarized", f"{report.in_progress} in progress",
             f"{verb} {len(report.started)} summarizer run{'s' if len(report.started) != 1 else ''}"]
    if report.crashed:
        parts.append(f"{len(report.crashed)} dead summarizer run{'s' if len(report.crashed) != 1 else ''} "
                     f"{'found' if dry_run else 'set Crashed'}")
    if report.released:
        parts.append(f"{report.released} expired claim{'s' if report.released != 1 else ''} released")
    if report.deleted:
        parts.append(f"{sum(report.deleted.values())} row(s) past their retention deleted")
    if report.deferred:
        parts.append(f"{report.deferred} left for the next pass")
    if report.gave_up:
        parts.append(f"{len(report.gave_up)} given up after {RECONCILE_MAX_ATTEMPTS} attempts: "
                     + ", ".join(report.gave_up[:5]))
    return "; ".join(parts) + "."
