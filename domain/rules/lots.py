"""Point lots: when earned points become spendable and when they expire, and which lots a
debit spends (CONTRACT.md 7.2 and 7.3).

Every credit of points (a purchase, a welcome bonus, a positive adjustment) is a lot with its
release time (``pending_days`` after it was earned) and its expiry, by the program's policy
when it was earned: ``inactivity`` (v1: no date of its own, the whole card expires when idle),
``rolling`` or ``calendar_year``. Debits spend the lots that expire first, so a customer never
loses points that were due to go later while older ones survive.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta

import msgspec
from msgspec.structs import replace

from core.enums import ExpiryPolicy, LedgerType
from domain.rules.values import CardBalance, Change, Decision, ProgramTerms


class Lot(msgspec.Struct, gc=False):
    """Points of one credit: what is left of them, when they can be spent, when they go.

    Mutable on purpose, like ``CardBalance``: a batch spends from the same lots event after
    event. ``pending``: not yet released to the spendable balance (the daily run or a debit
    at or after ``releases_at`` releases it).
    """

    card_id: int
    lot_no: int
    points: int
    remaining: int
    earned_at: datetime
    releases_at: datetime | None = None
    expires_at: datetime | None = None
    pending: bool = False
    source_event_id: uuid.UUID | None = None
    is_new: bool = False
    dirty: bool = False


_NEVER = datetime.max.replace(tzinfo=UTC)


def lot_expiry(terms: ProgramTerms, earned_at: datetime) -> datetime | None:
    """When points earned at ``earned_at`` expire by themselves; None under ``inactivity``
    (the card's idleness decides) or when the program's points never expire."""
    policy = terms.expiry_policy
    if policy is ExpiryPolicy.ROLLING:
        days = terms.points_expiration_days
        return None if days is None else earned_at + timedelta(days=days)
    if policy is ExpiryPolicy.CALENDAR_YEAR:
        # The end of the calendar year after the one earned in, on the merchant's clock.
        year = earned_at.astimezone(terms.timezone).year
        return datetime(year + 2, 1, 1, tzinfo=terms.timezone)
    return None


def lot_release(terms: ProgramTerms, earned_at: datetime) -> datetime | None:
    """When points earned at ``earned_at`` become spendable; None: at once."""
    if terms.pending_days <= 0:
        return None
    return earned_at + timedelta(days=terms.pending_days)


def new_lot(
    terms: ProgramTerms,
    card: CardBalance,
    points: int,
    at: datetime,
    source: uuid.UUID | None,
    *,
    pending: bool = False,
) -> Lot:
    """The lot of a credit of ``points`` to ``card`` at ``at`` (its number is the card's
    next); ``pending``: a purchase's points, spendable only ``pending_days`` later."""
    releases = lot_release(terms, at) if pending else None
    return Lot(
        card_id=card.card_id,
        lot_no=card.lot_count + 1,
        points=points,
        remaining=points,
        earned_at=at,
        releases_at=releases,
        expires_at=lot_expiry(terms, at),
        pending=releases is not None,
        source_event_id=source,
        is_new=True,
    )


def spendable_at(lot: Lot, at: datetime) -> bool:
    """Whether ``lot`` may be spent by an event at ``at`` (released at or before it)."""
    return lot.remaining > 0 and (lot.releases_at is None or lot.releases_at <= at)


def due_releases(lots: Iterable[Lot], at: datetime) -> list[Lot]:
    """Pending lots whose release time is at or before ``at``."""
    return [
        lot
        for lot in lots
        if lot.pending
        and lot.remaining > 0
        and lot.releases_at is not None
        and lot.releases_at <= at
    ]


def _spend_key(
    terms: ProgramTerms, at: datetime
) -> Callable[[Lot], tuple[datetime, datetime, int]]:
    # Points kept by inactivity expire, at the earliest, a full period after this very
    # debit (a debit is activity); never, when the program's points do not expire.
    days = terms.points_expiration_days
    idle = _NEVER if days is None else at + timedelta(days=days)

    def key(lot: Lot) -> tuple[datetime, datetime, int]:
        return (lot.expires_at or idle, lot.earned_at, lot.lot_no)

    return key


def plan_spend(
    terms: ProgramTerms, lots: Sequence[Lot], points: int, at: datetime
) -> list[tuple[Lot, int]]:
    """Which lots a debit of ``points`` at ``at`` spends, and how much of each: the lots that
    expire first, released ones only. Raises ValueError when they do not hold enough (the
    rules never ask for more than the card can spend)."""
    plan: list[tuple[Lot, int]] = []
    left = points
    for lot in sorted((lo for lo in lots if spendable_at(lo, at)), key=_spend_key(terms, at)):
        if left <= 0:
            break
        take = min(lot.remaining, left)
        plan.append((lot, take))
        left -= take
    if left > 0:
        raise ValueError(f"lots of card hold {points - left} spendable points, {points} asked")
    return plan


def spendable_points(lots: Iterable[Lot], at: datetime) -> int:
    """Points an event at ``at`` may spend: every lot released by then."""
    return sum(lot.remaining for lot in lots if spendable_at(lot, at))


def own_pending(lots: Iterable[Lot], source: uuid.UUID, at: datetime) -> Lot | None:
    """The still pending lot a purchase earned, which its return voids first."""
    for lot in lots:
        if lot.source_event_id == source and lot.remaining > 0 and not spendable_at(lot, at):
            return lot
    return None


class NextExpiry(msgspec.Struct, frozen=True, gc=False):
    """The next points to expire: how many, and when (``next_expiry`` of results)."""

    points: int
    at: datetime


def dated_summary(terms: ProgramTerms, lots: Iterable[Lot]) -> tuple[int, NextExpiry | None]:
    """Points in lots with an expiry date of their own, and the first of those dates with the
    points due on that local day (kept on the card, so results need no lots)."""
    total = 0
    first: NextExpiry | None = None
    for lot in lots:
        if lot.remaining <= 0 or lot.expires_at is None:
            continue
        total += lot.remaining
        first = merge_expiry(terms, first, NextExpiry(lot.remaining, lot.expires_at))
    return total, first


def merge_expiry(
    terms: ProgramTerms, a: NextExpiry | None, b: NextExpiry | None
) -> NextExpiry | None:
    """The earlier of two expiries; on the same local day, their points together."""
    if a is None:
        return b
    if b is None:
        return a
    day_a, day_b = terms.local_day(a.at), terms.local_day(b.at)
    if day_a == day_b:
        return NextExpiry(a.points + b.points, min(a.at, b.at))
    return a if day_a < day_b else b


def next_expiry(terms: ProgramTerms, card: CardBalance) -> NextExpiry | None:
    """A card's next expiry: its first dated lots, or, for points kept by inactivity, the
    whole rest on the day the card will have been idle too long."""
    idle_points = card.points_balance + card.points_pending - card.dated_points
    idle: NextExpiry | None = None
    days = terms.points_expiration_days
    if (
        idle_points > 0
        and days is not None
        and terms.points_enabled
        and card.last_activity_at is not None
    ):
        idle = NextExpiry(idle_points, card.last_activity_at + timedelta(days=days))
    dated = (
        NextExpiry(card.next_expiry_points, card.next_expiry_at)
        if card.next_expiry_at is not None and card.next_expiry_points > 0
        else None
    )
    return merge_expiry(terms, dated, idle)


def take_pending_first(decision: Decision, own: Lot | None) -> Decision:
    """A return's void taken from its own purchase's pending lot first (CONTRACT.md 7.2),
    the rest from the spendable balance."""
    if own is None or own.remaining <= 0:
        return decision
    changes: list[Change] = []
    for ch in decision.changes:
        if ch.entry_type is LedgerType.POINTS_VOIDED and ch.points_delta < 0:
            pending = min(-ch.points_delta, own.remaining)
            ch = replace(
                ch,
                points_delta=ch.points_delta + pending,
                pending_delta=-pending,
                from_lot=own.lot_no,
            )
        changes.append(ch)
    return Decision(tuple(changes), decision.reasons)


def release(points: int) -> Decision:
    """Pending points due by now become spendable (``points_released``)."""
    change = Change(LedgerType.POINTS_RELEASED, points_delta=points, pending_delta=-points)
    return Decision((change,))
