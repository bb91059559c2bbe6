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


async def list_merchants(
    session: AsyncSession, me: Principal, request: PageRequest
) -> Rows[MerchantRow]:
    """Merchants matching the search (code or name)."""
    query = select(Merchant, _store_count()).where(
        deleted_filter(Merchant.deleted_at, request.mode)
    )
    query = scoped(query, Merchant.id, me)
    if request.search:
        pattern = like(request.search)
        query = query.where(or_(Merchant.code.ilike(pattern), Merchant.name.ilike(pattern)))
    rows, total = await page(session, query, request, Merchant.code, Merchant.id)
    return Rows([_merchant_row(m, n) for m, n in rows], total)


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


async def merchant_ids(session: AsyncSession) -> list[int]:
    """Every live merchant's id (for the platform's statistics)."""
    return list((await session.scalars(select(Merchant.id).order_by(Merchant.id))).all())


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
