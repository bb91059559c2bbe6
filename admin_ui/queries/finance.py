"""The finance page's reads: the merchants an admin may report on and a merchant's finance
report (``domain.finance``), with its CSV; the report's value types are named here for the
page, which may not import the domain."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from admin_ui.queries.admins import Principal
from admin_ui.queries.common import scoped
from domain.finance import (
    COHORT_MONTHS,
    Cohort,
    FinanceNotFound,
    FinanceReport,
    Holdings,
    Movement,
    money,
    report_csv,
)
from domain.finance import finance_report as _finance_report
from domain.models import Merchant

__all__ = [
    "COHORT_MONTHS",
    "Cohort",
    "FinanceReport",
    "Holdings",
    "Movement",
    "csv_of",
    "finance_report",
    "local_today",
    "merchants",
    "money",
]


async def merchants(session: AsyncSession, me: Principal) -> dict[int, str]:
    """The live merchants this admin may report on, ``{id: "code — name"}`` by code."""
    query = scoped(select(Merchant.id, Merchant.code, Merchant.name), Merchant.id, me)
    rows = (await session.execute(query.order_by(Merchant.code))).all()
    return {r[0]: f"{r[1]} — {r[2]}" for r in rows}


async def local_today(session: AsyncSession, merchant_id: int | None) -> date:
    """Today on the merchant's clock (UTC's without a merchant): the report's days are its."""
    if merchant_id is not None:
        today = await session.scalar(
            select(func.date(func.timezone(Merchant.timezone, func.now()))).where(
                Merchant.id == merchant_id
            )
        )
        if today is not None:
            return today  # type: ignore[no-any-return]
    return datetime.now(UTC).date()


async def finance_report(
    session: AsyncSession, me: Principal, merchant_id: int, start: date, end: date
) -> FinanceReport | None:
    """The merchant's report over ``start`` .. ``end``; ``None`` when the merchant is not
    live or not this admin's (the page answers alike: not found)."""
    if not me.sees(merchant_id):
        return None
    code = await session.scalar(select(Merchant.code).where(Merchant.id == merchant_id))
    if code is None:
        return None
    try:
        return await _finance_report(session, code, start, end)
    except FinanceNotFound:
        return None


def csv_of(report: FinanceReport) -> bytes:
    """The report as the CSV file the page offers (UTF-8 with a byte order mark, so a
    spreadsheet reads the merchant's name right)."""
    return report_csv(report).encode("utf-8-sig")
