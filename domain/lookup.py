"""Finding a card: within one merchant by a card reference, or by what a person types.

A card reference (CONTRACT.md section 2) is one of ``card_number`` (dashes and spaces
ignored), ``qr_code``, ``email`` (case-insensitive, through the merchant's customers) or
``customer_ref``. Soft-deleted cards and customers are hidden by the ORM hook
(``domain.soft_delete``); on top of that a card whose merchant is deleted is never found, even a
card that was restored on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.identifiers import normalize_card_number
from domain.models import Customer, LoyaltyCard, LoyaltyProgram, Merchant
from domain.rules.lots import NextExpiry
from domain.wallet_cards import card_next_expiry, tier_standing

CardRefKind = Literal["card_number", "qr_code", "email", "customer_ref"]
CARD_REF_KINDS: tuple[str, ...] = get_args(CardRefKind)


class CardLookupError(LookupError):
    """Base of the refusals of this module; ``str()`` is a sentence for a person."""


class AmbiguousCardRef(CardLookupError):
    """A customer with one card per store, and no store to choose among them."""

    def __init__(self, kind: str, card_numbers: Sequence[str]) -> None:
        self.card_numbers = tuple(card_numbers)
        super().__init__(
            f"this {kind} matches {len(card_numbers)} cards ({', '.join(card_numbers)}): "
            "name the store or use a card number"
        )


class EmailNeedsMerchant(CardLookupError):
    """An email names a customer of one merchant: the merchant must be given."""

    def __init__(self) -> None:
        super().__init__("an email finds a card only within a merchant: give the merchant code")


class UnknownMerchant(CardLookupError):
    """No live merchant has this code."""

    def __init__(self, merchant_code: str) -> None:
        self.merchant_code = merchant_code
        super().__init__(f"unknown merchant {merchant_code!r}")


@dataclass(frozen=True)
class CardView:
    """A card as the CLI and the admin panel show it (``contract_fields`` for CONTRACT.md 6)."""

    card_id: int
    card_number: str
    merchant_id: int
    merchant_code: str
    program_id: int
    stamp_count: int
    stamps_target: int
    points_balance: int
    is_active: bool
    version: int
    points_pending: int = 0
    """Earned, not yet spendable (CONTRACT.md 7.2); not part of ``points_balance``."""
    next_expiry: NextExpiry | None = None
    """The next points to expire and when (CONTRACT.md 7.3), or ``None``."""
    tier: str | None = None
    """The card's tier id (CONTRACT.md 7.4); ``None`` when the program has no tiers."""
    points_to_next_tier: int | None = None
    """Qualifying points missing for the tier above; ``None`` at the top tier or when the
    program has no tiers."""

    def contract_fields(self) -> dict[str, Any]:
        """Exactly the fields of ``loyalty card show --json`` (CONTRACT.md 6, 7.2, 7.3, 7.4):
        ``next_expiry`` is ``{"points": int, "at": ISO 8601}`` or null, as in results;
        ``tier`` and ``points_to_next_tier`` are null when the program has no tiers."""
        expiry = self.next_expiry
        return {
            "card_number": self.card_number,
            "merchant_code": self.merchant_code,
            "stamp_count": self.stamp_count,
            "stamps_target": self.stamps_target,
            "points_balance": self.points_balance,
            "is_active": self.is_active,
            "version": self.version,
            "points_pending": self.points_pending,
            "next_expiry": (
                None if expiry is None else {"points": expiry.points, "at": expiry.at.isoformat()}
            ),
            "tier": self.tier,
            "points_to_next_tier": self.points_to_next_tier,
        }


async def find_card(
    session: AsyncSession,
    merchant_id: int,
    kind: CardRefKind | str,
    value: str,
    *,
    store_id: int | None = None,
) -> LoyaltyCard | None:
    """The merchant's live card for a card reference, or ``None``.

    ``kind`` is one of ``CARD_REF_KINDS`` (the values of ``streams.inputs.CardRefKind``). An
    email or a customer ref can match several cards when the merchant issues one card per
    store: ``store_id`` then picks that store's card; without it ``AmbiguousCardRef``.
    """
    query = _live_cards().where(LoyaltyCard.merchant_id == merchant_id)
    if kind == "card_number":
        query = query.where(LoyaltyCard.card_number == normalize_card_number(value))
    elif kind == "qr_code":
        query = query.where(LoyaltyCard.qr_token == value)
    elif kind in ("email", "customer_ref"):
        column = Customer.email if kind == "email" else Customer.customer_ref
        wanted = value.strip().lower() if kind == "email" else value
        query = query.join(Customer, Customer.id == LoyaltyCard.customer_id).where(
            Customer.merchant_id == merchant_id, column == wanted
        )
    else:
        raise ValueError(f"unknown card reference kind {kind!r} (one of {CARD_REF_KINDS})")
    cards = (await session.scalars(query.order_by(LoyaltyCard.id))).all()
    if len(cards) <= 1:
        return cards[0] if cards else None
    if store_id is not None:
        for card in cards:
            if card.store_id == store_id:
                return card
    raise AmbiguousCardRef(kind, [c.card_number for c in cards])


async def find_card_by_text(
    session: AsyncSession, ref: str, *, merchant_code: str | None = None
) -> LoyaltyCard | None:
    """A live card by what a person typed: a card number, a QR token, or an email.

    An email needs ``merchant_code`` (``EmailNeedsMerchant`` otherwise); card numbers and QR
    tokens are unique, and ``merchant_code``, when given, must own the card.
    """
    ref = ref.strip()
    merchant_id: int | None = None
    if merchant_code is not None:
        merchant_id = await session.scalar(
            select(Merchant.id).where(Merchant.code == merchant_code)
        )
        if merchant_id is None:
            raise UnknownMerchant(merchant_code)
    if "@" in ref:
        if merchant_id is None:
            raise EmailNeedsMerchant()
        return await find_card(session, merchant_id, "email", ref)
    number = normalize_card_number(ref)
    for column, value in ((LoyaltyCard.card_number, number), (LoyaltyCard.qr_token, ref)):
        query = _live_cards().where(column == value)
        if merchant_id is not None:
            query = query.where(LoyaltyCard.merchant_id == merchant_id)
        card = (await session.scalars(query)).first()
        if card is not None:
            return card
    return None


async def card_view(session: AsyncSession, card: LoyaltyCard) -> CardView:
    """The card with its merchant's code, its program's stamps target, its next expiry by the
    program's terms (``domain.rules.lots.next_expiry``, as results report it), and its tier
    with the qualifying points it lacks for the next (``domain.rules.tiers``; neither when
    the program has no tiers)."""
    merchant_code, timezone, program = (
        await session.execute(
            select(Merchant.code, Merchant.timezone, LoyaltyProgram)
            .join(LoyaltyProgram, LoyaltyProgram.merchant_id == Merchant.id)
            .where(Merchant.id == card.merchant_id, LoyaltyProgram.id == card.program_id)
            # The program is read even if deleted: the card's own deletion state is what counts.
            .execution_options(include_deleted=True)
        )
    ).one()
    # As the card page and the passes show them (``domain.wallet_cards``): one reading.
    standing = tier_standing(program.tiers, card.tier, card.qualifying_points)
    return CardView(
        card_id=card.id,
        card_number=card.card_number,
        merchant_id=card.merchant_id,
        merchant_code=merchant_code,
        program_id=card.program_id,
        stamp_count=card.stamp_count,
        stamps_target=program.stamps_target,
        points_balance=card.points_balance,
        is_active=card.is_active,
        version=card.version,
        points_pending=card.points_pending,
        next_expiry=card_next_expiry(card, program, ZoneInfo(timezone)),
        tier=standing.code if standing else None,
        points_to_next_tier=standing.points_to_next if standing else None,
    )


def _live_cards() -> Select[LoyaltyCard]:
    # The hook hides deleted cards and merchants; the explicit merchant filter keeps a card
    # restored on its own invisible while its merchant stays deleted, whatever the options.
    return (
        select(LoyaltyCard)
        .join(Merchant, Merchant.id == LoyaltyCard.merchant_id)
        .where(Merchant.deleted_at.is_(None), LoyaltyCard.deleted_at.is_(None))
    )
