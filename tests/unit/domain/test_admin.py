"""What an admin may do to a card by hand: adjustments and status changes."""

from __future__ import annotations

import pytest

from domain.models import LedgerType
from domain.rules.admin import AdjustmentError, decide_adjustment, decide_status
from domain.rules.values import CardBalance
from tests.unit.domain.builders import NOON, apply, deltas, kinds, program


def a_card(stamps: int = 3, points: int = 40) -> CardBalance:
    return CardBalance(card_id=1, stamp_count=stamps, points_balance=points)


@pytest.mark.parametrize("reason", ["", " ", "\t\n"])
def test_an_adjustment_without_a_reason_is_refused(reason: str) -> None:
    with pytest.raises(AdjustmentError, match="reason is required"):
        decide_adjustment(a_card(), stamps=1, points=0, reason=reason)


def test_an_adjustment_that_changes_nothing_is_refused() -> None:
    with pytest.raises(AdjustmentError, match="changes nothing"):
        decide_adjustment(a_card(), stamps=0, points=0, reason="goodwill")


def test_an_adjustment_error_is_a_value_error() -> None:
    assert issubclass(AdjustmentError, ValueError)


@pytest.mark.parametrize(
    ("stamps", "points", "message"),
    [
        (-4, 0, "the card has 3 stamps; cannot remove 4"),
        (0, -41, "the card has 40 points; cannot remove 41"),
        (-4, -41, "the card has 3 stamps; cannot remove 4"),
        (1, -41, "the card has 40 points; cannot remove 41"),
    ],
)
def test_an_adjustment_cannot_take_a_balance_below_zero(
    stamps: int, points: int, message: str
) -> None:
    with pytest.raises(AdjustmentError, match=message):
        decide_adjustment(a_card(), stamps=stamps, points=points, reason="correction")


def test_an_adjustment_may_take_a_balance_to_exactly_zero() -> None:
    card = a_card()
    decision = decide_adjustment(card, stamps=-3, points=-40, reason="closing account")
    apply(card, decision, NOON, program())
    assert (card.stamp_count, card.points_balance) == (0, 0)


@pytest.mark.parametrize(
    ("stamps", "points", "expected_kinds"),
    [
        (2, 0, [LedgerType.STAMP_ADJUSTED]),
        (-1, 0, [LedgerType.STAMP_ADJUSTED]),
        (0, 25, [LedgerType.POINTS_ADJUSTED]),
        (0, -15, [LedgerType.POINTS_ADJUSTED]),
        (2, -15, [LedgerType.STAMP_ADJUSTED, LedgerType.POINTS_ADJUSTED]),
    ],
)
def test_an_adjustment_records_one_entry_per_balance_it_moves_with_its_reason(
    stamps: int, points: int, expected_kinds: list[LedgerType]
) -> None:
    decision = decide_adjustment(a_card(), stamps=stamps, points=points, reason="till was down")
    assert kinds(decision) == expected_kinds
    assert deltas(decision) == (stamps, points)
    assert all(change.notes == "till was down" for change in decision.changes)
    assert decision.reasons == ()


def test_deactivating_an_active_card_records_a_deactivation_with_its_reason() -> None:
    decision = decide_status(a_card(), active=False, reason="lost card")
    assert kinds(decision) == [LedgerType.CARD_DEACTIVATED]
    assert decision.changes[0].notes == "lost card"
    assert deltas(decision) == (0, 0)


def test_reactivating_an_inactive_card_records_a_reactivation() -> None:
    card = CardBalance(card_id=1, is_active=False)
    decision = decide_status(card, active=True)
    assert kinds(decision) == [LedgerType.CARD_REACTIVATED]
    apply(card, decision, NOON, program())
    assert card.is_active is True


@pytest.mark.parametrize("active", [True, False])
def test_asking_for_the_state_a_card_is_already_in_changes_nothing(active: bool) -> None:
    decision = decide_status(CardBalance(card_id=1, is_active=active), active=active)
    assert not decision.changed
    assert decision.reasons == ()


def test_a_status_change_keeps_the_balances() -> None:
    card = a_card()
    apply(card, decide_status(card, active=False), NOON, program())
    assert (card.is_active, card.stamp_count, card.points_balance) == (False, 3, 40)


def test_stamps_added_by_hand_stop_at_the_target_with_what_may_still_be_added() -> None:
    with pytest.raises(AdjustmentError, match="has 8 of 10 stamps; add at most 2"):
        decide_adjustment(a_card(stamps=8), stamps=3, points=0, reason="x", stamps_target=10)
    decision = decide_adjustment(a_card(stamps=8), stamps=2, points=0, reason="x", stamps_target=10)
    assert decision.changes[0].stamps_delta == 2


def test_a_full_card_takes_no_stamp_by_hand_but_may_lose_some() -> None:
    with pytest.raises(AdjustmentError, match="redeem the full card before adding stamps"):
        decide_adjustment(a_card(stamps=10), stamps=1, points=0, reason="x", stamps_target=10)
    # A card overfilled by purchases may still be corrected downwards.
    decision = decide_adjustment(
        a_card(stamps=12), stamps=-2, points=0, reason="x", stamps_target=10
    )
    assert decision.changes[0].stamps_delta == -2


def test_an_erased_customers_card_is_not_reactivated_but_may_be_deactivated() -> None:
    off = CardBalance(card_id=1, is_active=False)
    with pytest.raises(AdjustmentError, match="customer was erased"):
        decide_status(off, True, erased=True)
    assert decide_status(off, True).changes
    on = CardBalance(card_id=1, is_active=True)
    assert decide_status(on, False, erased=True).changes
