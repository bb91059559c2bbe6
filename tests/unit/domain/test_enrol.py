"""Enrolment helpers (CONTRACT.md section 3, ``enrollment.requested``)."""

from __future__ import annotations

import pytest

from domain.models import LedgerType, ProgramType
from domain.rules.enrol import card_valid_at_store, may_enrol, new_card
from domain.rules.values import CardBalance, Reason
from tests.unit.domain.builders import NOON, apply, kinds, program


@pytest.mark.parametrize(
    ("channel", "allow_self", "expected"),
    [
        ("self", False, Reason.SELF_ENROLLMENT_DISABLED),
        ("self", True, None),
        ("staff", False, None),
        ("online", False, None),
        ("staff", True, None),
    ],
)
def test_only_self_enrolment_can_be_switched_off(
    channel: str, allow_self: bool, expected: Reason | None
) -> None:
    assert may_enrol(channel, allow_self) == expected


@pytest.mark.parametrize("type_", [ProgramType.POINTS, ProgramType.HYBRID])
def test_a_new_card_of_a_points_program_gets_the_welcome_bonus(type_: ProgramType) -> None:
    terms = program(type_, welcome_bonus_points=50)
    decision = new_card(terms)
    assert kinds(decision) == [LedgerType.CARD_CREATED, LedgerType.WELCOME_BONUS]
    card = CardBalance(card_id=1)
    apply(card, decision, NOON, terms)
    assert (card.points_balance, card.lifetime_points_earned) == (50, 50)
    assert card.last_activity_at == NOON


def test_a_new_card_without_a_welcome_bonus_is_only_created() -> None:
    decision = new_card(program(ProgramType.HYBRID, welcome_bonus_points=0))
    assert kinds(decision) == [LedgerType.CARD_CREATED]


def test_a_new_card_of_a_stamps_program_gets_no_points_whatever_the_bonus_says() -> None:
    decision = new_card(program(ProgramType.STAMPS, welcome_bonus_points=50))
    assert kinds(decision) == [LedgerType.CARD_CREATED]
    assert all(change.points_delta == 0 for change in decision.changes)


@pytest.mark.parametrize(
    ("cross_location", "card_store", "store", "valid"),
    [
        (True, 1, 2, True),
        (True, None, 2, True),
        (False, 1, 1, True),
        (False, 1, 2, False),
        (False, None, 2, True),  # a card issued without a store
    ],
)
def test_a_card_is_valid_at_every_store_unless_cross_location_is_off(
    cross_location: bool, card_store: int | None, store: int, valid: bool
) -> None:
    assert card_valid_at_store(cross_location, card_store, store) is valid
