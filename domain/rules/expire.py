"""Points expiry: after inactivity (v1), and lot by lot at the daily run (CONTRACT.md 7.3)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import msgspec

from core.enums import LedgerType
from domain.rules.lots import Lot, due_releases
from domain.rules.values import CardBalance, Change, Decision, ProgramTerms


def expiry_cutoff(terms: ProgramTerms, as_of: datetime) -> datetime | None:
    """Cards whose last activity is older than this lose their points; None: never."""
    if terms.points_expiration_days is None or not terms.points_enabled:
        return None
    return as_of - timedelta(days=terms.points_expiration_days)


def decide_expiry(terms: ProgramTerms, card: CardBalance, as_of: datetime) -> Decision:
    """The whole balance goes when the last earn, redeem, void or adjustment is too old.

    The engine runs the same rule set-based in SQL for whole merchants; this is the one-card
    form, the reference the SQL is tested against.
    """
    cutoff = expiry_cutoff(terms, as_of)
    if cutoff is None or card.points_balance <= 0 or card.last_activity_at is None:
        return Decision()
    if card.last_activity_at >= cutoff:
        return Decision()
    return Decision((Change(LedgerType.POINTS_EXPIRED, points_delta=-card.points_balance),))


class ExpiryOutcome(msgspec.Struct, frozen=True, gc=False):
    """What the daily run does to one card: pending points released, then points expired,
    with the lots each takes (``(lot_no, points)``)."""

    released: int = 0
    released_lots: tuple[tuple[int, int], ...] = ()
    expired: int = 0
    expired_lots: tuple[tuple[int, int], ...] = ()
    idle: bool = False


def idle_at(terms: ProgramTerms, card: CardBalance, as_of: datetime) -> bool:
    """Whether the card has been idle too long at ``as_of`` (its inactivity lots go)."""
    cutoff = expiry_cutoff(terms, as_of)
    return (
        cutoff is not None
        and card.last_activity_at is not None
        and (card.last_activity_at < cutoff)
    )


def decide_run(
    terms: ProgramTerms, card: CardBalance, lots: Sequence[Lot], as_of: datetime
) -> ExpiryOutcome:
    """The daily run on one card (CONTRACT.md 7.2, 7.3): pending lots due by ``as_of`` are
    released; then lots past their own expiry date go, and, when the card has been idle too
    long, every released lot kept by inactivity. Nothing else: a lot whose date is later,
    or still pending, stays. The one-card form of ``engine.expiry``'s SQL."""
    if not terms.points_enabled:
        return ExpiryOutcome()
    released = tuple((lot.lot_no, lot.remaining) for lot in due_releases(lots, as_of))
    released_nos = {no for no, _ in released}
    idle = idle_at(terms, card, as_of)
    expired = tuple(
        (lot.lot_no, lot.remaining)
        for lot in lots
        if lot.remaining > 0
        and (not lot.pending or lot.lot_no in released_nos)
        and (
            (lot.expires_at is not None and lot.expires_at <= as_of)
            or (lot.expires_at is None and idle)
        )
    )
    return ExpiryOutcome(
        released=sum(p for _, p in released),
        released_lots=released,
        expired=sum(p for _, p in expired),
        expired_lots=expired,
        idle=idle and any(lot.expires_at is None for lot in lots if lot.lot_no in dict(expired)),
    )


def run_decisions(outcome: ExpiryOutcome) -> tuple[Decision, Decision]:
    """The run's two ledger entries on a card: the release, then the expiry (each empty
    when nothing is due)."""
    released = Decision()
    if outcome.released:
        change = Change(
            LedgerType.POINTS_RELEASED,
            points_delta=outcome.released,
            pending_delta=-outcome.released,
        )
        released = Decision((change,))
    expired = Decision()
    if outcome.expired:
        change = Change(
            LedgerType.POINTS_EXPIRED,
            points_delta=-outcome.expired,
            lots=outcome.expired_lots,
            notes="inactivity" if outcome.idle else "expiry date",
        )
        expired = Decision((change,))
    return released, expired
