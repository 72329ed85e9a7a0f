"""What the models share."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

#: Reports progress of long work: ``progress(stage, done, total)`` (the CLI draws a bar with it).
Progress = Callable[[str, int, int], None]


def utc(value: datetime | None) -> datetime | None:
    """``value`` in UTC; a naive time (as SQLite returns them) is taken to be UTC already."""
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
