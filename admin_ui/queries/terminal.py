"""What the staff terminal reads: its store with the program's terms and rewards, and the
card on its screen."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.models import (
    Customer,
    LoyaltyCard,
    LoyaltyProgram,
    Merchant,
    ProgramType,
    Reward,
    Store,
)


@dataclass(frozen=True)
class StoreInfo:
    """The store, its merchant and what its program offers, as the terminal needs them."""

    store_id: int
    code: str
    name: str
    merchant_code: str
    merchant_name: str
    program_type: ProgramType | None
    stamps_target: int
    currency: str
    require_pin: bool
    minimum_purchase_cents: int
    merchant_id: int
    rewards: dict[str, str]
    timezone: str = "UTC"

    @property
    def stamps(self) -> bool:
        """Whether the program gives stamps."""
        return self.program_type in (ProgramType.STAMPS, ProgramType.HYBRID)

    @property
    def points(self) -> bool:
        """Whether the program gives points."""
        return self.program_type in (ProgramType.POINTS, ProgramType.HYBRID)


@dataclass(frozen=True)
class CardSummary:
    """The card on the terminal's screen."""

    card_number: str
    customer: str
    stamp_count: int
    points_balance: int
    is_active: bool


async def load_store(session: AsyncSession, store_code: str) -> StoreInfo | None:
    """A live store of a live merchant with its program, or ``None``."""
    row = (
        await session.execute(
            select(Store, Merchant, LoyaltyProgram)
            .join(Merchant, Merchant.id == Store.merchant_id)
            .outerjoin(LoyaltyProgram, LoyaltyProgram.merchant_id == Merchant.id)
            .where(Store.code == store_code)
        )
    ).first()
    if row is None:
        return None
    store, merchant, program = row
    rewards: dict[str, str] = {}
    if program is not None:
        for r in await session.scalars(
            select(Reward)
            .where(Reward.program_id == program.id, Reward.is_active.is_(True))
            .order_by(Reward.points_required)
        ):
            rewards[r.code] = f"{r.name} ({r.points_required} points)"
    return StoreInfo(
        store_id=store.id,
        code=store.code,
        name=store.name,
        merchant_code=merchant.code,
        merchant_name=merchant.name,
        program_type=program.type if program else None,
        stamps_target=program.stamps_target if program else 0,
        currency=program.currency if program else "EUR",
        require_pin=program.require_staff_pin if program else True,
        minimum_purchase_cents=program.minimum_purchase_cents if program else 0,
        merchant_id=merchant.id,
        timezone=merchant.timezone,
        rewards=rewards,
    )


async def card_summary(session: AsyncSession, card_number: str) -> CardSummary | None:
    """The card's balances and its customer, by its number."""
    row = (
        await session.execute(
            select(LoyaltyCard, Customer)
            .join(Customer, Customer.id == LoyaltyCard.customer_id)
            .where(LoyaltyCard.card_number == card_number)
        )
    ).first()
    if row is None:
        return None
    card, customer = row
    name = " ".join(p for p in (customer.first_name, customer.last_name) if p)
    who = ", ".join(p for p in (name, customer.email or customer.customer_ref or "") if p)
    return CardSummary(card.card_number, who, card.stamp_count, card.points_balance, card.is_active)
