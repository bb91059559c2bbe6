"""What the self-enrolment page reads: the store, its merchant and the program's colours."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.models import LoyaltyProgram, Merchant, Store

DEFAULT_COLORS = ("#1F2937", "#FFFFFF")


@dataclass(frozen=True)
class EnrolmentStore:
    """A live store of a live merchant, as its enrolment page shows it."""

    code: str
    merchant_name: str
    self_enrollment: bool
    program_active: bool  # False without a program too
    colors: tuple[str, str]
    privacy_url: str | None


async def enrolment_store(session: AsyncSession, store_code: str) -> EnrolmentStore | None:
    """The store with this code, its merchant and program (``None`` when there is none)."""
    row = (
        await session.execute(
            select(Store.code, Merchant.name, Merchant.allow_self_enrollment, LoyaltyProgram)
            .join(Merchant, Merchant.id == Store.merchant_id)
            .outerjoin(LoyaltyProgram, LoyaltyProgram.merchant_id == Merchant.id)
            .where(Store.code == store_code)
        )
    ).first()
    if row is None:
        return None
    code, merchant_name, self_allowed, program = row
    return EnrolmentStore(
        code=code,
        merchant_name=merchant_name,
        self_enrollment=bool(self_allowed),
        program_active=program is not None and program.is_active,
        colors=(
            (program.background_color, program.foreground_color)
            if program is not None
            else DEFAULT_COLORS
        ),
        privacy_url=program.privacy_url if program is not None else None,
    )
