"""Earning on ``purchase.completed`` (CONTRACT.md section 3): points, stamps, cooldown, cap."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from domain.models import LedgerType, ProgramType
from domain.rules.earn import decide_purchase, points_for, stamps_allowed
from domain.rules.values import CardBalance, Reason, StampHistory
from streams.inputs import PurchaseCompleted
from tests.unit.domain.builders import (
    LUXEMBOURG,
    NO_HISTORY,
    NOON,
    deltas,
    earn_in_order,
    kinds,
    lux,
    program,
    purchase,
    utc,
)

POINTS, STAMPS, HYBRID = ProgramType.POINTS, ProgramType.STAMPS, ProgramType.HYBRID


def recent_stamp(ago: timedelta, on_day: int = 0) -> StampHistory:
    return StampHistory(last_stamp_before=NOON - ago, stamps_on_day=on_day)


# --- points ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount_cents", "points_per_euro", "expected"),
    [
        (1000, 10, 100),
        (999, 10, 99),
        (10, 10, 1),
        (9, 10, 0),
        (1, 10, 0),
        (0, 10, 0),
        (1299, 1, 12),
        (199, 3, 5),  # 5.97 rounds down, never up
        (12345, 7, 864),  # 864.15
        (1000, 0, 0),
    ],
)
def test_points_are_the_floor_of_amount_times_points_per_euro_over_100(
    amount_cents: int, points_per_euro: int, expected: int
) -> None:
    terms = program(POINTS, points_per_euro=points_per_euro)
    assert points_for(terms, amount_cents) == expected


def test_a_points_program_records_the_points_as_one_points_earned_entry() -> None:
    decision = decide_purchase(program(POINTS, points_per_euro=10), purchase(2599), NO_HISTORY)
    assert kinds(decision) == [LedgerType.POINTS_EARNED]
    assert deltas(decision) == (0, 259)
    assert decision.reasons == ()


def test_a_purchase_worth_less_than_one_point_changes_nothing_and_refuses_nothing() -> None:
    decision = decide_purchase(program(POINTS, points_per_euro=10), purchase(9), NO_HISTORY)
    assert decision.changes == ()
    assert decision.reasons == ()


def test_a_points_program_ignores_the_stamps_a_purchase_is_worth() -> None:
    decision = decide_purchase(program(POINTS), purchase(1000, stamps=5), NO_HISTORY)
    assert kinds(decision) == [LedgerType.POINTS_EARNED]
    assert deltas(decision) == (0, 100)


# --- minimum purchase -----------------------------------------------------------------------


@pytest.mark.parametrize("type_", [POINTS, STAMPS, HYBRID])
def test_a_purchase_below_the_minimum_earns_nothing_with_below_minimum_purchase(
    type_: ProgramType,
) -> None:
    terms = program(type_, minimum_purchase_cents=500)
    decision = decide_purchase(terms, purchase(499), NO_HISTORY)
    assert decision.changes == ()
    assert decision.reasons == (Reason.BELOW_MINIMUM_PURCHASE,)


@pytest.mark.parametrize(
    ("type_", "expected"),
    [(POINTS, (0, 50)), (STAMPS, (1, 0)), (HYBRID, (1, 50))],
)
def test_a_purchase_of_exactly_the_minimum_earns(
    type_: ProgramType, expected: tuple[int, int]
) -> None:
    terms = program(type_, minimum_purchase_cents=500)
    decision = decide_purchase(terms, purchase(500), NO_HISTORY)
    assert deltas(decision) == expected
    assert decision.reasons == ()


def test_a_free_purchase_earns_a_stamp_when_there_is_no_minimum() -> None:
    decision = decide_purchase(program(STAMPS), purchase(0), NO_HISTORY)
    assert deltas(decision) == (1, 0)


# --- stamps count ---------------------------------------------------------------------------


def test_a_purchase_that_does_not_say_how_many_stamps_it_is_worth_earns_one() -> None:
    message = PurchaseCompleted.model_validate(
        {
            "event_id": "6f1c1c51-7c1b-4f3e-9a57-0c3c7f0b9a11",
            "type": "purchase.completed",
            "occurred_at": "2025-06-02T14:00:00+02:00",
            "store_code": "LUX-01",
            "order_reference": "A-1",
            "amount_cents": 450,
            "card": {"card_number": "1234-5678-9012"},
        }
    )
    facts = purchase(message.amount_cents, stamps=message.stamps, at=message.occurred_at)
    decision = decide_purchase(program(STAMPS), facts, NO_HISTORY)
    assert kinds(decision) == [LedgerType.STAMP_EARNED]
    assert deltas(decision) == (1, 0)


@pytest.mark.parametrize("stamps", [1, 2, 3, 100])
def test_a_purchase_earns_the_stamps_it_says_it_is_worth(stamps: int) -> None:
    decision = decide_purchase(program(STAMPS), purchase(stamps=stamps), NO_HISTORY)
    assert kinds(decision) == [LedgerType.STAMP_EARNED]
    assert deltas(decision) == (stamps, 0)


def test_a_purchase_worth_zero_stamps_earns_no_stamp_and_refuses_nothing() -> None:
    decision = decide_purchase(program(STAMPS), purchase(stamps=0), NO_HISTORY)
    assert decision.changes == ()
    assert decision.reasons == ()


def test_a_hybrid_purchase_worth_zero_stamps_still_earns_its_points() -> None:
    decision = decide_purchase(program(HYBRID), purchase(1000, stamps=0), NO_HISTORY)
    assert kinds(decision) == [LedgerType.POINTS_EARNED]
    assert decision.reasons == ()


def test_a_purchase_worth_zero_stamps_is_not_held_back_by_the_cooldown_or_the_cap() -> None:
    terms = program(STAMPS, cooldown_minutes=15, max_daily_stamps=1)
    history = recent_stamp(timedelta(minutes=1), on_day=1)
    assert stamps_allowed(terms, 0, NOON, history) == (0, ())


# --- cooldown -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("since_last_stamp", "stamps"),
    [
        (timedelta(seconds=1), 0),
        (timedelta(minutes=14, seconds=59), 0),
        (timedelta(minutes=14, seconds=59, microseconds=999999), 0),
        (timedelta(minutes=15), 1),  # "less than cooldown_minutes before": 15 is not less
        (timedelta(minutes=15, seconds=1), 1),
        (timedelta(hours=3), 1),
    ],
    ids=["1s", "14m59s", "just-inside", "exactly-15m", "15m01s", "3h"],
)
def test_a_stamp_is_refused_while_the_last_one_is_less_than_the_cooldown_old(
    since_last_stamp: timedelta, stamps: int
) -> None:
    terms = program(STAMPS, cooldown_minutes=15)
    decision = decide_purchase(terms, purchase(), recent_stamp(since_last_stamp))
    assert deltas(decision) == (stamps, 0)
    assert decision.reasons == (() if stamps else (Reason.STAMP_COOLDOWN,))


def test_the_cooldown_refuses_every_stamp_a_purchase_is_worth() -> None:
    terms = program(STAMPS, cooldown_minutes=15)
    decision = decide_purchase(terms, purchase(stamps=4), recent_stamp(timedelta(minutes=5)))
    assert decision.changes == ()
    assert decision.reasons == (Reason.STAMP_COOLDOWN,)


def test_a_first_stamp_has_no_cooldown_to_wait_for() -> None:
    terms = program(STAMPS, cooldown_minutes=60)
    assert deltas(decide_purchase(terms, purchase(), NO_HISTORY)) == (1, 0)


@pytest.mark.parametrize("since_last_stamp", [timedelta(0), timedelta(microseconds=1)])
def test_a_cooldown_of_zero_minutes_means_no_cooldown(since_last_stamp: timedelta) -> None:
    terms = program(STAMPS, cooldown_minutes=0)
    decision = decide_purchase(terms, purchase(), recent_stamp(since_last_stamp))
    assert deltas(decision) == (1, 0)
    assert decision.reasons == ()


def test_the_cooldown_is_reported_alone_even_when_the_day_is_also_full() -> None:
    terms = program(STAMPS, cooldown_minutes=15, max_daily_stamps=2)
    decision = decide_purchase(terms, purchase(), recent_stamp(timedelta(minutes=1), on_day=2))
    assert decision.reasons == (Reason.STAMP_COOLDOWN,)


@pytest.mark.parametrize(
    ("last_stamp", "purchase_at", "stamps"),
    [
        # Spring forward: 01:55 CET to 03:05 CEST is 10 minutes, not 70.
        (lux(2025, 3, 30, 1, 55), lux(2025, 3, 30, 3, 5), 0),
        (lux(2025, 3, 30, 1, 55), lux(2025, 3, 30, 3, 10), 1),
        # Fall back: 02:50 CEST to the second 02:10 (CET) is 20 minutes later, not 40 earlier.
        (lux(2025, 10, 26, 2, 50), lux(2025, 10, 26, 2, 10, fold=1), 1),
        (lux(2025, 10, 26, 2, 50), lux(2025, 10, 26, 2, 0, fold=1), 0),
    ],
    ids=["spring-10min", "spring-15min", "autumn-20min", "autumn-10min"],
)
def test_the_cooldown_is_measured_in_real_minutes_across_a_clock_change(
    last_stamp: datetime, purchase_at: datetime, stamps: int
) -> None:
    terms = program(STAMPS, cooldown_minutes=15, timezone=LUXEMBOURG)
    history = StampHistory(last_stamp_before=last_stamp, stamps_on_day=1)
    decision = decide_purchase(terms, purchase(at=purchase_at), history)
    assert deltas(decision) == (stamps, 0)


# --- daily cap ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("on_day", "requested", "granted", "reasons"),
    [
        (0, 1, 1, ()),
        (4, 1, 1, ()),
        (3, 2, 2, ()),
        (4, 3, 1, (Reason.DAILY_STAMP_LIMIT,)),
        (0, 7, 5, (Reason.DAILY_STAMP_LIMIT,)),
        (5, 1, 0, (Reason.DAILY_STAMP_LIMIT,)),
        (9, 1, 0, (Reason.DAILY_STAMP_LIMIT,)),  # the cap was lowered after the day began
    ],
)
def test_the_daily_cap_lets_through_what_is_left_of_the_day_and_refuses_the_rest(
    on_day: int, requested: int, granted: int, reasons: tuple[Reason, ...]
) -> None:
    terms = program(STAMPS, max_daily_stamps=5)
    history = StampHistory(last_stamp_before=None, stamps_on_day=on_day)
    assert stamps_allowed(terms, requested, NOON, history) == (granted, reasons)


def test_a_purchase_over_the_cap_adds_the_allowed_stamps_and_reports_daily_stamp_limit() -> None:
    terms = program(STAMPS, max_daily_stamps=5)
    history = StampHistory(last_stamp_before=None, stamps_on_day=3)
    decision = decide_purchase(terms, purchase(stamps=4), history)
    assert kinds(decision) == [LedgerType.STAMP_EARNED]
    assert deltas(decision) == (2, 0)
    assert decision.reasons == (Reason.DAILY_STAMP_LIMIT,)


def test_a_purchase_on_a_full_day_earns_no_stamp() -> None:
    terms = program(STAMPS, max_daily_stamps=2)
    history = StampHistory(last_stamp_before=None, stamps_on_day=2)
    decision = decide_purchase(terms, purchase(), history)
    assert decision.changes == ()
    assert decision.reasons == (Reason.DAILY_STAMP_LIMIT,)


def test_without_a_daily_cap_any_number_of_stamps_a_day_is_fine() -> None:
    terms = program(STAMPS, max_daily_stamps=None)
    history = StampHistory(last_stamp_before=None, stamps_on_day=1000)
    assert stamps_allowed(terms, 100, NOON, history) == (100, ())


def _stamps_of_two_purchases(timezone: str, first_at: datetime, second_at: datetime) -> list[int]:
    """The stamps two purchases earn on a fresh card with a cap of one stamp a day."""
    terms = program(STAMPS, max_daily_stamps=1, timezone=ZoneInfo(timezone))
    card = CardBalance(card_id=1)
    decisions = earn_in_order(card, terms, [purchase(at=first_at), purchase(at=second_at)])
    return [deltas(d)[0] for d in decisions]


@pytest.mark.parametrize(
    ("first_at", "second_at", "second_stamps"),
    [
        # 23:30 and 00:30 in Luxembourg (CEST): two local days, one UTC day.
        (utc(2025, 6, 2, 21, 30), utc(2025, 6, 2, 22, 30), 1),
        # 00:30 and 23:00 in Luxembourg: one local day, two UTC days.
        (utc(2025, 6, 2, 22, 30), utc(2025, 6, 3, 21, 0), 0),
        # Winter (CET, UTC+1): local midnight is 23:00 UTC.
        (utc(2025, 1, 14, 22, 30), utc(2025, 1, 14, 23, 30), 1),
        (utc(2025, 1, 14, 23, 0), utc(2025, 1, 15, 22, 59), 0),
        # Spring-forward day, 23 hours long: 2025-03-29T23:00Z to 2025-03-30T22:00Z.
        (utc(2025, 3, 29, 23, 30), utc(2025, 3, 30, 21, 30), 0),
        (utc(2025, 3, 29, 23, 30), utc(2025, 3, 30, 22, 0), 1),
        # Fall-back day, 25 hours long: 2025-10-25T22:00Z to 2025-10-26T23:00Z.
        (utc(2025, 10, 25, 22, 0), utc(2025, 10, 26, 22, 59), 0),
        (utc(2025, 10, 25, 22, 0), utc(2025, 10, 26, 23, 0), 1),
    ],
    ids=[
        "summer-local-midnight-between",
        "summer-utc-midnight-between",
        "winter-local-midnight-between",
        "winter-utc-midnight-between",
        "spring-forward-same-day",
        "spring-forward-next-day",
        "fall-back-same-day",
        "fall-back-next-day",
    ],
)
def test_the_daily_cap_counts_per_calendar_day_of_the_merchants_time_zone(
    first_at: datetime, second_at: datetime, second_stamps: int
) -> None:
    stamps = _stamps_of_two_purchases("Europe/Luxembourg", first_at, second_at)
    assert stamps == [1, second_stamps]


def test_the_daily_cap_of_a_utc_merchant_turns_over_at_utc_midnight() -> None:
    # The same two instants as "summer-local-midnight-between": one UTC day, so one stamp.
    stamps = _stamps_of_two_purchases("UTC", utc(2025, 6, 2, 21, 30), utc(2025, 6, 2, 22, 30))
    assert stamps == [1, 0]


def test_the_daily_cap_refuses_the_excess_of_a_busy_local_day_and_reopens_the_next() -> None:
    terms = program(STAMPS, max_daily_stamps=3, timezone=LUXEMBOURG)
    card = CardBalance(card_id=1)
    day = [lux(2025, 6, 2, h) for h in (8, 11, 14, 17, 23)] + [lux(2025, 6, 3, 0, 1)]
    decisions = earn_in_order(card, terms, [purchase(at=t) for t in day])
    assert [deltas(d)[0] for d in decisions] == [1, 1, 1, 0, 0, 1]
    assert [d.reasons for d in decisions][3:5] == [(Reason.DAILY_STAMP_LIMIT,)] * 2
    assert card.stamp_count == 4


# --- hybrid ---------------------------------------------------------------------------------


def test_a_hybrid_purchase_earns_both_stamps_and_points() -> None:
    decision = decide_purchase(program(HYBRID), purchase(1250, stamps=2), NO_HISTORY)
    assert sorted(kinds(decision)) == [LedgerType.POINTS_EARNED, LedgerType.STAMP_EARNED]
    assert deltas(decision) == (2, 125)
    assert decision.reasons == ()


def test_a_hybrid_stamp_refused_by_the_cooldown_does_not_block_the_points() -> None:
    terms = program(HYBRID, cooldown_minutes=15)
    decision = decide_purchase(terms, purchase(1250), recent_stamp(timedelta(minutes=3)))
    assert kinds(decision) == [LedgerType.POINTS_EARNED]
    assert deltas(decision) == (0, 125)
    assert decision.reasons == (Reason.STAMP_COOLDOWN,)
    assert decision.changed  # the engine reports it `applied` with reason stamp_cooldown


def test_a_hybrid_stamp_refused_by_the_daily_cap_does_not_block_the_points() -> None:
    terms = program(HYBRID, max_daily_stamps=2)
    history = StampHistory(last_stamp_before=None, stamps_on_day=2)
    decision = decide_purchase(terms, purchase(1250), history)
    assert kinds(decision) == [LedgerType.POINTS_EARNED]
    assert deltas(decision) == (0, 125)
    assert decision.reasons == (Reason.DAILY_STAMP_LIMIT,)


def test_a_hybrid_purchase_over_the_cap_gets_part_of_its_stamps_and_all_its_points() -> None:
    terms = program(HYBRID, max_daily_stamps=2)
    history = StampHistory(last_stamp_before=None, stamps_on_day=1)
    decision = decide_purchase(terms, purchase(1000, stamps=3), history)
    assert deltas(decision) == (1, 100)
    assert decision.reasons == (Reason.DAILY_STAMP_LIMIT,)


# --- currency -------------------------------------------------------------------------------


@pytest.mark.parametrize("type_", [POINTS, STAMPS, HYBRID])
def test_a_purchase_in_another_currency_earns_nothing_with_unsupported_currency(
    type_: ProgramType,
) -> None:
    decision = decide_purchase(program(type_), purchase(1000, currency="USD"), NO_HISTORY)
    assert decision.changes == ()
    assert decision.reasons == (Reason.UNSUPPORTED_CURRENCY,)


def test_a_program_in_swiss_francs_earns_on_purchases_in_swiss_francs_only() -> None:
    terms = program(HYBRID, currency="CHF")
    assert deltas(decide_purchase(terms, purchase(1000, currency="CHF"), NO_HISTORY)) == (1, 100)
    refused = decide_purchase(terms, purchase(1000, currency="EUR"), NO_HISTORY)
    assert refused.reasons == (Reason.UNSUPPORTED_CURRENCY,)


def test_the_currency_is_checked_before_the_minimum_purchase() -> None:
    terms = program(HYBRID, minimum_purchase_cents=500)
    decision = decide_purchase(terms, purchase(100, currency="GBP"), NO_HISTORY)
    assert decision.reasons == (Reason.UNSUPPORTED_CURRENCY,)
