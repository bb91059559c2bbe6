"""Tiers as a batch keeps them (CONTRACT.md 7.4; ``rules.tiers`` decides): each card's
qualifying points follow its window event by event, a purchase earns with the card's tier
multiplier, and a card moves up as soon as its points reach a tier.

The window moves with every event (a rolling year, or the calendar year). A card keeps its
qualifying points counted from ``qualifying_from``; when an event moves the window, the
purchases it passes over are added or taken out. The batch loads those purchases for its
tiered cards in one query (``state.load_window_rows``); its own purchases join them as they
are made. Programs without tiers never come here.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from domain.engine.outputs import OutboxEntry, notification
from domain.engine.state import BatchState, CardRow
from domain.rules.tiers import MILLI, held_tier, move_up, points_to_next, window_start
from domain.rules.values import ProgramTerms

# The window's end for a card seen for the first time: every purchase after its start counts.
_FAR = datetime(9999, 1, 1, tzinfo=UTC)


def window_ranges(state: BatchState, span: list[datetime]) -> dict[int, tuple[datetime, datetime]]:
    """For each card of a tiered program: the purchase times the batch's events may move its
    window over (empty ranges left out)."""
    if not span:
        return {}
    programs = {
        s.terms.program_id: s.terms
        for s in state.stores.values()
        if s.terms is not None and s.terms.tiers.tiers
    }
    if not programs:  # no tiered program in the batch: nothing to look at (the v1 path)
        return {}
    ranges: dict[int, tuple[datetime, datetime]] = {}
    first, last = min(span), max(span)
    for card in state.cards.values():
        terms = programs.get(card.program_id)
        if terms is None:
            continue
        card.window_rows = {}
        start = window_start(terms.tiers, first, terms.timezone)
        end = window_start(terms.tiers, last, terms.timezone)
        since = card.balance.qualifying_from
        lo, hi = (start, _FAR) if since is None else (min(since, start), max(since, end))
        if lo < hi:
            ranges[card.card_id] = (lo, hi)
    return ranges


def advance(card: CardRow, terms: ProgramTerms, at: datetime) -> None:
    """Move the card's window to the one of an event at ``at``: the purchases it leaves
    stop counting, those it reaches count again."""
    b = card.balance
    start = window_start(terms.tiers, at, terms.timezone)
    rows = card.window_rows or {}
    since = b.qualifying_from
    if since is None:
        b.qualifying_points = sum(net for when, net in rows.values() if when >= start)
    elif start > since:
        b.qualifying_points -= sum(net for when, net in rows.values() if since <= when < start)
    elif start < since:
        b.qualifying_points += sum(net for when, net in rows.values() if start <= when < since)
    if since != start:
        b.qualifying_from = start
        card.dirty = True


def multiplier(terms: ProgramTerms, card: CardRow) -> int:
    """The card's tier multiplier, in thousandths (x1 without tiers)."""
    tier = terms.tiers.tier(card.balance.tier)
    return tier.multiplier_milli if tier is not None else MILLI


def count(card: CardRow, order: str, at: datetime, points: int) -> None:
    """A purchase of the card earned (or, negative, lost to a return) ``points``: they count
    while the purchase is in the window."""
    b = card.balance
    rows = card.window_rows
    if rows is not None:
        row = rows.get(order)
        if row is None:
            rows[order] = [at, points]
        else:
            row[1] += points
    if b.qualifying_from is None or at >= b.qualifying_from:
        b.qualifying_points += points
        card.dirty = True


def promote(
    state: BatchState,
    card: CardRow,
    terms: ProgramTerms,
    at: datetime,
    source: uuid.UUID | None,
    merchant_code: str,
    now: datetime | str,
) -> OutboxEntry | None:
    """Move the card up when its qualifying points reach a higher tier; the
    ``tier.changed`` notification, if it moved."""
    b = card.balance
    reached = move_up(terms.tiers, b.tier, b.qualifying_points)
    if reached is None:
        return None
    before, b.tier, b.tier_below_since = b.tier, reached.code, None
    card.dirty = True
    state.tier_changes.append(
        (card.card_id, card.merchant_id, before, reached.code, b.qualifying_points, at, source)
    )
    if before is None:  # a card's first tier (a new card) is no change to tell of
        return None
    return notification(
        "tier.changed",
        card.card_number,
        merchant_code,
        now,
        from_tier=before,
        to_tier=reached.code,
        source_event_id=str(source) if source else None,
    )


def tier_fields(terms: ProgramTerms, card: CardRow) -> dict[str, Any] | None:
    """``tier`` and ``points_to_next_tier`` of a result (None: the program has no tiers)."""
    plan = terms.tiers
    if not plan.tiers:
        return None
    b = card.balance
    held = held_tier(plan, b.tier, b.qualifying_points)
    return {"tier": held, "points_to_next_tier": points_to_next(plan, held, b.qualifying_points)}
