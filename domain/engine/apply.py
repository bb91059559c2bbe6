"""The one place a decision becomes effects: the card's projection, its ledger rows and one
``card.balance_changed`` for the wallets. The batch's handlers and the admin's actions on a
card both go through it, so a ledger row and a wallet update are always written alike."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec

from core.enums import LedgerType
from domain.engine.lots import book_lots
from domain.engine.outputs import reward_notices, wallet_message
from domain.engine.state import BatchState, CardRow
from domain.engine.writes import Effects, ledger_row
from domain.rules.project import apply_change
from domain.rules.values import Decision, ProgramTerms


class Origin(msgspec.Struct, frozen=True, gc=False):
    """Where a change comes from, as the ledger and the wallet update record it."""

    source_event_id: uuid.UUID
    merchant_code: str
    store_id: int | None
    staff_pin_id: int | None = None
    actor: str | None = None


def apply_decision(
    state: BatchState,
    effects: Effects,
    card: CardRow,
    terms: ProgramTerms,
    decision: Decision,
    origin: Origin,
    at: datetime,
    now: datetime | str,
    *,
    notes: str | None = None,
    **ledger: Any,
) -> tuple[int, int]:
    """Apply ``decision`` to ``card``; returns the (stamps, points) it changed (points
    pending included).

    ``ledger`` adds columns to every ledger row (order reference, purchase amount, staff ref);
    ``notes`` is the row's note unless the change carries its own.
    """
    stamps = points = 0
    b = card.balance
    before = (b.stamp_count, b.points_balance)
    for ch in decision.changes:
        lots = book_lots(card, terms, ch, at, origin.source_event_id)
        apply_change(b, ch, at, terms)
        stamps += ch.stamps_delta
        points += ch.points_delta + ch.pending_delta
        if ch.entry_type is LedgerType.STAMP_EARNED:
            # Read by a later event of this batch that is older than this stamp.
            state.pending_stamps.setdefault(card.card_id, []).append((at, ch.stamps_delta))
        effects.ledger.append(
            ledger_row(
                card_id=card.card_id,
                merchant_id=card.merchant_id,
                store_id=origin.store_id,
                entry_type=ch.entry_type.value,
                stamps_delta=ch.stamps_delta,
                points_delta=ch.points_delta,
                stamp_count_after=card.balance.stamp_count,
                points_balance_after=card.balance.points_balance,
                occurred_at=at,
                source_event_id=origin.source_event_id,
                reward_code=ch.reward_code,
                reward_description=ch.reward_description,
                notes=ch.notes or notes,
                staff_pin_id=origin.staff_pin_id,
                actor=origin.actor,
                pending_delta=ch.pending_delta,
                lots=lots,
                **ledger,
            )
        )
    if decision.changes:
        card.balance.version += 1
        card.dirty = True
        effects.outbox.append(
            wallet_message(
                card_number=card.card_number,
                merchant_code=origin.merchant_code,
                stamp_count=card.balance.stamp_count,
                stamps_target=terms.stamps_target if terms.stamps_enabled else None,
                points_balance=card.balance.points_balance,
                is_active=card.balance.is_active,
                version=card.balance.version,
                reason=decision.changes[-1].entry_type.value,
                source_event_id=origin.source_event_id,
                now=now,
                points_pending=b.points_pending,
            )
        )
        effects.outbox.extend(
            reward_notices(card.card_number, origin.merchant_code, terms, before, b, now)
        )
    return stamps, points
