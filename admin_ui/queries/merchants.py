"""Merchants: the list, one merchant, the choices of a form, creation and editing.

Creation and editing go through the catalog service (``domain.catalog``), the same
validation and writes as ``loyalty provision``; this module adds who may do what.
"""

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
from domain.models import LoyaltyProgram, Merchant, Store


@dataclass(frozen=True)
class MerchantRow:
    """A merchant as lists and forms show it."""

    id: int
    code: str
    name: str
    timezone: str
    allow_self_enrollment: bool
    allow_cross_location_redemption: bool
    stores: int
    deleted_at: datetime | None
    deleted_by: str | None


def _merchant_row(m: Merchant, stores: int) -> MerchantRow:
    return MerchantRow(
        m.id,
        m.code,
        m.name,
        m.timezone,
        m.allow_self_enrollment,
        m.allow_cross_location_redemption,
        stores,
        m.deleted_at,
        m.deleted_by,
    )


def _store_count() -> Any:
    return (
        select(func.count(Store.id))
        .where(Store.merchant_id == Merchant.id, Store.deleted_at.is_(None))
        .correlate(Merchant)
        .scalar_subquery()
    )


def _sort_keys() -> dict[str, Any]:
    return {
        "code": Merchant.code,
        "name": func.lower(Merchant.name),
        "timezone": Merchant.timezone,
        "stores": _store_count(),
        "created": Merchant.created_at,
    }


def _merchant_query(me: Principal, request: PageRequest) -> AnySelect:
    query = select(Merchant, _store_count()).where(
        deleted_filter(Merchant.deleted_at, request.mode)
    )
    query = scoped(query, Merchant.id, me)
    if request.search:
        pattern = like(request.search)
        query = query.where(or_(Merchant.code.ilike(pattern), Merchant.name.ilike(pattern)))
    return query


def _merchant_order(request: PageRequest) -> list[Any]:
    return ordering(request, _sort_keys(), [Merchant.code, Merchant.id], Merchant.id)


async def list_merchants(
    session: AsyncSession, me: Principal, request: PageRequest
) -> Rows[MerchantRow]:
    """Merchants matching the search (code or name), sorted by one of ``code``, ``name``,
    ``timezone``, ``stores`` or ``created`` (else by code)."""
    query = _merchant_query(me, request)
    rows, total = await page(session, query, request, *_merchant_order(request))
    return Rows([_merchant_row(m, n) for m, n in rows], total)


MERCHANT_CSV = (
    "code",
    "name",
    "time zone",
    "live stores",
    "self-enrolment",
    "one card at every store",
    "created",
    "deleted",
)


async def export_merchants(session: AsyncSession, me: Principal, request: PageRequest) -> CsvExport:
    """The merchants the list shows (every page of them), as CSV."""

    def cells(row: Any) -> list[Any]:
        m, stores = row
        return [
            m.code,
            m.name,
            m.timezone,
            stores,
            m.allow_self_enrollment,
            m.allow_cross_location_redemption,
            csv_time(m.created_at, m.timezone),
            csv_time(m.deleted_at, m.timezone),
        ]

    return await export(
        session,
        _merchant_query(me, request),
        _merchant_order(request),
        MERCHANT_CSV,
        cells,
        "merchants.csv",
    )


async def get_merchant(
    session: AsyncSession, me: Principal, merchant_id: int
) -> MerchantRow | None:
    """A merchant this admin may see (deleted ones too), else ``None``."""
    if not me.sees(merchant_id):
        return None
    row = (
        await session.execute(
            select(Merchant, _store_count())
            .where(Merchant.id == merchant_id)
            .execution_options(**ALL)
        )
    ).first()
    return _merchant_row(row[0], row[1]) if row else None


async def merchant_choices(session: AsyncSession, me: Principal) -> dict[int, str]:
    """Live merchants this admin may pick in a form, ``{id: "code — name"}``."""
    query = scoped(select(Merchant.id, Merchant.code, Merchant.name), Merchant.id, me)
    rows = (await session.execute(query.order_by(Merchant.code))).all()
    return {r[0]: f"{r[1]} — {r[2]}" for r in rows}


async def merchant_filter_options(session: AsyncSession, me: Principal) -> dict[str, str]:
    """The merchants a list may be narrowed to, ``{"id": "name (code)"}`` (every merchant,
    deleted ones too, for a platform admin; none for a merchant admin, who sees one)."""
    if not me.is_platform:
        return {}
    rows = (
        await session.execute(
            select(Merchant.id, Merchant.code, Merchant.name)
            .order_by(func.lower(Merchant.name), Merchant.id)
            .execution_options(**ALL)
        )
    ).all()
    return {str(r[0]): f"{r[2]} ({r[1]})" for r in rows}


async def merchant_id_by_code(session: AsyncSession, me: Principal, code: str) -> int | None:
    """The id of the live merchant with this code, when this admin may see it."""
    found = await session.scalar(select(Merchant.id).where(Merchant.code == code))
    return found if found is not None and me.sees(found) else None


async def merchant_ids(session: AsyncSession) -> list[int]:
    """Every live merchant's id (for the platform's statistics)."""
    return list((await session.scalars(select(Merchant.id).order_by(Merchant.id))).all())


async def merchant_currencies(session: AsyncSession) -> dict[int, str]:
    """Each live merchant's currency: its live program's, EUR without one (the platform's
    statistics add up liabilities per currency, never across them)."""
    rows = await session.execute(
        select(Merchant.id, LoyaltyProgram.currency).outerjoin(
            LoyaltyProgram,
            (LoyaltyProgram.merchant_id == Merchant.id) & LoyaltyProgram.deleted_at.is_(None),
        )
    )
    return {merchant_id: currency or "EUR" for merchant_id, currency in rows}


async def create_merchant(session: AsyncSession, me: Principal, data: dict[str, Any]) -> int:
    """A new merchant (platform admins only); returns its id. The caller commits."""
    if not me.is_platform:
        raise DomainRefusal("only a platform admin creates merchants")
    with catalog_refusals():
        merchant = await catalog.create_merchant(session, catalog.merchant_values(data))
    return merchant.id


async def update_merchant(
    session: AsyncSession, me: Principal, merchant_id: int, data: dict[str, Any]
) -> None:
    """Change a live merchant's code, name, time zone and switches. The caller commits."""
    merchant = await live(session, Merchant, merchant_id, me.sees(merchant_id))
    with catalog_refusals():
        values = catalog.merchant_values(data)
        if values["code"] != merchant.code and not me.is_platform:
            raise DomainRefusal("only a platform admin changes a merchant's code")
        await catalog.update_merchant(session, merchant, values)
