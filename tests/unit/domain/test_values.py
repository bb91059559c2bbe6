"""The plain values the rules share: reason codes, programs, decisions."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from domain.models import LedgerType, ProgramType
from domain.rules.values import Change, Decision, Reason, refused
from tests.unit.domain.builders import LUXEMBOURG, program, utc

# CONTRACT.md section 4, "Reason codes", verbatim.
CONTRACT_REASONS = [
    "store_not_found",
    "program_not_found",
    "program_inactive",
    "card_not_found",
    "card_inactive",
    "card_not_valid_at_store",
    "unsupported_currency",
    "below_minimum_purchase",
    "stamps_not_enabled",
    "points_not_enabled",
    "stamp_cooldown",
    "daily_stamp_limit",
    "duplicate_order",
    "purchase_not_seen_yet",
    "refund_exceeds_purchase",
    "points_shortfall",
    "stamps_shortfall",
    "insufficient_stamps",
    "insufficient_points",
    "unknown_reward",
    "below_minimum_redemption",
    "self_enrollment_disabled",
    "already_enrolled",
]


def test_the_reason_codes_are_exactly_those_of_the_contract() -> None:
    assert sorted(r.value for r in Reason) == sorted(CONTRACT_REASONS)


def test_a_reason_travels_as_its_code() -> None:
    assert f"{Reason.DAILY_STAMP_LIMIT}" == "daily_stamp_limit"


@pytest.mark.parametrize(
    ("type_", "stamps", "points"),
    [
        (ProgramType.STAMPS, True, False),
        (ProgramType.POINTS, False, True),
        (ProgramType.HYBRID, True, True),
    ],
)
def test_a_program_type_says_which_of_stamps_and_points_it_rewards(
    type_: ProgramType, stamps: bool, points: bool
) -> None:
    terms = program(type_)
    assert (terms.stamps_enabled, terms.points_enabled) == (stamps, points)


@pytest.mark.parametrize(
    ("at", "zone", "day"),
    [
        (utc(2025, 6, 2, 21, 59), LUXEMBOURG, date(2025, 6, 2)),
        (utc(2025, 6, 2, 22, 0), LUXEMBOURG, date(2025, 6, 3)),
        (utc(2025, 1, 14, 22, 59), LUXEMBOURG, date(2025, 1, 14)),
        (utc(2025, 1, 14, 23, 0), LUXEMBOURG, date(2025, 1, 15)),
        (utc(2025, 3, 30, 21, 59), LUXEMBOURG, date(2025, 3, 30)),
        (utc(2025, 3, 30, 22, 0), LUXEMBOURG, date(2025, 3, 31)),
        (utc(2025, 10, 26, 22, 59), LUXEMBOURG, date(2025, 10, 26)),
        (utc(2025, 10, 26, 23, 0), LUXEMBOURG, date(2025, 10, 27)),
        (utc(2025, 6, 2, 23, 59), ZoneInfo("UTC"), date(2025, 6, 2)),
        (utc(2025, 6, 3, 3, 0), ZoneInfo("America/New_York"), date(2025, 6, 2)),
        (
            datetime.fromisoformat("2025-06-03T00:30:00+02:00"),
            ZoneInfo("UTC"),
            date(2025, 6, 2),
        ),
    ],
)
def test_the_local_day_of_an_instant_is_read_in_the_merchants_time_zone(
    at: datetime, zone: ZoneInfo, day: date
) -> None:
    assert program(timezone=zone).local_day(at) == day


def test_a_program_without_a_time_zone_counts_days_in_utc() -> None:
    terms = program()
    assert terms.timezone == ZoneInfo("UTC")
    assert terms.local_day(utc(2025, 6, 2, 23, 59)) == date(2025, 6, 2)


def test_a_decision_changed_something_only_when_it_has_changes() -> None:
    assert not Decision().changed
    assert not refused(Reason.STAMP_COOLDOWN).changed
    assert Decision((Change(LedgerType.CARD_CREATED),)).changed


def test_refused_keeps_every_reason_in_order() -> None:
    decision = refused(Reason.BELOW_MINIMUM_REDEMPTION, Reason.INSUFFICIENT_POINTS)
    assert decision.reasons == (Reason.BELOW_MINIMUM_REDEMPTION, Reason.INSUFFICIENT_POINTS)
    assert decision.changes == ()
