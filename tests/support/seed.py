"""Building merchants, stores and programs for tests, straight through the ORM."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from domain.models import LoyaltyProgram, Merchant, ProgramType, Reward, Store


def unique_code(prefix: str) -> str:
    """A code no other test uses, so tests sharing a running pipeline never collide."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def seed_merchant(
    session: AsyncSession,
    *,
    code: str | None = None,
    stores: int = 2,
    timezone: str = "Europe/Luxembourg",
    allow_self_enrollment: bool = True,
    cross_location: bool = True,
    rewards: dict[str, int] | None = None,
    **program: Any,
) -> tuple[Merchant, list[Store], LoyaltyProgram]:
    """A merchant with ``stores`` stores and a program (hybrid unless ``type=`` says)."""
    merchant = Merchant(
        code=code or unique_code("m"),
        name="Test merchant",
        timezone=timezone,
        allow_self_enrollment=allow_self_enrollment,
        allow_cross_location_redemption=cross_location,
    )
    session.add(merchant)
    await session.flush()
    shops = [
        Store(merchant_id=merchant.id, code=unique_code(f"{merchant.code}-s{i}"), name=f"Shop {i}")
        for i in range(stores)
    ]
    session.add_all(shops)
    settings: dict[str, Any] = {
        "type": ProgramType.HYBRID,
        "stamps_target": 10,
        "points_per_euro": 10,
        "cooldown_minutes": 0,
    }
    settings.update(program)
    prog = LoyaltyProgram(merchant_id=merchant.id, **settings)
    session.add(prog)
    await session.flush()
    for reward_code, points in (rewards or {}).items():
        session.add(
            Reward(program_id=prog.id, code=reward_code, name=reward_code, points_required=points)
        )
    await session.commit()
    return merchant, shops, prog
