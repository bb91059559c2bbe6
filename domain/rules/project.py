"""Projection: how a ledger entry moves a card's balances and times."""

from __future__ import annotations

from datetime import UTC, datetime

from core.enums import LedgerType
from domain.rules.values import CardBalance, Change, ProgramTerms

ACTIVITY = frozenset(
    {
        LedgerType.STAMP_EARNED,
        LedgerType.STAMP_REDEEMED,
        LedgerType.STAMP_VOIDED,
        LedgerType.STAMP_ADJUSTED,
        LedgerType.POINTS_EARNED,
        LedgerType.POINTS_REDEEMED,
        LedgerType.POINTS_VOIDED,
        LedgerType.POINTS_ADJUSTED,
        LedgerType.WELCOME_BONUS,
        LedgerType.CARD_CREATED,
    }
)
"""The entries that are a card's activity: they move ``last_activity_at``."""
_ACTIVITY = ACTIVITY


def _later(a: datetime | None, b: datetime) -> datetime:
    # In UTC: Python compares two times of the same zone on the wall clock, which gets the
    # repeated hour of a DST change wrong.
    return b if a is None or b.astimezone(UTC) > a.astimezone(UTC) else a


def apply_change(card: CardBalance, change: Change, at: datetime, terms: ProgramTerms) -> None:
    """Move ``card`` by one ledger entry made at ``at``.

    Raises ValueError when a balance would go negative: the rules must never ask for that,
    and the database's check constraints would refuse it anyway.
    """
    stamps = card.stamp_count + change.stamps_delta
    points = card.points_balance + change.points_delta
    pending = card.points_pending + change.pending_delta
    if stamps < 0 or points < 0 or pending < 0:
        raise ValueError(f"{change.entry_type} would take card {card.card_id} below zero")
    card.stamp_count, card.points_balance, card.points_pending = stamps, points, pending
    # What the entry earned or took, spendable and pending alike (a release moves none).
    moved = change.points_delta + change.pending_delta
    kind = change.entry_type
    if kind is LedgerType.STAMP_EARNED:
        card.lifetime_stamps += change.stamps_delta
        day = terms.local_day(at)
        if card.stamp_day == day:
            card.stamp_day_count += change.stamps_delta
        elif card.stamp_day is None or day > card.stamp_day:
            card.stamp_day, card.stamp_day_count = day, change.stamps_delta
        card.last_stamp_at = _later(card.last_stamp_at, at)
    elif kind is LedgerType.STAMP_REDEEMED:
        card.rewards_redeemed += 1
        card.last_redemption_at = _later(card.last_redemption_at, at)
    elif kind in (LedgerType.POINTS_EARNED, LedgerType.WELCOME_BONUS):
        card.lifetime_points_earned += moved
        card.last_points_at = _later(card.last_points_at, at)
    elif kind is LedgerType.POINTS_REDEEMED:
        card.points_redeemed -= change.points_delta
        card.rewards_redeemed += 1
        card.last_redemption_at = _later(card.last_redemption_at, at)
    elif kind is LedgerType.POINTS_VOIDED:
        card.points_voided -= moved
    elif kind is LedgerType.POINTS_EXPIRED:
        card.points_expired -= change.points_delta
    elif kind is LedgerType.CARD_DEACTIVATED:
        card.is_active = False
    elif kind is LedgerType.CARD_REACTIVATED:
        card.is_active = True
    if kind in _ACTIVITY:
        card.last_activity_at = _later(card.last_activity_at, at)
