"""Programs: the list, one program with its rewards catalog and tiers, creation and the
settings form (through the catalog service, ``domain.catalog``: a program switched on gets its
``activated_at`` here as in ``loyalty provision``).

The form's money is typed in the currency's units and kept in cents (``cents_of_amount``,
``amount_of_cents``: exact, through ``Decimal``); its preview draws a sample card from the
form's current values (``preview_card``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from admin_ui.choices import currency_options
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
from domain.currencies import is_currency
from domain.models import LoyaltyProgram, Merchant, ProgramType, Reward
from domain.wallet_cards import TierStanding, WalletCard, tier_standing
from wallet.cards import ProgramType as CardType


@dataclass(frozen=True)
class ProgramRow:
    """A program as lists show it."""

    id: int
    merchant_id: int
    merchant_code: str
    name: str
    type: ProgramType
    is_active: bool
    deleted_at: datetime | None


@dataclass(frozen=True)
class ProgramDetail:
    """A program's every setting, its rewards catalog and its tiers, for the settings form."""

    id: int
    merchant_id: int
    merchant_code: str
    settings: dict[str, Any]
    rewards: list[dict[str, Any]]
    deleted_at: datetime | None
    tiers: list[dict[str, Any]] = field(default_factory=list)
    """``loyalty_programs.tiers`` (``[{id, name, threshold_points, multiplier}]``)."""
    merchant_name: str = ""
    merchant_timezone: str = "UTC"
    """The merchant's name (the card shows it) and time zone (the card's dates are its)."""
    deleted_by: str | None = None
    hidden_with: str | None = None
    """``"merchant"`` when the program was deleted along with its merchant (restoring the
    merchant brings it back)."""


# The settings the panel's form shows (the wallets' ids are the provisioning file's alone).
PROGRAM_FIELDS = (
    "name",
    "type",
    "currency",
    "stamps_target",
    "stamps_reward_description",
    "stamps_reward_value_cents",
    "points_per_euro",
    "points_expiration_days",
    "expiry_policy",
    "pending_days",
    "expiry_reminder_days",
    "tier_window",
    "tier_grace_days",
    "welcome_bonus_points",
    "minimum_redemption_points",
    "minimum_purchase_cents",
    "non_earning_categories",
    "cooldown_minutes",
    "max_daily_stamps",
    "require_staff_pin",
    "pin_max_attempts",
    "pin_lockout_minutes",
    "point_value_cents",
    "card_name",
    "background_color",
    "foreground_color",
    "label_color",
    "logo_url",
    "hero_image_url",
    "terms_url",
    "privacy_url",
    "is_active",
)


async def list_programs(
    session: AsyncSession, me: Principal, request: PageRequest
) -> Rows[ProgramRow]:
    """Programs matching the search (name or merchant code)."""
    query = (
        select(LoyaltyProgram, Merchant.code)
        .join(Merchant, Merchant.id == LoyaltyProgram.merchant_id)
        .where(deleted_filter(LoyaltyProgram.deleted_at, request.mode))
    )
    query = scoped(query, LoyaltyProgram.merchant_id, me)
    if request.search:
        pattern = like(request.search)
        query = query.where(or_(LoyaltyProgram.name.ilike(pattern), Merchant.code.ilike(pattern)))
    rows, total = await page(session, query, request, Merchant.code, LoyaltyProgram.id)
    return Rows(
        [
            ProgramRow(p.id, p.merchant_id, code, p.name, p.type, p.is_active, p.deleted_at)
            for p, code in rows
        ],
        total,
    )


async def get_program(
    session: AsyncSession, me: Principal, program_id: int
) -> ProgramDetail | None:
    """A program this admin may see, with its catalog, else ``None``."""
    row = (
        await session.execute(
            select(
                LoyaltyProgram,
                Merchant.code,
                Merchant.name,
                Merchant.timezone,
                Merchant.deletion_id,
            )
            .join(Merchant, Merchant.id == LoyaltyProgram.merchant_id)
            .where(LoyaltyProgram.id == program_id)
            .execution_options(**ALL)
        )
    ).first()
    if row is None or not me.sees(row[0].merchant_id):
        return None
    program: LoyaltyProgram = row[0]
    settings = {key: getattr(program, key) for key in PROGRAM_FIELDS}
    settings["type"] = program.type.value
    settings["expiry_policy"] = program.expiry_policy.value
    rewards = (
        await session.scalars(
            select(Reward).where(Reward.program_id == program_id).order_by(Reward.id)
        )
    ).all()
    return ProgramDetail(
        program.id,
        program.merchant_id,
        row[1],
        settings,
        [
            {
                "id": r.code,
                "name": r.name,
                "points_required": r.points_required,
                "description": r.description,
                "is_active": r.is_active,
                "saved": True,
            }
            for r in rewards
        ],
        program.deleted_at,
        [dict(t) for t in program.tiers or ()],
        merchant_name=row[2],
        merchant_timezone=row[3],
        deleted_by=program.deleted_by,
        hidden_with=(
            "merchant"
            if program.deletion_id is not None and program.deletion_id == row[4]
            else None
        ),
    )


async def live_program_id(session: AsyncSession, merchant_id: int) -> int | None:
    """The merchant's live program, if it has one."""
    return await session.scalar(
        select(LoyaltyProgram.id).where(LoyaltyProgram.merchant_id == merchant_id)
    )


async def create_program(
    session: AsyncSession, me: Principal, merchant_id: int, program_type: str, name: str
) -> int:
    """A merchant's program with default settings; returns its id. The caller commits."""
    await live(session, Merchant, merchant_id, me.sees(merchant_id))
    with catalog_refusals():
        # A program made here asks for a staff PIN until the merchant decides otherwise: a
        # terminal that anyone at the counter can use records purchases nobody vouched for.
        change = catalog.program_change(
            {"type": program_type, "name": name, "require_staff_pin": True}
        )
        program = await catalog.create_program(
            session, merchant_id, change.values, at=datetime.now(UTC)
        )
    return program.id


async def update_program(
    session: AsyncSession, me: Principal, program_id: int, data: Mapping[str, Any]
) -> None:
    """Save the settings form (``data``, with the whole catalog under ``points_rewards`` and
    the whole list of tiers under ``tiers``): rewards absent from it are deactivated, never
    deleted (ledger entries name them). The caller commits."""
    program = await session.get(LoyaltyProgram, program_id)
    if program is None or not me.sees(program.merchant_id):
        raise DomainRefusal("this program does not exist or is deleted")
    with catalog_refusals():
        change = catalog.program_change(data)
        await catalog.update_program(session, program, change.values, at=datetime.now(UTC))
        if change.rewards is not None:
            await catalog.put_rewards(session, program.id, change.rewards)


# --- money typed in the currency's units ------------------------------------------------------

# The largest amount of cents a money column holds (``Count``: a 32-bit integer).
MAX_CENTS = 2**31 - 1
# A point's value is kept to a hundredth of a cent (``PointValue``): six decimals of the unit.
POINT_VALUE_DECIMALS = 6
_AMOUNT = re.compile(r"(\d+)(?:\.(\d*))?|\.(\d+)")


class AmountRefused(ValueError):
    """An amount a person typed that is not one; ``str()`` says why, for under the field."""


def cents_of_amount(text: str | None, *, decimals: int = 2) -> Decimal:
    """The exact cents of an amount typed in the currency's units: ``"2.50"`` -> ``250``.

    Accepts a comma as the decimal mark before one or two digits (``"2,50"``: ``"1,250"``
    could be a thousand and is refused); refuses a blank, a negative amount, letters, and more
    than ``decimals`` decimals (``AmountRefused``). Trailing zeros do not count as decimals:
    ``"2.500"`` is 250 cents.
    """
    raw = "".join((text or "").split())
    if re.fullmatch(r"\d*,\d{1,2}", raw):
        raw = raw.replace(",", ".")
    if raw.startswith("-"):
        raise AmountRefused("must not be negative")
    if not _AMOUNT.fullmatch(raw):
        raise AmountRefused("must be an amount like 2.50")
    amount = Decimal(raw)
    exponent = amount.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > decimals:
        unit = "decimal" if decimals == 1 else "decimals"
        raise AmountRefused(f"must have at most {decimals} {unit}")
    cents = amount * 100
    if cents > MAX_CENTS:
        raise AmountRefused("is too large")
    # Exactly the cents' own decimals: 2.50 is 250, a point of 0.005 is 0.5000 cents.
    return cents.quantize(Decimal(1).scaleb(2 - decimals))


def whole_cents(text: str | None) -> int:
    """``cents_of_amount`` of a money column kept in whole cents."""
    return int(cents_of_amount(text, decimals=2))


def amount_of_cents(cents: int | Decimal | None, *, decimals: int = 2) -> str:
    """Cents as the amount a form shows: ``250`` -> ``"2.50"``; at least two decimals, more
    only when the value has them (a point worth half a cent: ``"0.005"``). Blank for none."""
    if cents is None:
        return ""
    amount = Decimal(cents) / 100
    shown = amount.quantize(Decimal(1).scaleb(-decimals)).normalize()
    exponent = shown.as_tuple().exponent
    places = max(2, -exponent if isinstance(exponent, int) else 2)
    return f"{shown:.{places}f}"


def currency_choices(current: str | None) -> dict[str, str]:
    """The currencies a program may have (``EUR — Euro``, common ones first), for a select;
    the program's own one among them even if it is no longer circulating."""
    found = {code: label for code, label in currency_options().items() if is_currency(code)}
    if current and current not in found:
        found[current] = current
    return found


# --- the card as the program's settings draw it, with sample numbers -------------------------

SAMPLE_CUSTOMER = "Alex Sample"
SAMPLE_POINTS = 1250
SAMPLE_PENDING = 40
SAMPLE_EXPIRING = 200
DEFAULT_COLOURS = {
    "background_color": "#1F2937",
    "foreground_color": "#FFFFFF",
    "label_color": "#D1D5DB",
}


# The catalog's colour (``#RRGGBB``): what it would refuse is drawn in the default instead.
_COLOUR = re.compile(r"#[0-9A-Fa-f]{6}")


def _colour_or(value: Any, fallback: str) -> str:
    text = value.strip() if isinstance(value, str) else ""
    return text.upper() if _COLOUR.fullmatch(text) else fallback


def _whole_or(value: Any, fallback: int) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else fallback


def sample_tier(tiers: Sequence[Mapping[str, Any]]) -> TierStanding | None:
    """The standing of a sample card in these tiers (a form's rows, maybe half typed): in the
    first tier, 60% of the way to the second; None without a usable tier."""
    usable: list[tuple[int, str, str]] = []
    for i, tier in enumerate(tiers):
        threshold = _whole_or(tier.get("threshold_points"), -1)
        name = str(tier.get("name") or tier.get("id") or "").strip()
        if threshold >= 0 and name:
            usable.append((threshold, str(tier.get("id") or "").strip() or f"tier-{i}", name))
    if not usable:
        return None
    usable.sort()
    second = usable[1][0] if len(usable) > 1 else 0
    # The multiplier is not drawn: whatever is typed there cannot spoil the sample.
    rows = [
        {"id": code, "name": name, "threshold_points": threshold, "multiplier": 1}
        for threshold, code, name in usable
    ]
    return tier_standing(rows, None, second * 6 // 10)


def preview_card(
    settings: Mapping[str, Any],
    tiers: Sequence[Mapping[str, Any]],
    *,
    merchant_name: str,
    merchant_timezone: str,
    today: date,
) -> WalletCard:
    """A sample card of a program with these settings (a form's current values, maybe not
    valid yet: what cannot be drawn falls back to the defaults), as the card page and the
    wallets draw a card: sample balances, a stamp card more than half full, points pending
    and due to expire when the program has them."""
    kind = CardType(settings.get("type") or CardType.STAMPS.value)
    target = _whole_or(settings.get("stamps_target"), 10)
    target = target if target >= 1 else 10
    expiry_days = _whole_or(settings.get("points_expiration_days"), 0)
    pending = _whole_or(settings.get("pending_days"), 0) > 0
    name = str(settings.get("card_name") or settings.get("name") or "").strip()
    colours = {key: _colour_or(settings.get(key), value) for key, value in DEFAULT_COLOURS.items()}
    return WalletCard(
        card_id=0,
        card_number="1234-5678-9012",
        version=1,
        updated_at=datetime.now(UTC),
        is_active=True,
        stamp_count=min(target - 1, (target * 6 + 9) // 10),
        points_balance=SAMPLE_POINTS,
        qr_token="preview",  # noqa: S106 (a sample card's, opening nothing)
        authentication_token="preview-authentication",  # noqa: S106
        google_object_id=None,
        merchant_id=0,
        merchant_code="preview",
        merchant_name=merchant_name,
        merchant_timezone=merchant_timezone,
        program_id=0,
        program_type=kind,
        program_name=name or "Loyalty card",
        stamps_target=target,
        reward_description=str(settings.get("stamps_reward_description") or "").strip(),
        logo_url=settings.get("logo_url") or None,
        customer_name=SAMPLE_CUSTOMER,
        locale="en",
        points_pending=SAMPLE_PENDING if pending else 0,
        next_expiry_points=SAMPLE_EXPIRING if expiry_days > 0 else 0,
        next_expiry_on=today + timedelta(days=min(expiry_days, 30)) if expiry_days > 0 else None,
        tier=sample_tier(tiers) if kind.points_enabled else None,
        **colours,
    )
