"""Stories of what an event names: a store, its merchant's program, a card of that merchant."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.engine.admin_actions import set_card_active
from domain.models import LoyaltyCard, Merchant
from domain.soft_delete import soft_delete
from tests.pipeline.stories import (
    enrol,
    enrolment,
    outcome,
    outcomes,
    purchase,
    redeem,
    seed_merchant_without_program,
    summary,
)
from tests.support.pipeline import Bus
from tests.support.seed import seed_merchant, unique_code

Sessions = async_sessionmaker[AsyncSession]


async def test_an_unknown_store_is_store_not_found(bus: Bus) -> None:
    store = unique_code("nowhere")
    result = await outcome(bus, enrolment(store))
    assert summary(result) == ("rejected", ["store_not_found"], 0, 0)
    assert (result["store_code"], result["merchant_code"], result["card_number"]) == (
        store,
        None,
        None,
    )


async def test_a_merchant_without_a_program_is_program_not_found(
    bus: Bus, sessions: Sessions
) -> None:
    async with sessions() as s:
        merchant, store = await seed_merchant_without_program(s)
    result = await outcome(bus, enrolment(store.code))
    assert summary(result) == ("rejected", ["program_not_found"], 0, 0)
    # The store is known, so its merchant is named; there is no card.
    assert (result["merchant_code"], result["store_code"], result["card_number"]) == (
        merchant.code,
        store.code,
        None,
    )


async def test_an_inactive_program_is_program_inactive(bus: Bus, sessions: Sessions) -> None:
    async with sessions() as s:
        merchant, stores, _ = await seed_merchant(s, is_active=False)
    result = await outcome(bus, enrolment(stores[0].code))
    assert summary(result) == ("rejected", ["program_inactive"], 0, 0)
    assert (result["merchant_code"], result["card_number"]) == (merchant.code, None)


async def test_an_unknown_card_is_card_not_found(bus: Bus, sessions: Sessions) -> None:
    async with sessions() as s:
        _, stores, _ = await seed_merchant(s)
    result = await outcome(bus, purchase(stores[0].code, "ZZZZ-ZZZZ-ZZZZ", 1000))
    assert summary(result) == ("rejected", ["card_not_found"], 0, 0)
    assert result["card_number"] is None


async def test_a_card_of_another_merchant_is_card_not_found(bus: Bus, sessions: Sessions) -> None:
    async with sessions() as s:
        _, ours, _ = await seed_merchant(s)
        _, theirs, _ = await seed_merchant(s, rewards={"coffee": 1})
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    card = await enrol(bus, theirs[0].code, {"email": email})
    by_number, by_email = await outcomes(
        bus,
        purchase(ours[0].code, card, 1000),
        redeem(ours[0].code, {"email": email}, {"kind": "points", "reward_id": "coffee"}),
    )
    assert summary(by_number) == ("rejected", ["card_not_found"], 0, 0)
    assert summary(by_email) == ("rejected", ["card_not_found"], 0, 0)


async def test_a_deactivated_card_is_card_inactive(
    bus: Bus, sessions: Sessions, database_url: str
) -> None:
    async with sessions() as s:
        _, stores, _ = await seed_merchant(s)
    shop = stores[0].code
    card = await enrol(bus, shop)
    async with sessions() as s:
        card_id = await s.scalar(select(LoyaltyCard.id).where(LoyaltyCard.card_number == card))
    assert card_id is not None
    await _deactivate(database_url, card_id)
    result = await outcome(bus, purchase(shop, card, 1000))
    assert summary(result) == ("rejected", ["card_inactive"], 0, 0)
    assert result["card_number"] == card  # the card exists: the result names it


async def test_with_cross_location_off_a_card_is_refused_at_another_store(
    bus: Bus, sessions: Sessions
) -> None:
    async with sessions() as s:
        _, stores, _ = await seed_merchant(s, cross_location=False)
    card = await enrol(bus, stores[0].code)
    there, here = await outcomes(
        bus, purchase(stores[1].code, card, 1000), purchase(stores[0].code, card, 1000)
    )
    assert summary(there) == ("rejected", ["card_not_valid_at_store"], 0, 0)
    assert there["card_number"] == card
    assert summary(here) == ("applied", [], 1, 100)


async def test_the_card_of_a_soft_deleted_merchant_is_never_found(
    bus: Bus, sessions: Sessions
) -> None:
    async with sessions() as s:
        gone, gone_stores, _ = await seed_merchant(s)
        _, live_stores, _ = await seed_merchant(s)
    card = await enrol(bus, gone_stores[0].code)
    async with sessions() as s:
        await soft_delete(s, Merchant, [gone.id], by="test")
        await s.commit()
    at_its_store, elsewhere = await outcomes(
        bus,
        purchase(gone_stores[0].code, card, 1000),
        purchase(live_stores[0].code, card, 1000),
    )
    assert summary(at_its_store) == ("rejected", ["store_not_found"], 0, 0)
    assert summary(elsewhere) == ("rejected", ["card_not_found"], 0, 0)
    assert at_its_store["card_number"] is None and elsewhere["card_number"] is None


async def test_a_merchant_deleted_without_cascade_hides_its_stores(
    bus: Bus, sessions: Sessions
) -> None:
    # Only the merchant row: its stores and cards are still live rows, yet nothing is found.
    async with sessions() as s:
        gone, stores, _ = await seed_merchant(s)
    card = await enrol(bus, stores[0].code)
    async with sessions() as s:
        await s.execute(
            update(Merchant)
            .where(Merchant.id == gone.id)
            .values(deleted_at=datetime.now(UTC), deleted_by="test")
        )
        await s.commit()
    result = await outcome(bus, purchase(stores[0].code, card, 1000))
    assert summary(result) == ("rejected", ["store_not_found"], 0, 0)


async def _deactivate(database_url: str, card_id: int) -> None:
    # As the admin panel does it: a card_deactivated ledger row, so the audit stays clean.
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            done = await set_card_active(
                conn,
                action_id=uuid.uuid4(),
                card_id=card_id,
                active=False,
                actor="test",
                now=datetime.now(UTC),
            )
    finally:
        await conn.close()
    assert done.status == "applied" and not done.is_active
