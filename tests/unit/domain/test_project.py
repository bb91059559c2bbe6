"""``apply_change``: how one ledger entry moves a card's balances, counters and times."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta

import pytest

from domain.models import LedgerType
from domain.rules.project import apply_change
from domain.rules.values import CardBalance, Change
from tests.unit.domain.builders import LUXEMBOURG, NOON, lux, program, utc

HYBRID_LUX = program(timezone=LUXEMBOURG)


def stamp(n: int = 1) -> Change:
    return Change(LedgerType.STAMP_EARNED, stamps_delta=n)


def points(n: int) -> Change:
    return Change(LedgerType.POINTS_EARNED, points_delta=n)


def apply_all(card: CardBalance, *entries: tuple[Change, datetime]) -> CardBalance:
    for change, at in entries:
        apply_change(card, change, at, HYBRID_LUX)
    return card


# --- balances and lifetime counters ---------------------------------------------------------


def test_earned_stamps_add_to_the_count_and_to_the_lifetime_stamps() -> None:
    card = apply_all(
        CardBalance(card_id=1), (stamp(2), NOON), (stamp(3), NOON + timedelta(hours=1))
    )
    assert (card.stamp_count, card.lifetime_stamps) == (5, 5)


def test_a_stamp_reward_takes_the_stamps_and_counts_one_reward_but_keeps_lifetime_stamps() -> None:
    card = CardBalance(card_id=1, stamp_count=12, lifetime_stamps=12)
    apply_change(card, Change(LedgerType.STAMP_REDEEMED, stamps_delta=-10), NOON, HYBRID_LUX)
    assert (card.stamp_count, card.lifetime_stamps, card.rewards_redeemed) == (2, 12, 1)
    assert card.last_redemption_at == NOON


def test_earned_points_and_welcome_bonus_count_as_lifetime_points_earned() -> None:
    card = apply_all(
        CardBalance(card_id=1),
        (Change(LedgerType.WELCOME_BONUS, points_delta=50), NOON),
        (points(120), NOON + timedelta(minutes=1)),
    )
    assert (card.points_balance, card.lifetime_points_earned) == (170, 170)
    assert card.last_points_at == NOON + timedelta(minutes=1)


def test_a_points_reward_counts_its_points_as_redeemed_and_one_reward() -> None:
    card = CardBalance(card_id=1, points_balance=300, lifetime_points_earned=300)
    apply_change(card, Change(LedgerType.POINTS_REDEEMED, points_delta=-250), NOON, HYBRID_LUX)
    assert (card.points_balance, card.points_redeemed, card.rewards_redeemed) == (50, 250, 1)
    assert card.lifetime_points_earned == 300


@pytest.mark.parametrize(
    ("kind", "counter"),
    [(LedgerType.POINTS_VOIDED, "points_voided"), (LedgerType.POINTS_EXPIRED, "points_expired")],
)
def test_voided_and_expired_points_are_counted_as_positive_totals(
    kind: LedgerType, counter: str
) -> None:
    card = CardBalance(card_id=1, points_balance=300, lifetime_points_earned=300)
    apply_change(card, Change(kind, points_delta=-120), NOON, HYBRID_LUX)
    assert card.points_balance == 180
    assert getattr(card, counter) == 120
    assert card.lifetime_points_earned == 300


def test_the_points_counters_always_explain_the_balance() -> None:
    card = apply_all(
        CardBalance(card_id=1),
        (Change(LedgerType.WELCOME_BONUS, points_delta=50), utc(2025, 1, 1)),
        (points(400), utc(2025, 1, 2)),
        (Change(LedgerType.POINTS_REDEEMED, points_delta=-100), utc(2025, 1, 3)),
        (Change(LedgerType.POINTS_VOIDED, points_delta=-40), utc(2025, 1, 4)),
        (Change(LedgerType.POINTS_EXPIRED, points_delta=-310), utc(2026, 1, 5)),
    )
    assert card.points_balance == 0
    assert card.points_balance == (
        card.lifetime_points_earned
        - card.points_redeemed
        - card.points_voided
        - card.points_expired
    )


@pytest.mark.parametrize(
    ("change", "stamps", "points"),
    [
        (Change(LedgerType.STAMP_REDEEMED, stamps_delta=-10), 9, 0),
        (Change(LedgerType.STAMP_VOIDED, stamps_delta=-1), 0, 0),
        (Change(LedgerType.STAMP_ADJUSTED, stamps_delta=-3), 2, 0),
        (Change(LedgerType.POINTS_REDEEMED, points_delta=-100), 0, 99),
        (Change(LedgerType.POINTS_VOIDED, points_delta=-1), 0, 0),
        (Change(LedgerType.POINTS_ADJUSTED, points_delta=-51), 0, 50),
        (Change(LedgerType.POINTS_EXPIRED, points_delta=-51), 0, 50),
    ],
    ids=lambda v: v.entry_type.value if isinstance(v, Change) else str(v),
)
def test_a_change_that_would_take_a_balance_below_zero_raises_and_leaves_the_card_alone(
    change: Change, stamps: int, points: int
) -> None:
    card = CardBalance(card_id=7, stamp_count=stamps, points_balance=points, lifetime_stamps=9)
    before = dataclasses.replace(card)
    with pytest.raises(ValueError, match="below zero"):
        apply_change(card, change, NOON, HYBRID_LUX)
    assert card == before


def test_a_change_that_takes_a_balance_to_exactly_zero_is_fine() -> None:
    card = CardBalance(card_id=1, stamp_count=10, points_balance=100)
    apply_change(card, Change(LedgerType.STAMP_REDEEMED, stamps_delta=-10), NOON, HYBRID_LUX)
    apply_change(card, Change(LedgerType.POINTS_REDEEMED, points_delta=-100), NOON, HYBRID_LUX)
    assert (card.stamp_count, card.points_balance) == (0, 0)


# --- status ---------------------------------------------------------------------------------


def test_deactivation_and_reactivation_switch_the_card_without_counting_as_activity() -> None:
    card = CardBalance(card_id=1, last_activity_at=NOON)
    later = NOON + timedelta(days=30)
    apply_change(card, Change(LedgerType.CARD_DEACTIVATED), later, HYBRID_LUX)
    assert card.is_active is False
    apply_change(card, Change(LedgerType.CARD_REACTIVATED), later, HYBRID_LUX)
    assert card.is_active is True
    assert card.last_activity_at == NOON


# --- stamp day ------------------------------------------------------------------------------


def test_stamps_of_one_local_day_add_up_in_the_days_count() -> None:
    card = apply_all(
        CardBalance(card_id=1), (stamp(1), lux(2025, 6, 2, 8)), (stamp(2), lux(2025, 6, 2, 23, 59))
    )
    assert (card.stamp_day, card.stamp_day_count) == (date(2025, 6, 2), 3)


def test_the_first_stamp_of_a_new_local_day_starts_a_new_count() -> None:
    card = apply_all(
        CardBalance(card_id=1),
        (stamp(3), lux(2025, 6, 2, 23, 59)),
        (stamp(1), lux(2025, 6, 3, 0, 0)),
    )
    assert (card.stamp_day, card.stamp_day_count) == (date(2025, 6, 3), 1)


def test_the_stamp_day_is_the_merchants_day_not_the_utc_day() -> None:
    # 22:30 UTC on 2 June is 00:30 on 3 June in Luxembourg; 21:00 UTC on 3 June is 23:00 there.
    card = apply_all(
        CardBalance(card_id=1),
        (stamp(), utc(2025, 6, 2, 22, 30)),
        (stamp(), utc(2025, 6, 3, 21, 0)),
    )
    assert (card.stamp_day, card.stamp_day_count) == (date(2025, 6, 3), 2)


def test_a_late_stamp_of_an_earlier_day_does_not_reset_todays_count() -> None:
    card = apply_all(
        CardBalance(card_id=1),
        (stamp(2), lux(2025, 6, 3, 10)),
        (stamp(1), lux(2025, 6, 2, 18)),  # arrives late: yesterday's purchase
    )
    assert (card.stamp_day, card.stamp_day_count) == (date(2025, 6, 3), 2)
    assert (card.stamp_count, card.lifetime_stamps) == (3, 3)
    assert card.last_stamp_at == lux(2025, 6, 3, 10)


def test_stamps_other_than_earned_ones_leave_the_days_count_alone() -> None:
    card = apply_all(CardBalance(card_id=1), (stamp(3), lux(2025, 6, 2, 10)))
    apply_change(
        card, Change(LedgerType.STAMP_ADJUSTED, stamps_delta=5), lux(2025, 6, 3, 9), HYBRID_LUX
    )
    assert (card.stamp_day, card.stamp_day_count, card.lifetime_stamps) == (date(2025, 6, 2), 3, 3)


# --- times ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (stamp(), "last_stamp_at"),
        (points(10), "last_points_at"),
        (Change(LedgerType.WELCOME_BONUS, points_delta=10), "last_points_at"),
        (Change(LedgerType.STAMP_REDEEMED, stamps_delta=-1), "last_redemption_at"),
        (Change(LedgerType.POINTS_REDEEMED, points_delta=-1), "last_redemption_at"),
        (stamp(), "last_activity_at"),
        (points(10), "last_activity_at"),
        (Change(LedgerType.STAMP_VOIDED, stamps_delta=-1), "last_activity_at"),
        (Change(LedgerType.POINTS_VOIDED, points_delta=-1), "last_activity_at"),
        (Change(LedgerType.STAMP_ADJUSTED, stamps_delta=1), "last_activity_at"),
        (Change(LedgerType.POINTS_ADJUSTED, points_delta=-1), "last_activity_at"),
    ],
    ids=lambda v: v.entry_type.value if isinstance(v, Change) else str(v),
)
def test_a_last_time_moves_forward_and_never_back(change: Change, field: str) -> None:
    card = CardBalance(card_id=1, stamp_count=50, points_balance=500)
    apply_change(card, change, NOON, HYBRID_LUX)
    assert getattr(card, field) == NOON
    apply_change(card, change, NOON + timedelta(hours=2), HYBRID_LUX)
    assert getattr(card, field) == NOON + timedelta(hours=2)
    apply_change(card, change, NOON + timedelta(hours=1), HYBRID_LUX)  # a late event
    assert getattr(card, field) == NOON + timedelta(hours=2)


def test_an_expiry_is_not_activity() -> None:
    card = CardBalance(card_id=1, points_balance=80, last_activity_at=utc(2024, 1, 1))
    apply_change(card, Change(LedgerType.POINTS_EXPIRED, points_delta=-80), NOON, HYBRID_LUX)
    assert card.last_activity_at == utc(2024, 1, 1)


def test_the_last_stamp_time_moves_forward_through_the_repeated_hour_of_a_clock_change() -> None:
    # 02:50 CEST (00:50 UTC), then the second 02:10 of the night (CET, 01:10 UTC): later.
    first, second = lux(2025, 10, 26, 2, 50), lux(2025, 10, 26, 2, 10, fold=1)
    card = apply_all(CardBalance(card_id=1), (stamp(), first), (stamp(), second))
    assert card.last_stamp_at == second
    assert card.last_activity_at == second
