"""The list of cards: search, the status and program filters, sorting by a whitelist of keys,
pages, and the CSV export of what the list shows (the admin's merchant's cards only)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from admin_ui.queries.admins import Principal
from admin_ui.queries.common import (
    ALL,
    AnySelect,
    CsvExport,
    PageRequest,
    Rows,
    csv_time,
    deleted_filter,
    export,
    like,
    ordering,
    page,
    scoped,
)
from domain.models import Customer, LoyaltyCard, LoyaltyProgram, Merchant

CARD_STATUSES = {"active": "Active", "inactive": "Deactivated"}
"""The status filter of the cards' list (deleted cards come with the deleted-rows switches)."""


def _status() -> Any:
    """A card's status in words, in SQL (a hidden card says which deletion took it along)."""
    hidden = LoyaltyCard.deleted_at.is_not(None)
    same = LoyaltyCard.deletion_id
    return case(
        (and_(~hidden, LoyaltyCard.is_active), "active"),
        (~hidden, "deactivated"),
        (same == Merchant.deletion_id, "hidden with its merchant"),
        (same == Customer.deletion_id, "hidden with its customer"),
        (same == LoyaltyProgram.deletion_id, "hidden with its program"),
        else_="deleted",
    )


@dataclass(frozen=True)
class CardRow:
    """A card as lists show it."""

    id: int
    card_number: str
    merchant_id: int
    merchant_code: str
    customer_id: int
    customer: str
    stamp_count: int
    points_balance: int
    is_active: bool
    deleted_at: datetime | None
    status: str = "active"
    """``active``, ``deactivated``, ``deleted`` or ``hidden with its merchant`` (customer,
    program)."""
    merchant_name: str = ""
    program: str = ""
    timezone: str = "UTC"
    created_at: datetime | None = None


def _card_query(
    me: Principal, request: PageRequest, customer_id: int | None, *columns: Any
) -> AnySelect:
    """The cards the list shows: ``columns`` selected (the list's, by default), with the
    admin's scope, the search and the filters."""
    query = (
        select(
            *(
                columns
                or (
                    LoyaltyCard,
                    Merchant.code,
                    Merchant.name,
                    Merchant.timezone,
                    Customer.email,
                    Customer.customer_ref,
                    Customer.first_name,
                    Customer.last_name,
                    LoyaltyProgram.name,
                    _status(),
                )
            )
        )
        .select_from(LoyaltyCard)
        .join(Merchant, Merchant.id == LoyaltyCard.merchant_id)
        .join(Customer, Customer.id == LoyaltyCard.customer_id)
        .join(LoyaltyProgram, LoyaltyProgram.id == LoyaltyCard.program_id)
        .where(deleted_filter(LoyaltyCard.deleted_at, request.mode))
    )
    query = scoped(query, LoyaltyCard.merchant_id, me)
    if customer_id is not None:
        query = query.where(LoyaltyCard.customer_id == customer_id)
    status = request.filter("status")
    if status == "active":
        query = query.where(LoyaltyCard.is_active.is_(True))
    elif status == "inactive":
        query = query.where(LoyaltyCard.is_active.is_(False))
    program = request.filter_id("program")
    if program is not None:
        query = query.where(LoyaltyCard.program_id == program)
    if request.search:
        pattern = like(request.search)
        digits = "".join(ch for ch in request.search if ch.isalnum())
        conditions = [
            LoyaltyCard.card_number.ilike(pattern),
            LoyaltyCard.qr_token == request.search,
            Customer.email.ilike(pattern),
            Customer.customer_ref.ilike(pattern),
            Merchant.code.ilike(pattern),
        ]
        if digits:
            conditions.append(func.replace(LoyaltyCard.card_number, "-", "").ilike(like(digits)))
        query = query.where(or_(*conditions))
    return query


def _card_order(request: PageRequest) -> list[Any]:
    keys = {
        "number": LoyaltyCard.card_number,
        "customer": func.lower(func.coalesce(Customer.email, Customer.customer_ref)),
        "merchant": func.lower(Merchant.name),
        "stamps": LoyaltyCard.stamp_count,
        "points": LoyaltyCard.points_balance,
        "status": LoyaltyCard.is_active,
        "issued": LoyaltyCard.created_at,
    }
    return ordering(request, keys, [LoyaltyCard.id.desc()], LoyaltyCard.id)


def _holder(email: str | None, ref: str | None, first: str | None, last: str | None) -> str:
    name = " ".join(p for p in (first, last) if p)
    return email or ref or name


async def list_cards(
    session: AsyncSession,
    me: Principal,
    request: PageRequest,
    *,
    customer_id: int | None = None,
) -> Rows[CardRow]:
    """Cards matching the search (card number, QR text, customer email or merchant code) and
    the ``status`` (``active``/``inactive``) and ``program`` filters, newest first or sorted
    by ``number``, ``customer``, ``merchant``, ``stamps``, ``points``, ``status`` or
    ``issued``."""
    query = _card_query(me, request, customer_id)
    rows, total = await page(session, query, request, *_card_order(request))
    return Rows(
        [
            CardRow(
                c.id,
                c.card_number,
                c.merchant_id,
                code,
                c.customer_id,
                _holder(email, ref, first, last) or f"#{c.customer_id}",
                c.stamp_count,
                c.points_balance,
                c.is_active,
                c.deleted_at,
                status,
                merchant_name,
                program,
                zone,
                c.created_at,
            )
            for c, code, merchant_name, zone, email, ref, first, last, program, status in rows
        ],
        total,
    )


CARD_CSV = (
    "card number",
    "customer email",
    "customer reference",
    "merchant code",
    "merchant",
    "program",
    "stamps",
    "points",
    "pending points",
    "lifetime points earned",
    "rewards redeemed",
    "status",
    "issued",
    "last activity",
)


async def export_cards(
    session: AsyncSession,
    me: Principal,
    request: PageRequest,
    *,
    customer_id: int | None = None,
) -> CsvExport:
    """The cards the list shows (every page of them), as CSV."""

    # Plain columns, not cards as objects: a file of tens of thousands of rows is made in
    # a fraction of the time.
    columns = (
        LoyaltyCard.card_number,
        Customer.email,
        Customer.customer_ref,
        Merchant.code,
        Merchant.name,
        LoyaltyProgram.name,
        LoyaltyCard.stamp_count,
        LoyaltyCard.points_balance,
        LoyaltyCard.points_pending,
        LoyaltyCard.lifetime_points_earned,
        LoyaltyCard.rewards_redeemed,
        _status(),
        LoyaltyCard.created_at,
        LoyaltyCard.last_activity_at,
        Merchant.timezone,
    )

    def cells(row: Any) -> list[Any]:
        *values, created, last, zone = row
        return [*values, csv_time(created, zone), csv_time(last, zone)]

    return await export(
        session,
        _card_query(me, request, customer_id, *columns),
        _card_order(request),
        CARD_CSV,
        cells,
        "cards.csv",
    )


async def program_filter_options(session: AsyncSession, me: Principal) -> dict[str, str]:
    """The programs the cards' list may be narrowed to, ``{"id": "name"}`` (with the
    merchant's name for a platform admin), deleted ones too: their cards can be listed."""
    query = scoped(
        select(LoyaltyProgram.id, LoyaltyProgram.name, Merchant.name).join(
            Merchant, Merchant.id == LoyaltyProgram.merchant_id
        ),
        LoyaltyProgram.merchant_id,
        me,
    )
    rows = (
        await session.execute(
            query.order_by(Merchant.name, LoyaltyProgram.id).execution_options(**ALL)
        )
    ).all()
    if me.is_platform:
        return {str(r[0]): f"{r[2]} — {r[1]}" for r in rows}
    return {str(r[0]): r[1] for r in rows}
