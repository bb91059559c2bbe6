"""What an admin may do to a card by hand: adjust balances, deactivate, reactivate."""

from __future__ import annotations

from core.enums import LedgerType
from domain.rules.values import CardBalance, Change, Decision


class AdjustmentError(ValueError):
    """An adjustment that cannot be made, in words an admin reads."""


def decide_adjustment(
    card: CardBalance, stamps: int, points: int, reason: str, *, stamps_target: int | None = None
) -> Decision:
    """Add or remove stamps and points; a reason is mandatory and no balance goes negative.

    Stamps added by hand never take a card past its program's ``stamps_target``: a full card
    is redeemed, not stuffed (purchases may still overfill it, as at a till).
    """
    if not reason.strip():
        raise AdjustmentError("a reason is required for a manual adjustment")
    if stamps == 0 and points == 0:
        raise AdjustmentError("the adjustment changes nothing")
    if card.stamp_count + stamps < 0:
        raise AdjustmentError(f"the card has {card.stamp_count} stamps; cannot remove {-stamps}")
    if stamps > 0 and stamps_target is not None and card.stamp_count + stamps > stamps_target:
        room = max(0, stamps_target - card.stamp_count)
        raise AdjustmentError(
            f"the card has {card.stamp_count} of {stamps_target} stamps; "
            + (f"add at most {room}" if room else "redeem the full card before adding stamps")
        )
    if card.points_balance + points < 0:
        raise AdjustmentError(f"the card has {card.points_balance} points; cannot remove {-points}")
    changes: list[Change] = []
    if stamps:
        changes.append(Change(LedgerType.STAMP_ADJUSTED, stamps_delta=stamps, notes=reason))
    if points:
        changes.append(Change(LedgerType.POINTS_ADJUSTED, points_delta=points, notes=reason))
    return Decision(tuple(changes))


def decide_status(
    card: CardBalance, active: bool, reason: str | None = None, *, erased: bool = False
) -> Decision:
    """Deactivate or reactivate a card; asking for the state it is in changes nothing.

    An erased customer's card stays inactive: its pass was voided and its links closed.
    """
    if active and erased and not card.is_active:
        raise AdjustmentError("the card's customer was erased: the card cannot be reactivated")
    if card.is_active == active:
        return Decision()
    kind = LedgerType.CARD_REACTIVATED if active else LedgerType.CARD_DEACTIVATED
    return Decision((Change(kind, notes=reason),))
