"""``expiry.run_requested`` (CONTRACT.md section 3): points lost after inactivity."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.models import LedgerType, ProgramType
from domain.rules.expire import decide_expiry, expiry_cutoff
from domain.rules.values import CardBalance
from tests.unit.domain.builders import apply, kinds, program, utc

AS_OF = utc(2026, 3, 1, 3, 0)
YEARLY = program(ProgramType.HYBRID, points_expiration_days=365)


def idle_card(idle: timedelta, points: int = 120, stamps: int = 4) -> CardBalance:
    return CardBalance(
        card_id=1, points_balance=points, stamp_count=stamps, last_activity_at=AS_OF - idle
    )


def test_the_cutoff_is_as_of_minus_the_expiration_days() -> None:
    assert expiry_cutoff(YEARLY, AS_OF) == AS_OF - timedelta(days=365)


@pytest.mark.parametrize(
    ("idle", "expires"),
    [
        (timedelta(days=365, seconds=1), True),
        (timedelta(days=365, microseconds=1), True),
        (timedelta(days=365), False),  # exactly 365 days is not older than 365 days
        (timedelta(days=364, hours=23), False),
        (timedelta(days=800), True),
        (timedelta(0), False),
    ],
    ids=["365d+1s", "365d+1us", "exactly-365d", "364d23h", "800d", "today"],
)
def test_a_card_idle_for_longer_than_the_expiration_days_loses_its_whole_balance(
    idle: timedelta, expires: bool
) -> None:
    decision = decide_expiry(YEARLY, idle_card(idle), AS_OF)
    if expires:
        assert kinds(decision) == [LedgerType.POINTS_EXPIRED]
        assert decision.changes[0].points_delta == -120
        assert decision.changes[0].stamps_delta == 0
    else:
        assert not decision.changed
    assert decision.reasons == ()


def test_an_expired_card_ends_at_zero_points_and_keeps_its_stamps() -> None:
    card = idle_card(timedelta(days=400), points=120, stamps=4)
    apply(card, decide_expiry(YEARLY, card, AS_OF), AS_OF, YEARLY)
    assert (card.points_balance, card.points_expired, card.stamp_count) == (0, 120, 4)


def test_a_card_expired_once_is_not_expired_again() -> None:
    card = idle_card(timedelta(days=400))
    apply(card, decide_expiry(YEARLY, card, AS_OF), AS_OF, YEARLY)
    assert not decide_expiry(YEARLY, card, AS_OF + timedelta(days=1)).changed


def test_a_program_without_expiration_days_never_expires_points() -> None:
    terms = program(ProgramType.POINTS, points_expiration_days=None)
    assert expiry_cutoff(terms, AS_OF) is None
    assert not decide_expiry(terms, idle_card(timedelta(days=5000)), AS_OF).changed


def test_a_card_without_points_has_nothing_to_expire() -> None:
    assert not decide_expiry(YEARLY, idle_card(timedelta(days=400), points=0), AS_OF).changed


def test_a_stamps_program_expires_nothing_even_with_expiration_days_set() -> None:
    terms = program(ProgramType.STAMPS, points_expiration_days=30)
    assert expiry_cutoff(terms, AS_OF) is None
    assert not decide_expiry(terms, idle_card(timedelta(days=400)), AS_OF).changed


def test_a_card_that_never_had_activity_is_left_alone() -> None:
    card = CardBalance(card_id=1, points_balance=50, last_activity_at=None)
    assert not decide_expiry(YEARLY, card, AS_OF).changed


def test_expiry_is_judged_at_the_as_of_time_not_the_wall_clock() -> None:
    card = idle_card(timedelta(days=10))
    long_ago = AS_OF - timedelta(days=1000)
    card.last_activity_at = long_ago - timedelta(days=366)
    assert decide_expiry(YEARLY, card, long_ago).changed
    card.last_activity_at = long_ago - timedelta(days=1)
    assert not decide_expiry(YEARLY, card, long_ago).changed
