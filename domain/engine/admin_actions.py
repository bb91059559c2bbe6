"""An admin's hand on a card: manual adjustments, deactivation and reactivation.

Applied the way the batch engine applies an event, in the caller's transaction: the action's
id goes into the inbox (``processed_events``) first, so a double submit of one form acts once;
the card is locked (``SELECT ... FOR UPDATE``), the rules of ``domain.rules.admin`` decide, and
the ledger rows, the card's new projection (with ``version`` bumped) and one
``card.balance_changed`` for the wallets are made by ``domain.engine.apply`` (as for every
event) and written by ``domain.engine.writes.flush``.

No ``event.processed`` is written: that message reports Kafka inputs (CONTRACT.md section 4),
and an admin action is not one. An action that changed the card is recorded in the admin audit
trail (``domain.audit_trail``), in the same transaction: it bypasses the ORM, whose writes the
trail records by itself. A refused action (``AdjustmentError``, ``CardNotFound``) raises,
and the caller rolls back, inbox row included, so the same form can be fixed and sent again.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

import asyncpg

from core.enums import ExpiryPolicy, ProgramType
from domain.audit_trail import record_change_raw
from domain.engine.apply import Origin, apply_decision
from domain.engine.conn import Conn
from domain.engine.state import BatchState, CardRow, Wanted, load_cards, load_lots
from domain.engine.writes import Effects, flush
from domain.rules.admin import decide_adjustment, decide_status
from domain.rules.values import Decision, ProgramTerms, RewardTerms

ADJUSTMENT_TOPIC = "admin.card_adjustment"
"""The inbox's ``topic`` of a manual adjustment (no Kafka topic: the admin panel's own)."""
STATUS_TOPIC = "admin.card_status"
"""The inbox's ``topic`` of a deactivation or reactivation."""

ActionStatus = Literal["applied", "unchanged", "duplicate"]


class CardNotFound(LookupError):
    """No live card of a live merchant has this id."""

    def __init__(self, card_id: int) -> None:
        self.card_id = card_id
        super().__init__(f"no live card with id {card_id}")


@dataclass(frozen=True)
class AdminActionOutcome:
    """What an action did and the card as it stands after it.

    ``status``: ``applied`` (the card changed), ``unchanged`` (a status it already had) or
    ``duplicate`` (this action id was processed before: nothing was done this time).
    """

    action_id: uuid.UUID
    status: ActionStatus
    card_id: int
    card_number: str
    stamp_count: int
    points_balance: int
    is_active: bool
    version: int


_INBOX = """
INSERT INTO processed_events (event_id, topic, status) VALUES ($1, $2, 'pending')
ON CONFLICT DO NOTHING
RETURNING event_id
"""

_INBOX_STATUS = "UPDATE processed_events SET status = $2 WHERE event_id = $1"

_CARD_CONTEXT = """
SELECT m.code AS merchant_code, m.timezone, p.id AS program_id, p.type, p.stamps_target,
       p.points_expiration_days, p.expiry_policy, p.minimum_redemption_points,
       cu.erased_at IS NOT NULL AS erased
FROM loyalty_cards c
JOIN merchants m ON m.id = c.merchant_id AND m.deleted_at IS NULL
JOIN loyalty_programs p ON p.id = c.program_id
LEFT JOIN customers cu ON cu.id = c.customer_id
WHERE c.id = $1 AND c.deleted_at IS NULL
"""

_REWARDS = "SELECT code, name, points_required, is_active FROM rewards WHERE program_id = $1"

_CARD_NOW = """
SELECT card_number, stamp_count, points_balance, is_active, version
FROM loyalty_cards WHERE id = $1
"""


async def adjust_card(
    conn: Conn,
    *,
    action_id: uuid.UUID,
    card_id: int,
    stamps: int,
    points: int,
    reason: str,
    actor: str,
    now: datetime,
) -> AdminActionOutcome:
    """Add (or remove, when negative) stamps and points by hand; ``reason`` is mandatory.

    Raises ``domain.rules.admin.AdjustmentError`` (no reason, nothing to change, a balance
    that would go negative) or ``CardNotFound``; the caller then rolls back.
    """
    return await _act(
        conn,
        action_id,
        ADJUSTMENT_TOPIC,
        card_id,
        lambda card, context: decide_adjustment(
            card.balance, stamps, points, reason, stamps_target=context["stamps_target"]
        ),
        actor,
        now,
        reason.strip(),
    )


async def set_card_active(
    conn: Conn,
    *,
    action_id: uuid.UUID,
    card_id: int,
    active: bool,
    actor: str,
    now: datetime,
    reason: str | None = None,
) -> AdminActionOutcome:
    """Deactivate (``active=False``) or reactivate a card; its current state is ``unchanged``."""
    note = reason.strip() if reason and reason.strip() else None
    return await _act(
        conn,
        action_id,
        STATUS_TOPIC,
        card_id,
        lambda card, context: decide_status(card.balance, active, note, erased=context["erased"]),
        actor,
        now,
        note,
    )


async def _act(
    conn: Conn,
    action_id: uuid.UUID,
    topic: str,
    card_id: int,
    # Given the card and its context (program, merchant, whether its customer was erased).
    decide: Callable[[CardRow, asyncpg.Record], Decision],
    actor: str,
    now: datetime,
    notes: str | None,
) -> AdminActionOutcome:
    if now.tzinfo is None:
        raise ValueError("an admin action needs an aware datetime")
    # The inbox row first: a second submit of the same form waits here for the first one's
    # transaction, then sees the conflict and does nothing.
    if await conn.fetchval(_INBOX, action_id, topic) is None:
        return await _current(conn, action_id, card_id, "duplicate")
    context = await conn.fetchrow(_CARD_CONTEXT, card_id)
    if context is None:
        raise CardNotFound(card_id)
    state = BatchState()
    await load_cards(conn, state, Wanted(), extra_card_ids={card_id})  # locks the card row
    card = state.cards.get(card_id)
    if card is None:
        raise CardNotFound(card_id)
    decision = decide(card, context)
    await load_lots(conn, [card])  # a removal spends lots; an addition makes one
    if not decision.changes:
        await conn.execute(_INBOX_STATUS, action_id, "rejected")
        return _outcome(action_id, "unchanged", card)
    program_type = ProgramType(context["type"])
    rewards = {
        r["code"]: RewardTerms(r["code"], r["name"], r["points_required"], r["is_active"])
        for r in await conn.fetch(_REWARDS, context["program_id"])
    }
    # An adjustment's points are never pending; they expire by the program's policy.
    terms = ProgramTerms(
        program_id=context["program_id"],
        merchant_id=card.merchant_id,
        type=program_type,
        stamps_target=context["stamps_target"],
        points_expiration_days=context["points_expiration_days"],
        expiry_policy=ExpiryPolicy(context["expiry_policy"]),
        minimum_redemption_points=context["minimum_redemption_points"],
        timezone=ZoneInfo(context["timezone"]),
        rewards=rewards,
    )
    effects = Effects()
    # No store: the change was made in the admin panel, not at a till.
    origin = Origin(action_id, context["merchant_code"], store_id=None, actor=actor)
    before = _audited(card)
    apply_decision(state, effects, card, terms, decision, origin, now, now, notes=notes)
    effects.inbox_status[action_id] = "applied"
    await flush(conn, state, effects, [])
    after = _audited(card)
    changed = [key for key in after if after[key] != before[key]]
    status_change = topic == STATUS_TOPIC
    await record_change_raw(
        conn,
        action=("activate" if card.balance.is_active else "deactivate")
        if status_change
        else "adjust",
        entity="card",
        entity_id=card_id,
        merchant_id=card.merchant_id,
        before={key: before[key] for key in changed},
        after={key: after[key] for key in changed} | ({"reason": notes} if notes else {}),
        actor=actor,
        label=card.card_number,
    )
    return _outcome(action_id, "applied", card)


def _audited(card: CardRow) -> dict[str, object]:
    """What an admin action may change on a card, as the audit trail shows it."""
    b = card.balance
    return {
        "stamp_count": b.stamp_count,
        "points_balance": b.points_balance,
        "is_active": b.is_active,
    }


def _outcome(action_id: uuid.UUID, status: ActionStatus, card: CardRow) -> AdminActionOutcome:
    b = card.balance
    return AdminActionOutcome(
        action_id=action_id,
        status=status,
        card_id=card.card_id,
        card_number=card.card_number,
        stamp_count=b.stamp_count,
        points_balance=b.points_balance,
        is_active=b.is_active,
        version=b.version,
    )


async def _current(
    conn: Conn, action_id: uuid.UUID, card_id: int, status: ActionStatus
) -> AdminActionOutcome:
    row = await conn.fetchrow(_CARD_NOW, card_id)
    if row is None:
        raise CardNotFound(card_id)
    return AdminActionOutcome(
        action_id=action_id,
        status=status,
        card_id=card_id,
        card_number=row["card_number"],
        stamp_count=row["stamp_count"],
        points_balance=row["points_balance"],
        is_active=row["is_active"],
        version=row["version"],
    )
