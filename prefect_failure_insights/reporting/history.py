"""The resolution history in one sentence: what ended the most similar earlier failures.

"3 times before; each time a retry fixed it, last on ...": the card, the terminal, the summary
event and the notification say the same sentence (`describe_history`).
"""

from __future__ import annotations

from prefect_failure_insights.models import Resolution


def _times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


def resolved_on(r: Resolution) -> str:
    """When the run that ended it completed, for a sentence."""
    return f"{r.resolved_at:%Y-%m-%d %H:%M} UTC" if r.resolved_at else "an unknown date"


def latest(history: list[Resolution]) -> Resolution:
    """The one that ended last (a resolution without a date counts as the oldest)."""
    return max(history, key=lambda r: r.resolved_at.timestamp() if r.resolved_at else 0.0)


def _after(r: Resolution) -> str:
    s = r.after_s
    if s is None:
        return ""
    return f", {s / 60:.0f} min after it failed" if s < 5400 else f", {s / 3600:.1f} h after it failed"


def describe_history(history: list[Resolution]) -> str | None:
    """What ended the earlier similar failures, in one sentence (None: none were looked up)."""
    known = [r for r in history if r.outcome != "unknown"]
    if not known:
        return None
    retries = [r for r in known if r.outcome == "retry"]
    nexts = [r for r in known if r.outcome == "next_run"]
    still = [r for r in known if r.outcome == "open"]
    head = f"{_times(len(known)).capitalize()} before"
    if len(retries) == len(known):
        who = " (failure-insights' automatic retry)" if all(r.automatic for r in retries) else ""
        last = latest(retries)
        text = f"{head}; each time a retry fixed it{who}, last on {resolved_on(last)}{_after(last)}"
    elif len(nexts) == len(known) and not any(r.changes for r in nexts):
        text = (f"{head}; each time the deployment's next run completed with nothing changed, last on "
                f"{resolved_on(latest(nexts))}")
    elif not retries and not nexts:
        text = f"{head}; none of those runs has completed since, by a retry or a later run"
    else:
        parts = []
        if retries:
            parts.append(f"a retry fixed it {_times(len(retries))}")
        changed = [r for r in nexts if r.changes]
        if changed:
            last = latest(changed)
            parts.append(f"the deployment's next run completed after a change {_times(len(changed))} "
                         f"({'; '.join(last.changes)}, on {resolved_on(last)})")
        if len(nexts) > len(changed):
            parts.append(f"the next run completed with nothing changed {_times(len(nexts) - len(changed))}")
        if still:
            parts.append(f"{len(still)} still open")
        text = f"{head}: " + ", ".join(parts)
    corrected = sorted({r.correction for r in known if r.correction})
    if corrected:
        text += f"; the team corrected its category to {', '.join(corrected)}"
    return text + "."
