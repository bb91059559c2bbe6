"""Who an admin is, read from the database: the signed-in ``Principal`` and whether an admin
may open a store's terminal. Every page loads the user again, so a disabled user or a deleted
merchant is shut out at the next click."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.models import AdminUser, Merchant, UserRole


@dataclass(frozen=True)
class Principal:
    """A signed-in admin: a platform admin sees every merchant, a merchant admin one."""

    user_id: int
    username: str
    role: UserRole
    merchant_id: int | None

    @property
    def is_platform(self) -> bool:
        """Whether this admin sees every merchant and the platform's pages."""
        return self.role is UserRole.PLATFORM_ADMIN

    def sees(self, merchant_id: int | None) -> bool:
        """Whether this admin may see the merchant's pages."""
        return self.is_platform or (merchant_id is not None and merchant_id == self.merchant_id)

    @property
    def actor(self) -> str:
        """How the ledger and the soft-delete columns name this admin."""
        return f"admin:{self.username}"


async def principal_of(session: AsyncSession, user_id: int) -> Principal | None:
    """The admin with this id, or ``None`` when the user is gone, disabled, or belongs to a
    merchant that was deleted."""
    user = await session.get(AdminUser, user_id)
    if user is None or not user.is_active:
        return None
    if user.merchant_id is not None:
        found = await session.scalar(select(Merchant.id).where(Merchant.id == user.merchant_id))
        if found is None:
            return None
    return Principal(user.id, user.username, user.role, user.merchant_id)


async def admin_may_open(session: AsyncSession, user_id: int | None, merchant_id: int) -> bool:
    """Whether ``user_id`` is a live admin of the merchant (or a platform admin)."""
    if user_id is None:
        return False
    user = await session.get(AdminUser, user_id, populate_existing=True)
    if user is None or not user.is_active:
        return False
    return user.role is UserRole.PLATFORM_ADMIN or user.merchant_id == merchant_id
