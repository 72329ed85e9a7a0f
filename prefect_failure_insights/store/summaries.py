"""Summary rows: one per failed run, guaranteed by the primary key, never by a read-then-write.

* `claim_summary()` inserts a *pending* row (``INSERT .. ON CONFLICT DO NOTHING``) before
  any LLM call. Of two summarizers triggered at once for the same run, exactly one gets
  the claim; the other stops without calling the LLM. The claim is a lease: its holder
  renews it (`renew_summary()`, ``claimed_at`` is the last renewal) while it works; a
  claim not renewed for a lease (a summarizer that died), or one whose holder is known to
  have ended (``take_over_from``), is taken over, atomically.
* `store_summary()` writes the summary into the row *only if this summarizer still holds
  the claim*, so a late loser can never overwrite the winner.
* `note_decision()` records the retry automation's decision on the failure (and is the claim
  of a retry: one per failure); nothing else writes those columns.
* ``regenerate`` claims an existing row without touching its content; the old summary
  stays readable until the new one replaces it. So does a run that failed again after a
  retry (its ``run_count`` grew): its new failure replaces the summary of the old one.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import Engine, func, select, update

from prefect_failure_insights.defaults import CLAIM_LEASE
from prefect_failure_insights.models import Claim, FlowRunInfo, RetryDecision, Stored, Summary
from prefect_failure_insights.models.summary import PENDING
from prefect_failure_insights.store.mapping import from_row, mapped, to_row
from prefect_failure_insights.store.sql import fit, guard, insert_ignore, now, utc
from prefect_failure_insights.store.tables import schema_table, summaries

PROVISIONAL = "provisional"
#: Rows whose final summary is still to come: claimable, not yet "summarized".
UNFINISHED = (PENDING, PROVISIONAL)
#: The retry decision's columns: written by `note_decision` only, so that a summary made again in
#: place (late logs, a regeneration) keeps the decision on its failure.
RETRY_COLUMNS = tuple(c.name for c, info in mapped(summaries) if info["field"][0].startswith("retry."))
#: What became of a retry decision (`note_decision`).
NoteAction = Literal["recorded", "unchanged", "no_row"]


def claim_summary(engine: Engine, run: FlowRunInfo, claimed_by: str, *, regenerate: bool = False,
                  lease: timedelta = CLAIM_LEASE, take_over_from: str | None = None) -> Claim:
    """Claim the right to write ``run``'s summary (see the module docstring).

    ``take_over_from``: the holder of a pending claim that is known to have ended (its
    flow run is final); its claim is taken over even if the lease has not run out.
    """
    current = now()
    with guard(engine, "claim the summary row"):
        with engine.begin() as conn:
            inserted = insert_ignore(conn, summaries, fit(summaries, {
                **to_row(run, summaries, root="run"),
                "status": PENDING, "claimed_by": claimed_by, "claimed_at": current,
                "regenerated_count": 0, "created_at": current, "updated_at": current,
            }))
        if inserted:
            return Claim(result="claimed", run_id=run.id, claimed_by=claimed_by)
        with engine.begin() as conn:
            row = conn.execute(
                select(summaries.c.status, summaries.c.claimed_by, summaries.c.claimed_at, summaries.c.run_count)
                .where(summaries.c.flow_run_id == run.id)
            ).one()
            status, holder, renewed = row.status, row.claimed_by, utc(row.claimed_at)
            age = (current - renewed).total_seconds() if renewed is not None else None
            # A run that failed again after a retry (ours, the UI's) has a new failure to explain.
            again = (row.run_count or 1) < run.run_count
            live = (status in UNFINISHED or again) and age is not None and age < lease.total_seconds()
            if status not in UNFINISHED and not (regenerate or again):
                return Claim(result="exists", run_id=run.id, claimed_by=claimed_by, existing_status=status)
            if live and holder not in (claimed_by, take_over_from) and not regenerate:
                return Claim(result="in_progress", run_id=run.id, claimed_by=claimed_by, existing_status=status,
                             holder=holder, lease_left_s=lease.total_seconds() - age)
            # Take over atomically: only if nobody else changed the claim meanwhile.
            taken = conn.execute(
                update(summaries)
                .where(summaries.c.flow_run_id == run.id)
                .where(summaries.c.claimed_by == holder if holder is not None else summaries.c.claimed_by.is_(None))
                .values(claimed_by=claimed_by, claimed_at=current)
            ).rowcount
        if taken != 1:
            return Claim(result="in_progress", run_id=run.id, claimed_by=claimed_by, existing_status=status)
        return Claim(result="claimed", run_id=run.id, claimed_by=claimed_by, existing_status=status)


def renew_summary(engine: Engine, flow_run_id: str, claimed_by: str) -> bool:
    """Renew this summarizer's lease on the row; False when it no longer holds the claim."""
    with guard(engine, "renew the claim"), engine.begin() as conn:
        return conn.execute(
            update(summaries)
            .where(summaries.c.flow_run_id == flow_run_id)
            .where(summaries.c.claimed_by == claimed_by)
            .values(claimed_at=now())
        ).rowcount == 1


def live_claims(engine: Engine, lease: timedelta = CLAIM_LEASE) -> dict[str, str]:
    """The claims renewed within a lease (pending rows, and finished ones being regenerated):
    failed run id -> holder, for the reconciler."""
    with guard(engine, "read the claims"), engine.connect() as conn:
        rows = conn.execute(
            select(summaries.c.flow_run_id, summaries.c.claimed_by)
            .where(summaries.c.claimed_at >= now() - lease)
        ).all()
    return {r.flow_run_id: r.claimed_by for r in rows}


def summarized(engine: Engine, run_ids: list[str]) -> set[str]:
    """Which of these runs have a finished summary."""
    out: set[str] = set()
    ids = sorted(set(run_ids))
    with guard(engine, "read the summaries"), engine.connect() as conn:
        for at in range(0, len(ids), 500):
            out.update(conn.execute(select(summaries.c.flow_run_id)
                                    .where(summaries.c.flow_run_id.in_(ids[at:at + 500]))
                                    .where(summaries.c.status.not_in(UNFINISHED))).scalars())
    return out


def release_expired(engine: Engine, lease: timedelta = CLAIM_LEASE) -> list[str]:
    """Release the claims whose lease ran out (their summarizer died): a pending row is deleted,
    a provisional one keeps its summary (it says the final one is missing) and loses its claim;
    their run ids."""
    stale = summaries.c.claimed_at.is_(None) | (summaries.c.claimed_at < now() - lease)
    with guard(engine, "release expired claims"), engine.begin() as conn:
        expired = (summaries.c.status == PENDING) & stale
        ids = list(conn.execute(select(summaries.c.flow_run_id).where(expired)).scalars())
        if ids:
            conn.execute(summaries.delete().where(expired).where(summaries.c.flow_run_id.in_(ids)))
        orphaned = (summaries.c.status == PROVISIONAL) & summaries.c.claimed_by.is_not(None) & stale
        left = list(conn.execute(select(summaries.c.flow_run_id).where(orphaned)).scalars())
        if left:
            conn.execute(update(summaries).where(orphaned).where(summaries.c.flow_run_id.in_(left))
                         .values(claimed_by=None, claimed_at=None))
    return ids + left


def store_summary(engine: Engine, summary: Summary, claimed_by: str) -> Stored:
    """Write ``summary`` into its claimed row: ``created`` or ``replaced`` (with the summary as
    stored), or ``lost`` when another summarizer took the claim over."""
    values = {**to_row(summary, summaries), "updated_at": now()}
    for key in ("created_at", "regenerated_count", "artifact_id", *RETRY_COLUMNS):  # the row's own bookkeeping
        values.pop(key)
    with guard(engine, "store the summary"), engine.begin() as conn:
        previous = conn.execute(
            select(summaries.c.status, summaries.c.logs_complete).where(summaries.c.flow_run_id == summary.run.id)
        ).first()
        # Made again because the last logs arrived is the same summary completed, not a regeneration.
        if previous is not None and previous.status not in UNFINISHED and previous.logs_complete is not False:
            values["regenerated_count"] = summaries.c.regenerated_count + 1
        if summary.status != PROVISIONAL:
            values["claimed_at"] = None  # the work is done: no lease left that anyone must wait for
        written = conn.execute(
            update(summaries)
            .where(summaries.c.flow_run_id == summary.run.id)
            .where(summaries.c.claimed_by == claimed_by)
            .values(**fit(summaries, values))
        ).rowcount
        if written != 1:
            return Stored(summary=summary, action="lost")
        row = conn.execute(select(summaries).where(summaries.c.flow_run_id == summary.run.id)).mappings().one()
    stored = from_row(row, summaries, Summary)
    return Stored(summary=stored, action="replaced" if stored.delivery.regenerated else "created")


def release_summary(engine: Engine, flow_run_id: str, claimed_by: str) -> None:
    """Give up a claim on a row that never got content (e.g. the summarizer failed)."""
    with guard(engine, "release the claim"), engine.begin() as conn:
        conn.execute(
            summaries.delete()
            .where(summaries.c.flow_run_id == flow_run_id)
            .where(summaries.c.claimed_by == claimed_by)
            .where(summaries.c.status == PENDING)
        )


def record_artifact(engine: Engine, flow_run_id: str, artifact_id: str, *, claimed_by: str) -> None:
    """Record the artifact of the summary this summarizer wrote (not a later one's)."""
    with guard(engine, "record the artifact id"), engine.begin() as conn:
        conn.execute(
            update(summaries)
            .where(summaries.c.flow_run_id == flow_run_id)
            .where(summaries.c.claimed_by == claimed_by)
            .values(artifact_id=artifact_id)
        )


def note_decision(engine: Engine, flow_run_id: str, decision: RetryDecision) -> tuple[Summary | None, NoteAction]:
    """Record the retry automation's ``decision`` on the run's finished summary, if it supersedes the
    one there (`RetryDecision.supersedes`: the same decision twice, or any order of decisions, leaves
    the same row), with the run's automatic retries it counted. The summary as stored now, and
    ``recorded``, ``unchanged`` or ``no_row`` (no finished summary).

    Also the claim of a retry: of two runs of the retry flow deciding to retry the same failure at
    once, exactly one records "retried" (a compare-and-set on the decision it read); the other
    finds it ``unchanged`` and must not retry.
    """
    finished = (summaries.c.flow_run_id == flow_run_id) & summaries.c.status.not_in(UNFINISHED)
    values = to_row(decision.model_copy(update={"decided_at": now()}), summaries, root="retry")
    if decision.retries is not None:  # counted from the run's state history when it was decided
        values["auto_retries"] = decision.retries
    with guard(engine, "note the retry decision"), engine.begin() as conn:
        row = conn.execute(select(summaries).where(finished)).mappings().first()
        if row is None:
            return None, "no_row"
        stored = from_row(row, summaries, Summary)
        if not decision.supersedes(stored.retry):
            return stored, "unchanged"
        same = [summaries.c[name].is_(None) if row[name] is None else summaries.c[name] == row[name]
                for name in ("retry_decision", "retry_attempt", "retry_rule")]
        if conn.execute(update(summaries).where(finished, *same).values(**fit(summaries, values))).rowcount != 1:
            return stored, "unchanged"  # another decision got there first
        row = conn.execute(select(summaries).where(finished)).mappings().one()
    return from_row(row, summaries, Summary), "recorded"


def get_summary(engine: Engine, flow_run_id: str) -> Summary | None:
    """The finished summary of a run, or None (no row, or still pending)."""
    with guard(engine, "read the summary"), engine.connect() as conn:
        row = conn.execute(
            select(summaries).where(summaries.c.flow_run_id == flow_run_id).where(summaries.c.status != PENDING)
        ).mappings().first()
    return from_row(row, summaries, Summary) if row is not None else None


def list_summaries(engine: Engine, limit: int = 20, offset: int = 0, *, category: str | None = None,
                   flow: str | None = None, since: datetime | None = None) -> tuple[list[Summary], int]:
    """Finished summaries, newest first, and the total matching count."""
    conditions = [summaries.c.status != PENDING]
    if category:
        conditions.append(summaries.c.category == category)
    if flow:
        conditions.append(summaries.c.flow_name == flow)
    if since:
        conditions.append(summaries.c.created_at >= utc(since))
    with guard(engine, "list summaries"), engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(summaries).where(*conditions)).scalar() or 0
        rows = conn.execute(
            select(summaries).where(*conditions)
            .order_by(summaries.c.created_at.desc(), summaries.c.flow_run_id).limit(limit).offset(offset)
        ).mappings().all()
    return [from_row(r, summaries, Summary) for r in rows], int(total)


def llm_categories(engine: Engine, run_ids: list[str]) -> dict[str, str]:
    """The categories of these runs' LLM summaries (a batch reuses them: no second LLM call)."""
    out: dict[str, str] = {}
    ids = sorted(set(run_ids))
    with guard(engine, "read the summaries"), engine.connect() as conn:
        for at in range(0, len(ids), 500):
            rows = conn.execute(select(summaries.c.flow_run_id, summaries.c.category)
                                .where(summaries.c.flow_run_id.in_(ids[at:at + 500]))
                                .where(summaries.c.status == "llm")).all()
            out.update({r.flow_run_id: r.category for r in rows if r.category})
    return out


def probe_write(engine: Engine) -> None:
    """Prove the database accepts writes, leaving nothing behind (for `doctor`)."""
    with guard(engine, "write a test row"), engine.connect() as conn:
        transaction = conn.begin()
        conn.execute(update(schema_table).where(schema_table.c.id == 1).values(updated_at=now()))
        transaction.rollback()
