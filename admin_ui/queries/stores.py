"""Stores: the list, one store, the stores an admin may enrol at, creation and editing
(through the catalog service, ``domain.catalog``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from admin_ui.problems import DomainRefusal
from admin_ui.queries.admins import Principal
from admin_ui.queries.common import (
    ALL,
    PageRequest,
    Rows,
    catalog_refusals,
    deleted_filter,
    like,
    live,
    page,
    scoped,
)
from domain import catalog
from domain.models import Merchant, Store


@dataclass(frozen=True)
class StoreRow:
    """A store as lists and forms show it."""

    id: int
    code: str
    name: str
    merchant_id: int
    merchant_code: str
    pin_locked_until: datetime | None
    pin_failed_attempts: int
    deleted_at: datetime | None


def _store_row(s: Store, merchant_code: str) -> StoreRow:
    return StoreRow(
        s.id,
        s.code,
        s.name,
        s.merchant_id,
        merchant_code,
        s.pin_locked_until,
        s.pin_failed_attempts,
        s.deleted_at,
    )


async def list_stores(
    session: AsyncSession,
    me: Principal,
    request: PageRequest,
    *,
    merchant_id: int | None = None,
) -> Rows[StoreRow]:
    """Stores matching the search (code, name or merchant code)."""
    query = (
        select(Store, Merchant.code)
        .join(Merchant, Merchant.id == Store.merchant_id)
        .where(deleted_filter(Store.deleted_at, request.mode))
    )
    query = scoped(query, Store.merchant_id, me)
    if merchant_id is not None:
        query = query.where(Store.merchant_id == merchant_id)
    if request.search:
        pattern = like(request.search)
        query = query.where(
            or_(Store.code.ilike(pattern), Store.name.ilike(pattern), Merchant.code.ilike(pattern))
        )
    rows, total = await page(session, query, request, Store.code, Store.id)
    return Rows([_store_row(s, code) for s, code in rows], total)


async def get_store(session: AsyncSession, me: Principal, store_id: int) -> StoreRow | None:
    """A store this admin may see (deleted ones too), else ``None``."""
    row = (
        await session.execute(
            select(Store, Merchant.code)
            .join(Merchant, Merchant.id == Store.merchant_id)
            .where(Store.id == store_id)
            .execution_options(**ALL)
        )
    ).first()
    if row is None or not me.sees(row[0].merchant_id):
        return None
    return _store_row(row[0], row[1])


async def store_choices(session: AsyncSession, me: Principal) -> dict[str, str]:
    """Live stores this admin may enrol at, ``{code: "code — name (merchant)"}``."""
    query = scoped(
        select(Store.code, Store.name, Merchant.code).join(
            Merchant, Merchant.id == Store.merchant_id
        ),
        Store.merchant_id,
        me,
    )
    rows = (await session.execute(query.order_by(Merchant.code, Store.code))).all()
    return {r[0]: f"{r[0]} — {r[1]} ({r[2]})" for r in rows}


async def create_store(
    session: AsyncSession, me: Principal, merchant_id: int, data: dict[str, Any]
) -> int:
    """A new store (``data``: its code and name) of a live merchant; returns its id. The
    caller commits."""
    await live(session, Merchant, merchant_id, me.sees(merchant_id))
    with catalog_refusals():
        values = catalog.store_values(data)
        store = await catalog.create_store(session, merchant_id, values["code"], values["name"])
    return store.id


async def update_store(
    session: AsyncSession, me: Principal, store_id: int, data: dict[str, Any]
) -> None:
    """Rename a live store or change its code. The caller commits."""
    store = await session.get(Store, store_id)
    if store is None or not me.sees(store.merchant_id):
        raise DomainRefusal("this store does not exist or is deleted")
    with catalog_refusals():
        await catalog.update_store(session, store, catalog.store_values(data))
