"""Rows for domain tests, built through the ORM with sensible defaults."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from domain.identifiers import new_authentication_token, new_qr_token
from domain.models import (
    Customer,
    LedgerEntry,
    LedgerType,
    LoyaltyCard,
    LoyaltyProgram,
    Merchant,
    ProgramType,
    Store,
)

_numbers = itertools.count(1)


async def merchant(session: AsyncSession, code: str = "m1", **values: Any) -> Merchant:
    row = Merchant(code=code, name=values.pop("name", code.title()), **values)
    session.add(row)
    await session.flush()
    return row


async def store(session: AsyncSession, owner: Merchant, code: str, **values: Any) -> Store:
    row = Store(merchant_id=owner.id, code=code, name=values.pop("name", code), **values)
    session.add(row)
    await session.flush()
    return row


async def program(session: AsyncSession, owner: Merchant, **values: Any) -> LoyaltyProgram:
    values.setdefault("type", ProgramType.HYBRID)
    row = LoyaltyProgram(merchant_id=owner.id, **values)
    session.add(row)
    await session.flush()
    return row


async def customer(
    session: AsyncSession, owner: Merchant, email: str | None = None, ref: str | None = None
) -> Customer:
    if email is None and ref is None:
        ref = f"cust-{next(_numbers)}"
    row = Customer(merchant_id=owner.id, email=email, customer_ref=ref)
    session.add(row)
    await session.flush()
    return row


async def card(
    session: AsyncSession,
    owner: Merchant,
    of: LoyaltyProgram,
    holder: Customer | None = None,
    at: Store | None = None,
    **values: Any,
) -> LoyaltyCard:
    if holder is None:
        holder = await customer(session, owner)
    n = next(_numbers)
    row = LoyaltyCard(
        card_number=values.pop("card_number", f"{n:04d}-0000-{n % 10000:04d}"),
        qr_token=values.pop("qr_token", new_qr_token()),
        apple_authentication_token=new_authentication_token(),
        merchant_id=owner.id,
        program_id=of.id,
        customer_id=holder.id,
        store_id=at.id if at else None,
        **values,
    )
    session.add(row)
    await session.flush()
    return row


async def entry(
    session: AsyncSession,
    of: LoyaltyCard,
    kind: LedgerType,
    occurred_at: datetime,
    *,
    stamps: int = 0,
    points: int = 0,
    at: Store | None = None,
) -> LedgerEntry:
    """A ledger row (the balances after are not checked by anything here)."""
    row = LedgerEntry(
        card_id=of.id,
        merchant_id=of.merchant_id,
        store_id=at.id if at else None,
        entry_type=kind,
        stamps_delta=stamps,
        points_delta=points,
        stamp_count_after=0,
        points_balance_after=0,
        occurred_at=occurred_at,
    )
    session.add(row)
    await session.flush()
    return row


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A time in UTC."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC)
