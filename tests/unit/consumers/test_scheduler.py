"""The daily expiry run: when it is published, and why two schedulers cannot run it twice."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from consumers.scheduler import expiry_event, next_run

LUX = ZoneInfo("Europe/Luxembourg")


def test_two_schedulers_publish_the_same_event_id_for_a_day() -> None:
    one = expiry_event(date(2026, 11, 21), time(3, 0), LUX)
    other = expiry_event(date(2026, 11, 21), time(3, 0), LUX)
    assert one.event_id == other.event_id
    assert one.occurred_at == datetime(2026, 11, 21, 3, 0, tzinfo=LUX)


def test_each_day_has_its_own_run() -> None:
    monday = expiry_event(date(2026, 11, 23), time(3, 0), LUX)
    tuesday = expiry_event(date(2026, 11, 24), time(3, 0), LUX)
    assert monday.event_id != tuesday.event_id


def test_the_next_run_is_today_before_the_time_and_tomorrow_after_it() -> None:
    before = datetime(2026, 11, 21, 1, 0, tzinfo=UTC)  # 02:00 in Luxembourg
    after = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)  # 04:00 in Luxembourg
    assert next_run(before, time(3, 0), LUX) == datetime(2026, 11, 21, 3, 0, tzinfo=LUX)
    assert next_run(after, time(3, 0), LUX) == datetime(2026, 11, 22, 3, 0, tzinfo=LUX)


def test_the_run_keeps_its_local_time_across_a_clock_change() -> None:
    # Clocks go back on 25 October 2026 in Luxembourg: 03:00 local is 02:00 UTC after it.
    saturday_night = datetime(2026, 10, 24, 12, 0, tzinfo=UTC)
    run = next_run(saturday_night, time(3, 0), LUX)
    assert run.astimezone(UTC) == datetime(2026, 10, 25, 2, 0, tzinfo=UTC)
