"""Programs: the list, one program with its rewards catalog and tiers, creation and the
settings form (through the catalog service, ``domain.catalog``: a program switched on gets its
``activated_at`` here as in ``loyalty provision``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select
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
from domain.models import LoyaltyProgram, Merchant, ProgramType, Reward


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
            select(LoyaltyProgram, Merchant.code)
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
