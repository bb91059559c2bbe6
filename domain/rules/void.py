"""Voiding what a purchase earned when goods are returned, in proportion to the refund."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from msgspec.structs import replace

from core.commands import ReturnedLine
from core.enums import LedgerType
from domain.rules.basket import Earnings, void_lines
from domain.rules.values import CardBalance, Change, Decision, Reason


class PurchaseRecord(msgspec.Struct, frozen=True, gc=False):
    """What an order earned and what its refunds have voided so far (shortfalls included)."""

    amount_cents: int
    points_earned: int
    stamps_earned: int
    refunded_cents: int = 0
    points_voided: int = 0
    stamps_voided: int = 0


class ReturnOutcome(msgspec.Struct, frozen=True, gc=False):
    """The decision on the card, and the purchase record as it stands afterwards."""

    decision: Decision
    purchase: PurchaseRecord
    # A refund too small to void a whole point or stamp still moves the order's refunded total,
    # and the next refund's share depends on it.
    counted_cents: int = 0
    """How much of the refund was added to the order's refunded total (none over the amount)."""

    @property
    def recorded(self) -> bool:
        """Whether the refund changed anything at all (the refunded amount, at least)."""
        return (
            self.counted_cents > 0
            or self.decision.changed
            or bool({Reason.POINTS_SHORTFALL, Reason.STAMPS_SHORTFALL} & set(self.decision.reasons))
        )


def decide_return(purchase: PurchaseRecord, card: CardBalance, refund_cents: int) -> ReturnOutcome:
    """Void ``floor(earned * refunded / amount)`` after all refunds of the order.

    Refunds are capped at the purchase amount; what the card no longer holds is reported as a
    shortfall rather than taken below zero.
    """
    reasons: list[Reason] = []
    total = purchase.refunded_cents + refund_cents
    if total > purchase.amount_cents:
        reasons.append(Reason.REFUND_EXCEEDS_PURCHASE)
        total = purchase.amount_cents
    if purchase.amount_cents > 0:
        points_target = purchase.points_earned * total // purchase.amount_cents
        stamps_target = purchase.stamps_earned * total // purchase.amount_cents
    else:
        points_target = stamps_target = 0
    points_due = points_target - purchase.points_voided
    stamps_due = stamps_target - purchase.stamps_voided
    points_taken = min(points_due, card.points_balance)
    stamps_taken = min(stamps_due, card.stamp_count)
    if points_taken < points_due:
        reasons.append(Reason.POINTS_SHORTFALL)
    if stamps_taken < stamps_due:
        reasons.append(Reason.STAMPS_SHORTFALL)
    changes: list[Change] = []
    if stamps_taken:
        changes.append(Change(LedgerType.STAMP_VOIDED, stamps_delta=-stamps_taken))
    if points_taken:
        changes.append(Change(LedgerType.POINTS_VOIDED, points_delta=-points_taken))
    after = PurchaseRecord(
        amount_cents=purchase.amount_cents,
        points_earned=purchase.points_earned,
        stamps_earned=purchase.stamps_earned,
        refunded_cents=total,
        points_voided=points_target,
        stamps_voided=stamps_target,
    )
    return ReturnOutcome(
        Decision(tuple(changes), tuple(reasons)), after, total - purchase.refunded_cents
    )


def decide_line_return(
    purchase: PurchaseRecord,
    earnings: Earnings,
    card: CardBalance,
    refund_cents: int,
    lines: Sequence[ReturnedLine],
) -> tuple[ReturnOutcome, Earnings]:
    """A return with lines (CONTRACT.md 7.1): points by what the returned units earned
    (``basket.void_lines``), stamps and the refunded total by the refund as in v1.

    Never voids more than the purchase earned in all, also after returns without lines.
    """
    by_amount = decide_return(purchase, card, refund_cents)
    voided = void_lines(earnings, lines)
    due = min(voided.points_due, purchase.points_earned - purchase.points_voided)
    taken = min(due, card.points_balance)
    reasons: list[Reason] = [
        r
        for r in (*by_amount.decision.reasons, *voided.reasons)
        if r is not Reason.POINTS_SHORTFALL
    ]
    if taken < due:
        reasons.append(Reason.POINTS_SHORTFALL)
    changes = [c for c in by_amount.decision.changes if c.entry_type is LedgerType.STAMP_VOIDED]
    if taken:
        changes.append(Change(LedgerType.POINTS_VOIDED, points_delta=-taken))
    after = replace(by_amount.purchase, points_voided=purchase.points_voided + due)
    decision = Decision(tuple(changes), tuple(dict.fromkeys(reasons)))
    return ReturnOutcome(decision, after, by_amount.counted_cents), voided.earnings
