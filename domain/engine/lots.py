"""Point lots as a batch keeps them: every credit makes a lot, every debit spends lots, and
the ledger row says which (``rules.lots`` decides; this is the bookkeeping).

A card's lots are loaded only when a debit or a release needs them (``state.load_lots``):
a purchase adds its lot without reading any, and keeps the card's summary of dated lots
(``dated_points``, ``next_expiry_*``) by itself.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import orjson

from core.enums import LedgerType
from domain.engine.state import CardRow
from domain.rules.lots import (
    Lot,
    NextExpiry,
    dated_summary,
    due_releases,
    merge_expiry,
    new_lot,
    plan_spend,
)
from domain.rules.values import Change, ProgramTerms

_CREDITS = frozenset(
    {LedgerType.POINTS_EARNED, LedgerType.WELCOME_BONUS, LedgerType.POINTS_ADJUSTED}
)


def book_lots(
    card: CardRow, terms: ProgramTerms, change: Change, at: datetime, source: uuid.UUID | None
) -> str | None:
    """Make or spend the lots of ``change`` on ``card``; returns the ledger row's ``lots``
    (JSON text), or None when the change moves no points."""
    moved = change.points_delta + change.pending_delta
    if not moved and change.entry_type is not LedgerType.POINTS_RELEASED:
        return None  # stamps, status: no points (a release moves none in all, see below)
    kind = change.entry_type
    if kind is LedgerType.POINTS_RELEASED:
        return _release(card, at)
    if moved > 0 and kind in _CREDITS:
        return _credit(card, terms, moved, at, source, pending=change.pending_delta > 0)
    if change.points_delta < 0 or change.pending_delta < 0:
        return _debit(card, terms, change, at)
    return None


def _credit(
    card: CardRow,
    terms: ProgramTerms,
    points: int,
    at: datetime,
    source: uuid.UUID | None,
    *,
    pending: bool,
) -> str:
    b = card.balance
    lot = new_lot(terms, b, points, at, source, pending=pending)
    b.lot_count = lot.lot_no
    card.new_lots.append(lot)
    if card.lots is not None:
        card.lots.append(lot)
    if lot.expires_at is not None:
        b.dated_points += points
        first = merge_expiry(terms, _first(card), NextExpiry(points, lot.expires_at))
        _set_first(card, first)
    return f"[[{lot.lot_no},{points}]]"


def _debit(card: CardRow, terms: ProgramTerms, change: Change, at: datetime) -> str:
    lots = _lots(card)
    spent: list[tuple[Lot, int]] = []
    if change.lots:
        by_no = {lo.lot_no: lo for lo in lots}
        spent = [(by_no[no], points) for no, points in change.lots]
    elif change.pending_delta < 0:
        own = next(lo for lo in lots if lo.lot_no == change.from_lot)
        if own.remaining < -change.pending_delta:
            raise ValueError(f"lot {own.lot_no} of card {card.card_id} holds too little")
        spent.append((own, -change.pending_delta))
    if change.points_delta < 0 and not change.lots:
        spent.extend(plan_spend(terms, lots, -change.points_delta, at))
    for lot, taken in spent:
        lot.remaining -= taken
        lot.dirty = True
    _summarise(card, terms)
    return orjson.dumps([[lot.lot_no, -taken] for lot, taken in spent]).decode()


def _release(card: CardRow, at: datetime) -> str:
    released = due_releases(_lots(card), at)
    for lot in released:
        lot.pending = False
        lot.dirty = True
    return orjson.dumps([[lot.lot_no, lot.remaining] for lot in released]).decode()


def _lots(card: CardRow) -> list[Lot]:
    if card.lots is None:
        raise RuntimeError(f"card {card.card_id}: a debit needs its lots loaded first")
    return card.lots


def _first(card: CardRow) -> NextExpiry | None:
    b = card.balance
    return NextExpiry(b.next_expiry_points, b.next_expiry_at) if b.next_expiry_at else None


def _set_first(card: CardRow, first: NextExpiry | None) -> None:
    b = card.balance
    b.next_expiry_at = first.at if first else None
    b.next_expiry_points = first.points if first else 0


def _summarise(card: CardRow, terms: ProgramTerms) -> None:
    total, first = dated_summary(terms, _lots(card))
    card.balance.dated_points = total
    _set_first(card, first)


def due_release(card: CardRow, at: datetime) -> int:
    """Points of the card's pending lots due by ``at`` (its lots must be loaded)."""
    return sum(lo.remaining for lo in due_releases(_lots(card), at))
