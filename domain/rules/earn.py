"""Earning on a purchase: points per euro, stamps with cooldown and a daily cap."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta

import msgspec

from core.commands import Line
from core.enums import LedgerType
from domain.rules.basket import BasketPoints, CampaignUse, basket_points, earning_cents
from domain.rules.tiers import MILLI, with_multiplier
from domain.rules.values import CardBalance, Change, Decision, ProgramTerms, Reason, StampHistory


class PurchaseFacts(msgspec.Struct, frozen=True, gc=False):
    """The parts of a purchase the earning rules read."""

    amount_cents: int
    currency: str
    stamps: int
    occurred_at: datetime
    lines: tuple[Line, ...] = ()


class PurchaseOutcome(msgspec.Struct, frozen=True, gc=False):
    """The decision on a purchase, and how its points came about (None when it earns no
    points: refused, or a stamps-only program)."""

    decision: Decision
    basket: BasketPoints | None = None
    tier_points: int = 0
    """What the card's tier multiplier added (CONTRACT.md 7.4)."""


def points_for(terms: ProgramTerms, amount_cents: int) -> int:
    """``floor(amount_cents * points_per_euro / 100)``."""
    return amount_cents * terms.points_per_euro // 100


def stamps_allowed(
    terms: ProgramTerms, requested: int, at: datetime, history: StampHistory
) -> tuple[int, tuple[Reason, ...]]:
    """How many of ``requested`` stamps the cooldown and the daily cap let through."""
    if requested <= 0:
        return 0, ()
    last = history.last_stamp_before
    # In UTC: Python subtracts two times of the same zone on the wall clock, which is an hour
    # off across a DST change (01:55 CET to 03:05 CEST is 10 minutes, not 70).
    if (
        terms.cooldown_minutes
        and last is not None
        and at.astimezone(UTC) - last.astimezone(UTC) < timedelta(minutes=terms.cooldown_minutes)
    ):
        return 0, (Reason.STAMP_COOLDOWN,)
    if terms.max_daily_stamps is None:
        return requested, ()
    room = max(0, terms.max_daily_stamps - history.stamps_on_day)
    if room >= requested:
        return requested, ()
    return room, (Reason.DAILY_STAMP_LIMIT,)


def decide_purchase(
    terms: ProgramTerms, purchase: PurchaseFacts, history: StampHistory
) -> Decision:
    """What a purchase earns on a card (CONTRACT.md section 3, ``purchase.completed``)."""
    return earn_purchase(terms, purchase, history, {}).decision


_REFUSED_CURRENCY = PurchaseOutcome(Decision((), (Reason.UNSUPPORTED_CURRENCY,)))
_BELOW_MINIMUM = PurchaseOutcome(Decision((), (Reason.BELOW_MINIMUM_PURCHASE,)))


def earn_purchase(
    terms: ProgramTerms,
    purchase: PurchaseFacts,
    history: StampHistory,
    uses: Mapping[int, CampaignUse],
    tier_milli: int = MILLI,
) -> PurchaseOutcome:
    """What a purchase earns on a card, with its lines and the program's campaigns
    (CONTRACT.md 3 and 7.1); ``uses``: what each campaign may still award.

    ``tier_milli``: the card's tier multiplier, applied to the basket's points, floored (7.4).
    In a hybrid program a refused stamp never blocks the points, and the other way round.
    Lines of non-earning categories do not count toward the minimum purchase.
    """
    if purchase.currency != terms.currency:
        return _REFUSED_CURRENCY
    if earning_cents(terms, purchase.amount_cents, purchase.lines) < terms.minimum_purchase_cents:
        return _BELOW_MINIMUM
    changes: list[Change] = []
    reasons: list[Reason] = []
    if terms.stamps_enabled:
        stamps, why = stamps_allowed(terms, purchase.stamps, purchase.occurred_at, history)
        reasons.extend(why)
        if stamps:
            changes.append(Change(LedgerType.STAMP_EARNED, stamps_delta=stamps))
    basket = None
    if terms.points_enabled:
        basket = basket_points(
            terms, purchase.amount_cents, purchase.lines, purchase.occurred_at, uses
        )
        points = basket.points
        if tier_milli != MILLI:
            points = with_multiplier(points, tier_milli)
        if points:
            # Pending (CONTRACT.md 7.2): earned now, spendable ``pending_days`` later.
            if terms.pending_days > 0:
                changes.append(Change(LedgerType.POINTS_EARNED, pending_delta=points))
            else:
                changes.append(Change(LedgerType.POINTS_EARNED, points_delta=points))
        return PurchaseOutcome(
            Decision(tuple(changes), tuple(reasons)), basket, points - basket.points
        )
    return PurchaseOutcome(Decision(tuple(changes), tuple(reasons)), basket)


def projected_history(card: CardBalance, day: date, at: datetime) -> StampHistory | None:
    """Earlier stamps as the card's projection tells them for an event at ``at`` (on the
    merchant's local ``day``); ``None`` when only the ledger can (an event older than the
    card's last stamp, or a clock running backwards across days)."""
    if card.last_stamp_at is not None and at < card.last_stamp_at:
        return None
    if card.stamp_day == day:
        return StampHistory(card.last_stamp_at, card.stamp_day_count)
    if card.stamp_day is None or day > card.stamp_day:
        return StampHistory(card.last_stamp_at, 0)
    return None
