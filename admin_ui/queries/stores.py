"""Stores: the list, one store, the stores an admin may enrol at, creation and editing
(through the catalog service, ``domain.catalog``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from admin_ui.problems import DomainRefusal
from admin_ui.queries.admins import Principal
from admin_ui.queries.common import (
    ALL,
    AnySelect,
    CsvExport,
    PageRequest,
    Rows,
    catalog_refusals,
    csv_time,
    deleted_filter,
    export,
    like,
    live,
    ordering,
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
    merchant_name: str = ""
    timezone: str = "UTC"
    """The merchant's time zone: the clock the store's times are shown on."""
    deleted_by: str | None = None


def _store_row(s: Store, merchant: Merchant) -> StoreRow:
    return StoreRow(
        s.id,
        s.code,
        s.name,
        s.merchant_id,
        merchant.code,
        s.pin_locked_until,
        s.pin_failed_attempts,
        s.deleted_at,
        merchant.name,
        merchant.timezone,
        s.deleted_by,
    )


def _store_query(me: Principal, request: PageRequest, merchant_id: int | None) -> AnySelect:
    query = (
        select(Store, Merchant)
        .join(Merchant, Merchant.id == Store.merchant_id)
        .where(deleted_filter(Store.deleted_at, request.mode))
    )
    query = scoped(query, Store.merchant_id, me)
    if merchant_id is not None:
        query = query.where(Store.merchant_id == merchant_id)
    chosen = request.filter_id("merchant")
    if chosen is not None:
        query = query.where(Store.merchant_id == chosen)
    if request.search:
        pattern = like(request.search)
        query = query.where(
            or_(
                Store.code.ilike(pattern),
                Store.name.ilike(pattern),
                Merchant.code.ilike(pattern),
                Merchant.name.ilike(pattern),
            )
        )
    return query


def _store_order(request: PageRequest) -> list[Any]:
    keys = {
        "code": Store.code,
        "name": func.lower(Store.name),
        "merchant": func.lower(Merchant.name),
        "locked": Store.pin_locked_until,
    }
    return ordering(request, keys, [Store.code, Store.id], Store.id)


async def list_stores(
    session: AsyncSession,
    me: Principal,
    request: PageRequest,
    *,
    merchant_id: int | None = None,
) -> Rows[StoreRow]:
    """Stores matching the search (code, name, merchant code or name) and the ``merchant``
    filter, sorted by ``code``, ``name``, ``merchant`` or ``locked`` (else by code)."""
    query = _store_query(me, request, merchant_id)
    rows, total = await page(session, query, request, *_store_order(request))
    return Rows([_store_row(s, m) for s, m in rows], total)


STORE_CSV = ("code", "name", "merchant code", "merchant", "PINs locked until", "deleted")


async def export_stores(
    session: AsyncSession,
    me: Principal,
    request: PageRequest,
    *,
    merchant_id: int | None = None,
) -> CsvExport:
    """The stores the list shows (every page of them), as CSV."""

    def cells(row: Any) -> list[Any]:
        s, m = row
        return [
            s.code,
            s.name,
            m.code,
            m.name,
            csv_time(s.pin_locked_until, m.timezone),
            csv_time(s.deleted_at, m.timezone),
        ]

    return await export(
        session,
        _store_query(me, request, merchant_id),
        _store_order(request),
        STORE_CSV,
        cells,
        "stores.csv",
    )


async def get_store(session: AsyncSession, me: Principal, store_id: int) -> StoreRow | None:
    """A store this admin may see (deleted ones too), else ``None``."""
    row = (
        await session.execute(
            select(Store, Merchant)
            .join(Merchant, Merchant.id == Store.merchant_id)
            .where(Store.id == store_id)
            .execution_options(**ALL)
        )
    ).first()
    if row is None or not me.sees(row[0].merchant_id):
        return None
    return _store_row(row[0], row[1])


async def store_choices(
    session: AsyncSession, me: Principal, merchant_id: int | None = None
) -> dict[str, str]:
    """Live stores this admin may enrol at, ``{code: "name (code)"}``: those of
    ``merchant_id`` when given (the merchant being worked on), else every store the admin
    sees, each with its merchant's name."""
    query = scoped(
        select(Store.code, Store.name, Merchant.name).join(
            Merchant, Merchant.id == Store.merchant_id
        ),
        Store.merchant_id,
        me,
    )
    if merchant_id is not None:
        query = query.where(Store.merchant_id == merchant_id)
    rows = (await session.execute(query.order_by(Merchant.name, Store.name, Store.code))).all()
    if merchant_id is not None or not me.is_platform:
        return {r[0]: f"{r[1]} ({r[0]})" for r in rows}
    return {r[0]: f"{r[1]} ({r[0]}) — {r[2]}" for r in rows}


async def enrolment_store(
    session: AsyncSession, me: Principal, store_code: str, merchant_id: int | None
) -> int:
    """The merchant of the live store an enrolment names, checked on the server when it is
    saved: a store of ``merchant_id`` (the merchant being worked on, when there is one) that
    this admin may see. ``DomainRefusal`` otherwise, whatever the page sent."""
    found = (
        await session.execute(
            select(Store.merchant_id, Merchant.name)
            .join(Merchant, Merchant.id == Store.merchant_id)
            .where(Store.code == store_code)
        )
    ).first()
    if found is None or not me.sees(found[0]):
        raise DomainRefusal("this store does not exist or is deleted: choose one from the list")
    if merchant_id is not None and found[0] != merchant_id:
        name = await session.scalar(select(Merchant.name).where(Merchant.id == merchant_id))
        name = name or "the merchant you work on"
        raise DomainRefusal(
            f"this store belongs to {found[1]}, not to {name}: choose one of {name}'s stores"
        )
    return int(found[0])


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
