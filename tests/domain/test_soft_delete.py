"""Soft delete: hidden everywhere by default, shown on request, cascaded and restored exactly."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from domain.lookup import find_card, find_card_by_text
from domain.models import (
    Customer,
    LoyaltyCard,
    LoyaltyProgram,
    Merchant,
    Store,
)
from domain.soft_delete import RestoreConflict, restore, soft_delete
from tests.domain import factories as f


@dataclass
class Shop:
    merchant: Merchant
    store: Store
    program: LoyaltyProgram
    customer: Customer
    card: LoyaltyCard


async def _shop(db: AsyncSession, code: str = "m1") -> Shop:
    merchant = await f.merchant(db, code)
    store = await f.store(db, merchant, f"{code}-s1")
    program = await f.program(db, merchant)
    customer = await f.customer(db, merchant, email=f"ann@{code}.example")
    card = await f.card(db, merchant, program, customer, store)
    return Shop(merchant, store, program, customer, card)


async def _ids(db: AsyncSession, model: type, **options: bool) -> list[int]:
    query = select(model.id).order_by(model.id).execution_options(**options)  # type: ignore[attr-defined]
    return list((await db.scalars(query)).all())


async def _fresh(db: AsyncSession) -> None:
    # soft_delete and restore write with Core UPDATEs: objects already loaded are stale.
    await db.commit()
    db.expunge_all()


async def test_a_deleted_row_is_hidden_from_every_kind_of_orm_query(db: AsyncSession) -> None:
    shop = await _shop(db)
    kept = await f.card(db, shop.merchant, shop.program)
    await soft_delete(db, LoyaltyCard, [shop.card.id], by="test")
    await _fresh(db)

    assert await _ids(db, LoyaltyCard) == [kept.id]
    assert await db.get(LoyaltyCard, shop.card.id) is None
    assert await db.scalar(select(func.count()).select_from(LoyaltyCard)) == 1
    assert await db.scalar(select(func.count(LoyaltyCard.id))) == 1
    joined = select(LoyaltyCard.id).join(Merchant, Merchant.id == LoyaltyCard.merchant_id)
    assert (await db.scalars(joined)).all() == [kept.id]
    inner = select(LoyaltyCard.id).subquery()
    assert await db.scalar(select(func.count()).select_from(inner)) == 1
    touched = await db.execute(
        update(LoyaltyCard).values(version=7).execution_options(synchronize_session=False)
    )
    assert touched.rowcount == 1  # type: ignore[attr-defined]


async def test_include_deleted_and_only_deleted_show_them(db: AsyncSession) -> None:
    shop = await _shop(db)
    kept = await f.card(db, shop.merchant, shop.program)
    await soft_delete(db, LoyaltyCard, [shop.card.id], by="test")
    await _fresh(db)

    assert await _ids(db, LoyaltyCard, include_deleted=True) == [shop.card.id, kept.id]
    assert await _ids(db, LoyaltyCard, only_deleted=True) == [shop.card.id]
    deleted = (await db.scalars(select(LoyaltyCard).execution_options(only_deleted=True))).one()
    assert deleted.deleted_by == "test"
    assert deleted.deleted_at is not None


async def test_only_deleted_finds_the_deleted_cards_of_a_live_merchant(db: AsyncSession) -> None:
    shop = await _shop(db)
    await soft_delete(db, LoyaltyCard, [shop.card.id], by="test")
    await _fresh(db)

    query = (
        select(LoyaltyCard.id)
        .join(Merchant, Merchant.id == LoyaltyCard.merchant_id)
        .where(Merchant.code == "m1")
        .execution_options(only_deleted=True)
    )
    assert (await db.scalars(query)).all() == [shop.card.id]


async def test_a_code_and_an_email_can_be_reused_after_deletion(db: AsyncSession) -> None:
    shop = await _shop(db)
    await soft_delete(db, Merchant, [shop.merchant.id], by="test")
    await _fresh(db)

    again = await _shop(db)  # same merchant code, store code, customer email

    assert again.merchant.id != shop.merchant.id
    assert await _ids(db, Merchant) == [again.merchant.id]
    assert await _ids(db, Store) == [again.store.id]


async def test_two_live_rows_cannot_share_a_code(db: AsyncSession) -> None:
    await _shop(db)
    with pytest.raises(IntegrityError):
        await f.merchant(db, "m1")


async def test_deleting_a_merchant_takes_its_stores_program_customers_and_cards(
    db: AsyncSession,
) -> None:
    shop = await _shop(db)
    other = await _shop(db, "m2")
    await soft_delete(db, Merchant, [shop.merchant.id], by="test")
    await _fresh(db)

    assert await _ids(db, Merchant) == [other.merchant.id]
    assert await _ids(db, Store) == [other.store.id]
    assert await _ids(db, LoyaltyProgram) == [other.program.id]
    assert await _ids(db, Customer) == [other.customer.id]
    assert await _ids(db, LoyaltyCard) == [other.card.id]
    deletions = set(
        await db.scalars(
            select(LoyaltyCard.deletion_id)
            .where(LoyaltyCard.id == shop.card.id)
            .execution_options(include_deleted=True)
        )
    ) | set(
        await db.scalars(
            select(Store.deletion_id)
            .where(Store.id == shop.store.id)
            .execution_options(include_deleted=True)
        )
    )
    assert len(deletions) == 1  # one deletion, one id for the whole cascade


async def test_deleting_a_program_takes_its_cards_only(db: AsyncSession) -> None:
    shop = await _shop(db)
    await soft_delete(db, LoyaltyProgram, [shop.program.id], by="test")
    await _fresh(db)

    assert await _ids(db, LoyaltyCard) == []
    assert await _ids(db, Customer) == [shop.customer.id]
    assert await _ids(db, Merchant) == [shop.merchant.id]


async def test_restoring_a_merchant_brings_back_what_its_deletion_took_and_nothing_else(
    db: AsyncSession,
) -> None:
    shop = await _shop(db)
    lost_before = await f.card(db, shop.merchant, shop.program, shop.customer)
    await soft_delete(db, LoyaltyCard, [lost_before.id], by="cashier")
    await soft_delete(db, Merchant, [shop.merchant.id], by="admin")
    await _fresh(db)

    restored = await restore(db, Merchant, [shop.merchant.id])
    await _fresh(db)

    assert restored == 5  # merchant, store, program, customer, one card
    assert await _ids(db, Merchant) == [shop.merchant.id]
    assert await _ids(db, Store) == [shop.store.id]
    assert await _ids(db, LoyaltyProgram) == [shop.program.id]
    assert await _ids(db, LoyaltyCard) == [shop.card.id]
    assert await _ids(db, LoyaltyCard, only_deleted=True) == [lost_before.id]
    back = await db.get(LoyaltyCard, shop.card.id)
    assert back is not None
    assert (back.deleted_at, back.deleted_by, back.deletion_id) == (None, None, None)


async def test_a_restore_whose_code_was_taken_meanwhile_is_refused_whole(
    db: AsyncSession,
) -> None:
    shop = await _shop(db)
    await soft_delete(db, Merchant, [shop.merchant.id], by="admin")
    await f.merchant(db, "m1")
    await _fresh(db)

    with pytest.raises(RestoreConflict):
        await restore(db, Merchant, [shop.merchant.id])

    # The savepoint kept the session usable, and nothing came back.
    assert await _ids(db, Store) == []
    assert len(await _ids(db, Merchant)) == 1


async def test_lookups_never_find_a_card_of_a_deleted_merchant(db: AsyncSession) -> None:
    shop = await _shop(db)
    await soft_delete(db, Merchant, [shop.merchant.id], by="admin")
    # Even a card brought back on its own stays out of reach while its merchant is deleted.
    await db.execute(
        update(LoyaltyCard)
        .where(LoyaltyCard.id == shop.card.id)
        .values(deleted_at=None, deletion_id=None)
        .execution_options(include_deleted=True, synchronize_session=False)
    )
    await _fresh(db)

    m = shop.merchant.id
    assert await find_card(db, m, "card_number", shop.card.card_number) is None
    assert await find_card(db, m, "qr_code", shop.card.qr_token) is None
    assert await find_card(db, m, "email", "ann@m1.example") is None
    assert await find_card_by_text(db, shop.card.card_number) is None
    assert await find_card_by_text(db, shop.card.qr_token) is None
