"""Enrolment: which card a customer gets, and what a new card starts with."""

from __future__ import annotations

from core.enums import LedgerType
from domain.rules.values import Change, Decision, ProgramTerms, Reason


def may_enrol(channel: str, allow_self_enrollment: bool) -> Reason | None:
    """``self`` enrolment is refused when the merchant switched it off."""
    if channel == "self" and not allow_self_enrollment:
        return Reason.SELF_ENROLLMENT_DISABLED
    return None


def new_card(terms: ProgramTerms) -> Decision:
    """A new card's first ledger entries: its creation and the welcome bonus, if any."""
    changes = [Change(LedgerType.CARD_CREATED)]
    if terms.points_enabled and terms.welcome_bonus_points > 0:
        changes.append(Change(LedgerType.WELCOME_BONUS, points_delta=terms.welcome_bonus_points))
    return Decision(tuple(changes))


def card_valid_at_store(cross_location: bool, card_store_id: int | None, store_id: int) -> bool:
    """With cross-location off, a card only works at the store it was issued at."""
    return cross_location or card_store_id is None or card_store_id == store_id
