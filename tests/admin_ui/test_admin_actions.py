"""``domain.engine.admin_actions``: manual adjustments and status changes of a card, applied
once per action id, with ledger rows, a version bump and one wallet update each."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from admin_ui.runtime import raw_connection
from domain.engine import admin_actions
from domain.engine.outbox import unpack
from domain.models import LedgerEntry, LoyaltyCard, LoyaltyProgram, OutboxMessage, ProcessedEvent
from domain.rules.admin import AdjustmentError
from tests.admin_ui.helpers import enrol

NOW = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


async def _conn(session: AsyncSession) -> Any:
    return await raw_connection(session)


@dataclass(frozen=True)
class Card:
    id: int
    card_number: str
    version: int


async def _card(session: AsyncSession, people: dict[str, Any]) -> Card:
    number = await enrol(session, people["a_store_codes"][0], "ann@example.com")
    card = (
        await session.scalars(select(LoyaltyCard).where(LoyaltyCard.card_number == number))
    ).one()
    return Card(card.id, card.card_number, card.version)


async def _wallet_updates(session: AsyncSession, number: str) -> list[dict[str, Any]]:
    rows = await session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.topic == "loyalty.wallet-updates.v1")
        .order_by(OutboxMessage.id)
    )
    return [
        orjson.loads(value)
        for r in rows
        for key, value in unpack(r.keys, r.payloads)
        if key.decode() == number
    ]


async def test_an_adjustment_changes_the_card_once_per_action_id(
    db: AsyncSession, people: dict[str, Any]
) -> None:
    card = await _card(db, people)
    before = len(await _wallet_updates(db, card.card_number))
    action = uuid.uuid4()
    first = await admin_actions.adjust_card(
        await _conn(db),
        action_id=action,
        card_id=card.id,
        stamps=3,
        points=25,
        reason="goodwill after a complaint",
        actor="admin:root",
        now=NOW,
    )
    await db.commit()
    again = await admin_actions.adjust_card(
        await _conn(db),
        action_id=action,
        card_id=card.id,
        stamps=3,
        points=25,
        reason="goodwill after a complaint",
        actor="admin:root",
        now=NOW,
    )
    await db.commit()
    assert first.status == "applied"
    assert (first.stamp_count, first.points_balance, first.version) == (3, 25, card.version + 1)
    assert again.status == "duplicate"
    assert (again.stamp_count, again.points_balance, again.version) == (3, 25, card.version + 1)

    db.expire_all()
    stored = await db.get(LoyaltyCard, card.id)
    assert stored is not None
    assert (stored.stamp_count, stored.points_balance, stored.version) == (3, 25, card.version + 1)
    entries = (
        await db.scalars(select(LedgerEntry).where(LedgerEntry.source_event_id == action))
    ).all()
    assert sorted((e.entry_type.value, e.stamps_delta, e.points_delta) for e in entries) == [
        ("points_adjusted", 0, 25),
        ("stamp_adjusted", 3, 0),
    ]
    assert {(e.notes, e.actor, e.store_id) for e in entries} == {
        ("goodwill after a complaint", "admin:root", None)
    }
    updates = (await _wallet_updates(db, card.card_number))[before:]
    assert len(updates) == 1
    assert updates[0]["version"] == card.version + 1
    assert (updates[0]["stamp_count"], updates[0]["points_balance"]) == (3, 25)
    assert updates[0]["reason"] == "points_adjusted"
    assert updates[0]["source_event_id"] == str(action)
    inbox = await db.get(ProcessedEvent, action)
    assert inbox is not None and (inbox.topic, inbox.status) == ("admin.card_adjustment", "applied")


async def test_stamps_added_by_hand_never_pass_the_programs_target(
    db: AsyncSession, people: dict[str, Any]
) -> None:
    card = await _card(db, people)
    row = await db.get(LoyaltyCard, card.id)
    assert row is not None
    program = await db.get(LoyaltyProgram, row.program_id)
    assert program is not None
    target, have = program.stamps_target, row.stamp_count
    action = uuid.uuid4()
    with pytest.raises(
        AdjustmentError, match=f"has {have} of {target} stamps; add at most {target - have}"
    ):
        await admin_actions.adjust_card(
            await _conn(db),
            action_id=action,
            card_id=card.id,
            stamps=target - have + 1,
            points=0,
            reason="stuffing the card",
            actor="admin:root",
            now=NOW,
        )
    await db.rollback()
    assert await db.get(ProcessedEvent, action) is None


async def test_a_refused_adjustment_leaves_nothing_behind(
    db: AsyncSession, people: dict[str, Any]
) -> None:
    card = await _card(db, people)
    action = uuid.uuid4()
    with pytest.raises(AdjustmentError, match="cannot remove 5"):
        await admin_actions.adjust_card(
            await _conn(db),
            action_id=action,
            card_id=card.id,
            stamps=-5,
            points=0,
            reason="oops",
            actor="admin:root",
            now=NOW,
        )
    await db.rollback()
    assert await db.get(ProcessedEvent, action) is None  # the same form may be sent again
    with pytest.raises(AdjustmentError, match="reason is required"):
        await admin_actions.adjust_card(
            await _conn(db),
            action_id=action,
            card_id=card.id,
            stamps=1,
            points=0,
            reason="  ",
            actor="admin:root",
            now=NOW,
        )
    await db.rollback()


async def test_deactivation_and_reactivation_are_ledger_entries_and_wallet_updates(
    db: AsyncSession, people: dict[str, Any]
) -> None:
    card = await _card(db, people)
    before = len(await _wallet_updates(db, card.card_number))
    off = await admin_actions.set_card_active(
        await _conn(db),
        action_id=uuid.uuid4(),
        card_id=card.id,
        active=False,
        actor="admin:root",
        now=NOW,
        reason="lost card",
    )
    same = await admin_actions.set_card_active(
        await _conn(db),
        action_id=uuid.uuid4(),
        card_id=card.id,
        active=False,
        actor="admin:root",
        now=NOW,
    )
    on = await admin_actions.set_card_active(
        await _conn(db),
        action_id=uuid.uuid4(),
        card_id=card.id,
        active=True,
        actor="admin:root",
        now=NOW,
    )
    await db.commit()
    assert (off.status, off.is_active) == ("applied", False)
    assert (same.status, same.is_active, same.version) == ("unchanged", False, off.version)
    assert (on.status, on.is_active, on.version) == ("applied", True, off.version + 1)
    updates = (await _wallet_updates(db, card.card_number))[before:]
    assert [(u["is_active"], u["reason"], u["version"]) for u in updates] == [
        (False, "card_deactivated", off.version),
        (True, "card_reactivated", on.version),
    ]
    kinds = (
        await db.scalars(
            select(LedgerEntry.entry_type)
            .where(LedgerEntry.card_id == card.id)
            .order_by(LedgerEntry.id)
        )
    ).all()
    assert [k.value for k in kinds][-2:] == ["card_deactivated", "card_reactivated"]


async def test_a_deleted_card_cannot_be_adjusted(db: AsyncSession, people: dict[str, Any]) -> None:
    from domain.soft_delete import soft_delete

    card = await _card(db, people)
    await soft_delete(db, LoyaltyCard, [card.id], by="test")
    await db.commit()
    with pytest.raises(admin_actions.CardNotFound):
        await admin_actions.adjust_card(
            await _conn(db),
            action_id=uuid.uuid4(),
            card_id=card.id,
            stamps=1,
            points=0,
            reason="x",
            actor="admin:root",
            now=NOW,
        )
    await db.rollback()


async def test_adding_points_makes_a_lot_and_removing_them_spends_the_lots_that_expire_first(
    db: AsyncSession, people: dict[str, Any]
) -> None:
    card = await _card(db, people)
    conn = await _conn(db)
    for points in (30, -25):
        await admin_actions.adjust_card(
            conn,
            action_id=uuid.uuid4(),
            card_id=card.id,
            stamps=0,
            points=points,
            reason="goodwill" if points > 0 else "correction",
            actor="admin",
            now=NOW,
        )
    lots = await conn.fetch(
        "SELECT lot_no, points, remaining FROM point_lots WHERE card_id = $1 ORDER BY lot_no",
        card.id,
    )
    balance = await conn.fetchval("SELECT points_balance FROM loyalty_cards WHERE id = $1", card.id)
    assert sum(r["remaining"] for r in lots) == balance
    assert lots[-1]["points"] == 30  # the adjustment's own lot
    removal = await conn.fetchval(
        "SELECT lots FROM ledger_entries WHERE card_id = $1 AND points_delta = -25", card.id
    )
    named = removal if isinstance(removal, list) else orjson.loads(removal)
    assert sum(p for _, p in named) == -25
