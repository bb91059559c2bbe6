"""``purchase.returned`` (CONTRACT.md section 3): voiding what an order earned, pro rata."""

from __future__ import annotations

import pytest

from domain.models import LedgerType
from domain.rules.values import CardBalance, Reason
from domain.rules.void import PurchaseRecord, ReturnOutcome, decide_return
from tests.unit.domain.builders import NOON, apply, deltas, kinds, program

RICH = 1_000_000  # a balance big enough that nothing is ever short


def rich_card() -> CardBalance:
    return CardBalance(card_id=1, stamp_count=RICH, points_balance=RICH)


def refund_all(
    record: PurchaseRecord, refunds: list[int], card: CardBalance
) -> tuple[list[ReturnOutcome], PurchaseRecord]:
    """Apply refunds one after the other, as the engine does, carrying the record along."""
    outcomes = []
    for refund in refunds:
        outcome = decide_return(record, card, refund)
        apply(card, outcome.decision, NOON, program())
        outcomes.append(outcome)
        record = outcome.purchase
    return outcomes, record


def total_voided(outcomes: list[ReturnOutcome]) -> tuple[int, int]:
    """(stamps, points) taken back from the card over all the refunds, as positive numbers."""
    stamps = points = 0
    for outcome in outcomes:
        s, p = deltas(outcome.decision)
        stamps, points = stamps - s, points - p
    return stamps, points


def test_a_full_refund_voids_everything_the_purchase_earned() -> None:
    record = PurchaseRecord(amount_cents=2000, points_earned=200, stamps_earned=2)
    outcome = decide_return(record, rich_card(), 2000)
    assert sorted(kinds(outcome.decision)) == [LedgerType.POINTS_VOIDED, LedgerType.STAMP_VOIDED]
    assert deltas(outcome.decision) == (-2, -200)
    assert outcome.decision.reasons == ()
    assert outcome.purchase == PurchaseRecord(2000, 200, 2, 2000, 200, 2)


@pytest.mark.parametrize(
    ("refund", "points", "stamps"),
    [(1000, 50, 1), (999, 49, 1), (666, 33, 0), (1, 0, 0), (1500, 75, 2), (1999, 99, 2)],
)
def test_a_partial_refund_voids_the_floor_of_its_share(
    refund: int, points: int, stamps: int
) -> None:
    record = PurchaseRecord(amount_cents=2000, points_earned=100, stamps_earned=3)
    outcome = decide_return(record, rich_card(), refund)
    assert deltas(outcome.decision) == (-stamps, -points)
    assert outcome.decision.reasons == ()
    assert (outcome.purchase.points_voided, outcome.purchase.stamps_voided) == (points, stamps)


@pytest.mark.parametrize(
    ("amount", "earned", "refunds"),
    [
        (300, 10, [100, 100, 100]),  # per-refund floors give 3+3+3 = 9; the order earned 10
        (1000, 7, [333, 333, 334]),
        (1000, 7, [100] * 10),
        (999, 100, [1] * 37),
        (12345, 1234, [1000, 2345, 4000, 5000]),
        (500, 3, [50, 450]),
    ],
)
def test_after_several_partial_refunds_the_voids_add_up_to_the_floor_of_the_total_share(
    amount: int, earned: int, refunds: list[int]
) -> None:
    record = PurchaseRecord(amount_cents=amount, points_earned=earned, stamps_earned=earned)
    outcomes, after = refund_all(record, refunds, rich_card())
    refunded = sum(refunds)
    expected = earned * refunded // amount
    assert total_voided(outcomes) == (expected, expected)
    per_refund_floors = sum(earned * r // amount for r in refunds)
    assert expected >= per_refund_floors
    assert after.refunded_cents == refunded


def test_three_thirds_of_an_order_void_all_ten_of_its_points() -> None:
    record = PurchaseRecord(amount_cents=300, points_earned=10, stamps_earned=0)
    outcomes, _ = refund_all(record, [100, 100, 100], rich_card())
    assert [deltas(o.decision)[1] for o in outcomes] == [-3, -3, -4]


def test_a_refund_too_small_to_void_a_whole_point_still_counts_towards_the_next() -> None:
    record = PurchaseRecord(amount_cents=1000, points_earned=10, stamps_earned=0)
    first = decide_return(record, rich_card(), 50)
    assert first.decision.changes == ()
    assert first.decision.reasons == ()
    assert first.purchase.refunded_cents == 50
    # The engine must store the record of this refund, or the next 50 cents start from 0.
    assert first.recorded
    assert first.counted_cents == 50
    second = decide_return(first.purchase, rich_card(), 50)
    assert deltas(second.decision) == (0, -1)


# --- refunds over the amount ----------------------------------------------------------------


def test_a_refund_over_the_amount_voids_everything_and_reports_refund_exceeds_purchase() -> None:
    record = PurchaseRecord(amount_cents=1000, points_earned=100, stamps_earned=1)
    outcome = decide_return(record, rich_card(), 1500)
    assert deltas(outcome.decision) == (-1, -100)
    assert outcome.decision.reasons == (Reason.REFUND_EXCEEDS_PURCHASE,)
    assert outcome.purchase.refunded_cents == 1000


def test_refunds_that_add_up_to_more_than_the_amount_are_capped_at_it() -> None:
    record = PurchaseRecord(amount_cents=1000, points_earned=100, stamps_earned=0)
    outcomes, after = refund_all(record, [600, 600], rich_card())
    assert [o.decision.reasons for o in outcomes] == [(), (Reason.REFUND_EXCEEDS_PURCHASE,)]
    assert [deltas(o.decision)[1] for o in outcomes] == [-60, -40]
    assert [o.counted_cents for o in outcomes] == [600, 400]
    assert after.refunded_cents == 1000


def test_refunds_that_add_up_to_exactly_the_amount_are_not_excessive() -> None:
    record = PurchaseRecord(amount_cents=1000, points_earned=100, stamps_earned=0)
    outcomes, _ = refund_all(record, [600, 400], rich_card())
    assert all(o.decision.reasons == () for o in outcomes)


def test_a_refund_of_an_order_already_refunded_in_full_changes_nothing() -> None:
    record = PurchaseRecord(1000, 100, 1, refunded_cents=1000, points_voided=100, stamps_voided=1)
    outcome = decide_return(record, rich_card(), 1)
    assert outcome.decision.changes == ()
    assert outcome.decision.reasons == (Reason.REFUND_EXCEEDS_PURCHASE,)
    assert outcome.purchase == record
    assert outcome.counted_cents == 0
    assert not outcome.recorded


# --- shortfall ------------------------------------------------------------------------------


def test_points_already_spent_are_reported_as_a_shortfall_and_the_balance_stops_at_zero() -> None:
    record = PurchaseRecord(amount_cents=1000, points_earned=100, stamps_earned=0)
    card = CardBalance(card_id=1, points_balance=30)
    outcome = decide_return(record, card, 1000)
    assert deltas(outcome.decision) == (0, -30)
    assert outcome.decision.reasons == (Reason.POINTS_SHORTFALL,)
    assert outcome.recorded
    apply(card, outcome.decision, NOON, program())
    assert card.points_balance == 0
    assert outcome.purchase.points_voided == 100  # the shortfall counts as voided


def test_stamps_already_redeemed_are_reported_as_a_stamps_shortfall() -> None:
    record = PurchaseRecord(amount_cents=1000, points_earned=0, stamps_earned=2)
    card = CardBalance(card_id=1, stamp_count=0)
    outcome = decide_return(record, card, 1000)
    assert outcome.decision.changes == ()
    assert outcome.decision.reasons == (Reason.STAMPS_SHORTFALL,)
    assert outcome.recorded  # the refund and the shortfall are on record
    assert outcome.purchase.stamps_voided == 2


def test_both_shortfalls_are_reported_together() -> None:
    record = PurchaseRecord(amount_cents=1000, points_earned=100, stamps_earned=2)
    card = CardBalance(card_id=1, stamp_count=1, points_balance=10)
    outcome = decide_return(record, card, 1000)
    assert deltas(outcome.decision) == (-1, -10)
    assert set(outcome.decision.reasons) == {Reason.POINTS_SHORTFALL, Reason.STAMPS_SHORTFALL}


def test_a_shortfall_is_reported_once_and_not_taken_again_by_the_next_refund() -> None:
    record = PurchaseRecord(amount_cents=1000, points_earned=100, stamps_earned=0)
    card = CardBalance(card_id=1, points_balance=30)
    first = decide_return(record, card, 500)  # 50 due, 30 there
    apply(card, first.decision, NOON, program())
    assert first.decision.reasons == (Reason.POINTS_SHORTFALL,)
    card.points_balance = 500  # the customer earns again before the second refund
    second = decide_return(first.purchase, card, 500)  # 50 more due, not 70
    assert deltas(second.decision) == (0, -50)
    assert second.decision.reasons == ()


def test_a_shortfall_does_not_grow_back_on_a_refund_that_voids_nothing_new() -> None:
    record = PurchaseRecord(amount_cents=1000, points_earned=10, stamps_earned=0)
    card = CardBalance(card_id=1, points_balance=0)
    first = decide_return(record, card, 500)  # 5 due, none there
    assert first.decision.reasons == (Reason.POINTS_SHORTFALL,)
    second = decide_return(first.purchase, card, 50)  # still floor(10 * 550 / 1000) = 5
    assert second.decision.reasons == ()
    assert second.decision.changes == ()


# --- nothing earned, nothing to void --------------------------------------------------------


def test_a_refund_of_a_purchase_that_earned_nothing_voids_nothing() -> None:
    record = PurchaseRecord(amount_cents=1000, points_earned=0, stamps_earned=0)
    outcome = decide_return(record, rich_card(), 400)
    assert outcome.decision.changes == ()
    assert outcome.decision.reasons == ()
    assert outcome.purchase.refunded_cents == 400
    assert outcome.recorded  # the order's refunded total moved


def test_a_refund_over_the_amount_of_an_order_that_earned_nothing_is_still_recorded() -> None:
    record = PurchaseRecord(amount_cents=1000, points_earned=0, stamps_earned=0, refunded_cents=500)
    outcome = decide_return(record, rich_card(), 600)
    assert outcome.decision.changes == ()
    assert outcome.decision.reasons == (Reason.REFUND_EXCEEDS_PURCHASE,)
    assert (outcome.purchase.refunded_cents, outcome.counted_cents) == (1000, 500)
    assert outcome.recorded


def test_a_refund_of_a_free_purchase_is_capped_at_zero_and_voids_nothing() -> None:
    # A 0-cent purchase may have earned a stamp; a refund of it is over the amount (0), and
    # floor(stamps * 0 / 0) is taken as nothing to void rather than a division by zero.
    record = PurchaseRecord(amount_cents=0, points_earned=0, stamps_earned=1)
    outcome = decide_return(record, rich_card(), 100)
    assert outcome.decision.changes == ()
    assert outcome.decision.reasons == (Reason.REFUND_EXCEEDS_PURCHASE,)
    assert outcome.purchase.refunded_cents == 0
    assert not outcome.recorded
