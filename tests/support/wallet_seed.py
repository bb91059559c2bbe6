"""Cards, device registrations and wallet messages for the wallet tests, through the ORM."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.identifiers import new_authentication_token, new_card_number, new_qr_token
from domain.models import (
    AppleDeviceRegistration,
    Customer,
    LedgerEntry,
    LedgerType,
    LoyaltyCard,
    LoyaltyProgram,
    Merchant,
    WalletSyncState,
)
from streams.outputs import CardBalanceChanged
from tests.support.seed import seed_merchant, unique_code
from tests.wallet.pki import PASS_TYPE_ID

LOGO_URL = "https://loyalty.example.lu/static/logo.png"
# Long enough ago that the PassKit service treats the change as settled.
LONG_AGO = timedelta(hours=1)


async def seed_wallet_merchant(
    session: AsyncSession, **program: Any
) -> tuple[Merchant, LoyaltyProgram]:
    """A merchant with a branded hybrid program (a logo URL, so Google accepts its class)."""
    values: dict[str, Any] = {
        "name": "Café Lux Fidélité",
        "stamps_reward_description": "Free coffee",
        "background_color": "#6B2C1A",
        "logo_url": LOGO_URL,
    }
    values.update(program)
    merchant, _, prog = await seed_merchant(session, stores=1, **values)
    merchant.name = "Café Lux"
    await session.commit()
    return merchant, prog


async def seed_card(
    session: AsyncSession,
    merchant: Merchant,
    program: LoyaltyProgram,
    *,
    locale: str = "fr",
    first_name: str | None = "Anna",
    last_name: str | None = "Muller",
    updated_at: datetime | None = None,
    **card: Any,
) -> LoyaltyCard:
    """A customer and their card; ``updated_at`` defaults to an hour ago."""
    customer = Customer(
        merchant_id=merchant.id,
        email=f"{unique_code('c')}@example.lu",
        first_name=first_name,
        last_name=last_name,
        locale=locale,
    )
    session.add(customer)
    await session.flush()
    values: dict[str, Any] = {
        "card_number": new_card_number(),
        "qr_token": new_qr_token(),
        "apple_authentication_token": new_authentication_token(),
        "merchant_id": merchant.id,
        "program_id": program.id,
        "customer_id": customer.id,
        "version": 1,
    }
    values.update(card)
    row = LoyaltyCard(**values)
    session.add(row)
    await session.flush()
    row.updated_at = updated_at or datetime.now(UTC) - LONG_AGO
    await session.commit()
    return row


async def register_device(
    session: AsyncSession,
    card: LoyaltyCard,
    push_token: str,
    *,
    device: str | None = None,
    pass_type_id: str = PASS_TYPE_ID,
) -> AppleDeviceRegistration:
    """A device registered for the card's pushes."""
    registration = AppleDeviceRegistration(
        device_library_id=device or uuid.uuid4().hex,
        pass_type_id=pass_type_id,
        push_token=push_token,
        card_id=card.id,
    )
    session.add(registration)
    await session.commit()
    return registration


async def add_entry(
    session: AsyncSession,
    card: LoyaltyCard,
    entry_type: LedgerType,
    *,
    stamps: int = 0,
    points: int = 0,
    occurred_at: datetime,
    **extra: Any,
) -> LedgerEntry:
    """A ledger row of the card (the balances on the card are left as they are)."""
    entry = LedgerEntry(
        card_id=card.id,
        merchant_id=card.merchant_id,
        entry_type=entry_type,
        stamps_delta=stamps,
        points_delta=points,
        stamp_count_after=max(card.stamp_count, 0),
        points_balance_after=max(card.points_balance, 0),
        occurred_at=occurred_at,
        **extra,
    )
    session.add(entry)
    await session.commit()
    return entry


def balance_changed(
    card: LoyaltyCard, merchant_code: str, version: int, **fields: Any
) -> CardBalanceChanged:
    """A ``card.balance_changed`` of the card (balances from ``fields``, else the card's)."""
    values: dict[str, Any] = {
        "event_id": uuid.uuid4(),
        "occurred_at": datetime.now(UTC),
        "card_number": card.card_number,
        "merchant_code": merchant_code,
        "stamp_count": card.stamp_count,
        "stamps_target": 10,
        "points_balance": card.points_balance,
        "is_active": card.is_active,
        "version": version,
        "reason": "stamp_earned",
        "source_event_id": uuid.uuid4(),
    }
    values.update(fields)
    return CardBalanceChanged(**values)


async def sync_states(session: AsyncSession, card_id: int) -> dict[str, WalletSyncState]:
    """The card's wallet sync state rows, by wallet (fresh from the database)."""
    rows = await session.scalars(
        select(WalletSyncState)
        .where(WalletSyncState.card_id == card_id)
        .execution_options(populate_existing=True)
    )
    return {row.wallet: row for row in rows}
