"""A batch's window: an ad-hoc run's ends now, a scheduled run's at its scheduled minute."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from prefect_failure_insights.exceptions import InputError
from prefect_failure_insights.models import resolve_window


def test_an_ad_hoc_window_ends_now_so_a_failure_of_a_second_ago_is_in_it() -> None:
    failed_at = datetime.now(timezone.utc) - timedelta(seconds=1)
    window = resolve_window(1)
    assert window.start <= failed_at < window.end
    assert window.end - window.start == timedelta(hours=1)


def test_a_scheduled_window_ends_at_its_scheduled_minute() -> None:
    scheduled = datetime(2026, 11, 30, 6, 0, 0, 412_000, tzinfo=timezone.utc)
    window = resolve_window(24, scheduled=scheduled)
    assert window.end == datetime(2026, 11, 30, 6, 0, tzinfo=timezone.utc)
    assert window.previous().end == window.start  # consecutive scheduled windows tile


def test_an_empty_window_is_a_clear_error() -> None:
    now = datetime.now(timezone.utc)
    with pytest.raises(InputError, match="The window is empty"):
        resolve_window(1, since=now, until=now - timedelta(hours=1))
