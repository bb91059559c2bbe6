"""``reward.redeem_requested`` (CONTRACT.md section 3): a full stamp card or a catalog reward."""

from __future__ import annotations

import pytest

from domain.models import LedgerType, ProgramType
from domain.rules.redeem import redeem_points, redeem_stamps
from domain.rules.values import CardBalance, Reason
from tests.unit.domain.builders import NOON, apply, deltas, kinds, program

POINTS, STAMPS, HYBRID = ProgramType.POINTS, ProgramType.STAMPS, ProgramType.HYBRID

# --- stamps ---------------------------------------------------------------------------------


@pytest.mark.parametrize("type_", [STAMPS, HYBRID])
@pytest.mark.parametrize(("stamps", "left"), [(10, 0), (11, 1), (19, 9)])
def test_a_card_with_enough_stamps_redeems_and_keeps_the_rest(
    type_: ProgramType, stamps: int, left: int
) -> None:
    terms = program(type_, stamps_target=10, stamps_reward_description="Free coffee")
    card = CardBalance(card_id=1, stamp_count=stamps)
    decision = redeem_stamps(terms, card)
    assert kinds(decision) == [LedgerType.STAMP_REDEEMED]
    assert deltas(decision) == (-10, 0)
    assert decision.changes[0].reward_description == "Free coffee"
    assert decision.reasons == ()
    apply(card, decision, NOON, terms)
    assert card.stamp_count == left


@pytest.mark.parametrize("stamps", [0, 1, 9])
def test_a_card_short_of_the_target_is_refused_with_insufficient_stamps(stamps: int) -> None:
    decision = redeem_stamps(program(STAMPS, stamps_target=10), CardBalance(1, stamp_count=stamps))
    assert decision.changes == ()
    assert decision.reasons == (Reason.INSUFFICIENT_STAMPS,)


def test_a_stamp_target_of_one_is_a_reward_per_stamp() -> None:
    decision = redeem_stamps(program(STAMPS, stamps_target=1), CardBalance(1, stamp_count=1))
    assert deltas(decision) == (-1, 0)


def test_a_points_program_refuses_a_stamp_reward_with_stamps_not_enabled() -> None:
    # Even a card that holds stamps (from an earlier hybrid program) cannot use them.
    decision = redeem_stamps(program(POINTS), CardBalance(1, stamp_count=30))
    assert decision.changes == ()
    assert decision.reasons == (Reason.STAMPS_NOT_ENABLED,)


# --- points ---------------------------------------------------------------------------------


@pytest.mark.parametrize("type_", [POINTS, HYBRID])
@pytest.mark.parametrize(("balance", "left"), [(100, 0), (130, 30)])
def test_a_card_with_enough_points_redeems_a_catalog_reward(
    type_: ProgramType, balance: int, left: int
) -> None:
    terms = program(type_)
    card = CardBalance(card_id=1, points_balance=balance)
    decision = redeem_points(terms, card, "coffee")
    assert kinds(decision) == [LedgerType.POINTS_REDEEMED]
    assert deltas(decision) == (0, -100)
    change = decision.changes[0]
    assert (change.reward_code, change.reward_description) == ("coffee", "Free coffee")
    assert decision.reasons == ()
    apply(card, decision, NOON, terms)
    assert card.points_balance == left


@pytest.mark.parametrize("balance", [0, 1_000_000])
def test_a_reward_not_in_the_catalog_is_refused_with_unknown_reward(balance: int) -> None:
    decision = redeem_points(program(POINTS), CardBalance(1, points_balance=balance), "caviar")
    assert decision.changes == ()
    assert decision.reasons == (Reason.UNKNOWN_REWARD,)


def test_an_inactive_reward_is_refused_as_unknown_reward() -> None:
    decision = redeem_points(program(POINTS), CardBalance(1, points_balance=500), "retired")
    assert decision.changes == ()
    assert decision.reasons == (Reason.UNKNOWN_REWARD,)


def test_reward_codes_are_matched_exactly() -> None:
    decision = redeem_points(program(POINTS), CardBalance(1, points_balance=500), "Coffee")
    assert decision.reasons == (Reason.UNKNOWN_REWARD,)


@pytest.mark.parametrize("balance", [0, 99])
def test_a_card_short_of_the_rewards_points_is_refused_with_insufficient_points(
    balance: int,
) -> None:
    decision = redeem_points(program(POINTS), CardBalance(1, points_balance=balance), "coffee")
    assert decision.changes == ()
    assert decision.reasons == (Reason.INSUFFICIENT_POINTS,)


def test_a_card_below_the_minimum_redemption_is_refused_even_when_it_can_pay_the_reward() -> None:
    terms = program(POINTS, minimum_redemption_points=200)
    decision = redeem_points(terms, CardBalance(1, points_balance=150), "coffee")  # costs 100
    assert decision.changes == ()
    assert decision.reasons == (Reason.BELOW_MINIMUM_REDEMPTION,)


def test_a_card_at_exactly_the_minimum_redemption_may_redeem() -> None:
    terms = program(POINTS, minimum_redemption_points=200)
    decision = redeem_points(terms, CardBalance(1, points_balance=200), "coffee")
    assert deltas(decision) == (0, -100)


def test_every_reason_is_reported_at_once_when_both_the_minimum_and_the_price_are_missed() -> None:
    terms = program(POINTS, minimum_redemption_points=200)
    decision = redeem_points(terms, CardBalance(1, points_balance=150), "cake")  # costs 250
    assert decision.changes == ()
    assert set(decision.reasons) == {Reason.BELOW_MINIMUM_REDEMPTION, Reason.INSUFFICIENT_POINTS}
    assert len(decision.reasons) == 2


@pytest.mark.parametrize("reward", ["coffee", "caviar"])
def test_a_stamps_program_refuses_a_points_reward_with_points_not_enabled(reward: str) -> None:
    decision = redeem_points(program(STAMPS), CardBalance(1, points_balance=500), reward)
    assert decision.changes == ()
    assert decision.reasons == (Reason.POINTS_NOT_ENABLED,)
