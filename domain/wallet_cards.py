"""Cards as the wallets show them: the current database rows turned into ``wallet`` values.

The wallet sync, the PassKit web service and the customer's card page all build passes and
Google objects from here, always from the card's current row (never from a Kafka message,
which may be older). Soft-deleted cards, programs, customers and merchants are hidden by the
ORM hook (``domain.soft_delete``), and the query joins all four, so a card whose merchant or
program is deleted is never found, even one restored on its own.

A card's next expiry (CONTRACT.md 7.3) comes from its row too (``rules.lots.next_expiry``), as
the last day of the merchant's calendar on which the points can be spent (``expiry_day``).
Its tier (CONTRACT.md 7.4) likewise (``card_tier``), with the next tier and the qualifying
points still missing for it; a program without tiers gives none, and its cards look as in v1.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.models import Customer, LoyaltyCard, LoyaltyProgram, Merchant
from domain.rules.lots import NextExpiry, next_expiry
from domain.rules.tiers import held_tier, points_to_next, rank, tier_plan
from domain.rules.values import CardBalance, ProgramTerms
from wallet.cards import PassCard, PassProgram, ProgramType


@dataclass(frozen=True)
class TierStanding:
    """A card's tier as people are shown it (CONTRACT.md 7.4): its id and name, the next
    tier's name and the qualifying points still missing for it (None at the top tier)."""

    code: str
    name: str
    next_name: str | None
    points_to_next: int | None


def tier_standing(
    tiers: Sequence[dict[str, Any]] | None, code: str | None, qualifying: int
) -> TierStanding | None:
    """The standing of a card in tier ``code`` with ``qualifying`` points, in a program with
    these ``tiers`` (``loyalty_programs.tiers``); None when it has none.

    A card the engine has not placed yet (no tier: no purchase since the program gained
    tiers), or placed in a tier the program no longer has, stands where its points put it
    (the first tier for a new card), as the engine would put it at its next purchase.
    """
    plan = tier_plan(tiers, None, None)
    if not plan.tiers:
        return None
    tier = plan.tier(held_tier(plan, code, qualifying)) or plan.tiers[0]
    above = rank(plan, tier.code) + 1
    following = plan.tiers[above] if above < len(plan.tiers) else None
    return TierStanding(
        code=tier.code,
        name=tier.name,
        next_name=following.name if following else None,
        points_to_next=points_to_next(plan, tier.code, qualifying),
    )


def card_tier(card: LoyaltyCard, program: LoyaltyProgram) -> TierStanding | None:
    """The card's tier from its row (None: no tiers, or a program without points, where
    tiers mean nothing)."""
    if not ProgramType(program.type.value).points_enabled:
        return None
    return tier_standing(program.tiers, card.tier, card.qualifying_points)


@dataclass(frozen=True, kw_only=True)
class WalletCard:
    """One live card with what its program, merchant and customer add to a pass.

    Secrets stay out of ``repr``, like in :class:`wallet.PassCard`.
    """

    card_id: int
    card_number: str
    version: int
    updated_at: datetime
    is_active: bool
    stamp_count: int
    points_balance: int
    qr_token: str = field(repr=False)
    authentication_token: str = field(repr=False)
    google_object_id: str | None
    merchant_id: int
    merchant_code: str
    merchant_name: str
    merchant_timezone: str
    program_id: int
    program_type: ProgramType
    program_name: str
    stamps_target: int
    reward_description: str
    background_color: str
    foreground_color: str
    label_color: str
    logo_url: str | None
    customer_name: str
    locale: str
    points_pending: int = 0
    """Earned, not yet spendable (CONTRACT.md 7.2); not part of ``points_balance``."""
    next_expiry_points: int = 0
    next_expiry_on: date | None = None
    """The next points to expire and the last local day they can be spent (``expiry_day``)."""
    tier: TierStanding | None = None
    """The card's tier and what the next one takes (None: the program has no tiers)."""

    def pass_card(self) -> PassCard:
        """The card as both wallets' builders take it."""
        return PassCard(
            card_number=self.card_number,
            merchant_code=self.merchant_code,
            merchant_name=self.merchant_name,
            program_name=self.program_name,
            program_type=self.program_type,
            qr_token=self.qr_token,
            authentication_token=self.authentication_token,
            updated_at=self.updated_at,
            customer_name=self.customer_name,
            stamp_count=self.stamp_count,
            stamps_target=self.stamps_target,
            points_balance=self.points_balance,
            reward_description=self.reward_description,
            background_color=self.background_color,
            foreground_color=self.foreground_color,
            label_color=self.label_color,
            locale=self.locale,
            is_active=self.is_active,
            points_pending=self.points_pending,
            next_expiry_points=self.next_expiry_points,
            next_expiry_on=self.next_expiry_on,
            tier_name=self.tier.name if self.tier else "",
            next_tier_name=(self.tier.next_name or "") if self.tier else "",
            points_to_next_tier=self.tier.points_to_next if self.tier else None,
        )

    def pass_program(self) -> PassProgram:
        """The program as Google Wallet's LoyaltyClass takes it.

        Raises ``ValueError`` when the program has no ``logo_url``: Google refuses a class
        without a logo it can fetch.
        """
        return PassProgram(
            merchant_code=self.merchant_code,
            issuer_name=self.merchant_name,
            program_name=self.program_name,
            logo_url=self.logo_url or "",
            background_color=self.background_color,
        )


def merchant_zone(name: str) -> ZoneInfo:
    """The merchant's time zone (UTC when the name is unknown to this machine)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def card_next_expiry(
    card: LoyaltyCard, program: LoyaltyProgram, zone: ZoneInfo
) -> NextExpiry | None:
    """The card's next expiry (``next_expiry`` of results, CONTRACT.md 7.3), from its row."""
    terms = ProgramTerms(
        program_id=program.id,
        merchant_id=program.merchant_id,
        type=program.type,
        points_expiration_days=program.points_expiration_days,
        expiry_policy=program.expiry_policy,
        timezone=zone,
    )
    balance = CardBalance(
        card_id=card.id,
        points_balance=card.points_balance,
        points_pending=card.points_pending,
        dated_points=card.dated_points,
        next_expiry_at=card.next_expiry_at,
        next_expiry_points=card.next_expiry_points,
        last_activity_at=card.last_activity_at,
    )
    return next_expiry(terms, balance)


def expiry_day(at: datetime, zone: ZoneInfo) -> date:
    """The last day, on the merchant's calendar, on which points expiring at ``at`` can still
    be spent: the day of ``at``, or the day before when they expire at midnight sharp
    (``calendar_year`` points go at the start of 1 January: "expire on 31 December")."""
    return (at - timedelta(microseconds=1)).astimezone(zone).date()


def _query() -> Select[LoyaltyCard, LoyaltyProgram, Merchant, Customer]:
    return (
        select(LoyaltyCard, LoyaltyProgram, Merchant, Customer)
        .join(LoyaltyProgram, LoyaltyProgram.id == LoyaltyCard.program_id)
        .join(Merchant, Merchant.id == LoyaltyCard.merchant_id)
        .join(Customer, Customer.id == LoyaltyCard.customer_id)
    )


def _wallet_card(
    card: LoyaltyCard, program: LoyaltyProgram, merchant: Merchant, customer: Customer
) -> WalletCard:
    names = [n.strip() for n in (customer.first_name, customer.last_name) if n and n.strip()]
    zone = merchant_zone(merchant.timezone)
    expiry = card_next_expiry(card, program, zone)
    return WalletCard(
        card_id=card.id,
        card_number=card.card_number,
        version=card.version,
        updated_at=card.updated_at,
        is_active=card.is_active,
        stamp_count=card.stamp_count,
        points_balance=card.points_balance,
        qr_token=card.qr_token,
        authentication_token=card.apple_authentication_token,
        google_object_id=card.google_object_id,
        merchant_id=merchant.id,
        merchant_code=merchant.code,
        merchant_name=merchant.name,
        merchant_timezone=merchant.timezone,
        program_id=program.id,
        program_type=ProgramType(program.type.value),
        program_name=program.card_name or program.name,
        stamps_target=program.stamps_target,
        reward_description=program.stamps_reward_description or "",
        background_color=program.background_color,
        foreground_color=program.foreground_color,
        label_color=program.label_color,
        logo_url=program.logo_url,
        customer_name=" ".join(names),
        locale=customer.locale,
        points_pending=card.points_pending,
        next_expiry_points=expiry.points if expiry else 0,
        next_expiry_on=expiry_day(expiry.at, zone) if expiry else None,
        tier=card_tier(card, program),
    )


async def wallet_cards_by_number(
    session: AsyncSession, card_numbers: Collection[str]
) -> dict[str, WalletCard]:
    """The live cards among ``card_numbers``, by card number."""
    if not card_numbers:
        return {}
    rows = await session.execute(_query().where(LoyaltyCard.card_number.in_(list(card_numbers))))
    return {c.card_number: _wallet_card(c, p, m, u) for c, p, m, u in rows}


async def wallet_cards_by_id(
    session: AsyncSession, card_ids: Collection[int]
) -> dict[int, WalletCard]:
    """The live cards among ``card_ids``, by id."""
    if not card_ids:
        return {}
    rows = await session.execute(_query().where(LoyaltyCard.id.in_(list(card_ids))))
    return {c.id: _wallet_card(c, p, m, u) for c, p, m, u in rows}


async def wallet_card_by_qr_token(session: AsyncSession, qr_token: str) -> WalletCard | None:
    """The live card printed with ``qr_token``, or None."""
    rows = await session.execute(_query().where(LoyaltyCard.qr_token == qr_token))
    found = rows.first()
    return _wallet_card(*found) if found else None


async def wallet_card_by_link_token(session: AsyncSession, link_token: str) -> WalletCard | None:
    """The live card whose page link carries ``link_token``, or None."""
    rows = await session.execute(_query().where(LoyaltyCard.link_token == link_token))
    found = rows.first()
    return _wallet_card(*found) if found else None
