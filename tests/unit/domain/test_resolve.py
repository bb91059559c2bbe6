"""Whether an event can act at all: the reason codes decided before any earning rule."""

from __future__ import annotations

import pytest

from domain.rules.resolve import (
    CardFacts,
    StoreFacts,
    card_refusal,
    enrolment_finds,
    order_refusal,
    return_waits,
    store_refusal,
)
from domain.rules.values import Reason


@pytest.mark.parametrize(
    ("facts", "needs_active", "expected"),
    [
        (StoreFacts(False), True, Reason.STORE_NOT_FOUND),
        (StoreFacts(True, has_program=False), True, Reason.PROGRAM_NOT_FOUND),
        (StoreFacts(True, has_program=True, program_active=False), True, Reason.PROGRAM_INACTIVE),
        (StoreFacts(True, has_program=True, program_active=False), False, None),
        (StoreFacts(True, has_program=True, program_active=True), True, None),
    ],
)
def test_a_store_needs_a_program_and_most_events_an_active_one(
    facts: StoreFacts, needs_active: bool, expected: Reason | None
) -> None:
    assert store_refusal(facts, needs_active_program=needs_active) == expected


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        (CardFacts(found=False), Reason.CARD_NOT_FOUND),
        (CardFacts(found=True, same_merchant=False, is_active=True), Reason.CARD_NOT_FOUND),
        (
            CardFacts(
                True, True, cross_location=False, card_store_id=1, store_id=2, is_active=True
            ),
            Reason.CARD_NOT_VALID_AT_STORE,
        ),
        (
            CardFacts(True, True, cross_location=False, card_store_id=2, store_id=2),
            Reason.CARD_INACTIVE,
        ),
        (
            CardFacts(True, True, cross_location=True, card_store_id=1, store_id=2, is_active=True),
            None,
        ),
    ],
)
def test_a_card_must_be_the_merchants_valid_here_and_active(
    facts: CardFacts, expected: Reason | None
) -> None:
    assert card_refusal(facts) == expected


def test_orders_returns_and_enrolments() -> None:
    assert order_refusal(True) is Reason.DUPLICATE_ORDER
    assert order_refusal(False) is None
    assert return_waits(False) is Reason.PURCHASE_NOT_SEEN_YET
    assert return_waits(True) is None
    assert enrolment_finds(True) is Reason.ALREADY_ENROLLED
    assert enrolment_finds(False) is None
