"""Admin users: creation, sign-in that reveals nothing, lockout, the first admin."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.models import AdminUser, Merchant, UserRole
from domain.soft_delete import soft_delete
from domain.users import (
    AccountLocked,
    InvalidCredentials,
    InvalidUser,
    UserExists,
    authenticate,
    create_user,
    ensure_initial_admin,
    set_active,
    set_password,
    unlock_user,
)
from tests.domain import factories as f

NOON = f.utc(2025, 3, 1, 12, 0)
PASSWORD = "correct horse battery"


async def test_a_user_signs_in_with_the_right_password(db: AsyncSession) -> None:
    created = await create_user(db, "Alice", PASSWORD, UserRole.PLATFORM_ADMIN)

    user = await authenticate(db, "ALICE ", PASSWORD, NOON)

    assert user.id == created.id
    assert user.username == "alice"
    assert PASSWORD not in user.password_hash


async def test_a_merchant_admin_belongs_to_a_live_merchant(db: AsyncSession) -> None:
    merchant = await f.merchant(db, "cafe")
    with pytest.raises(InvalidUser, match="needs a merchant"):
        await create_user(db, "bob", PASSWORD, "merchant_admin")
    with pytest.raises(InvalidUser, match="unknown merchant"):
        await create_user(db, "bob", PASSWORD, "merchant_admin", merchant_code="nope")
    with pytest.raises(InvalidUser, match="belongs to no merchant"):
        await create_user(db, "bob", PASSWORD, "platform_admin", merchant_code="cafe")

    bob = await create_user(db, "bob", PASSWORD, "merchant_admin", merchant_code="cafe")

    assert (bob.role, bob.merchant_id) == (UserRole.MERCHANT_ADMIN, merchant.id)


@pytest.mark.parametrize(
    ("name", "password", "role", "error"),
    [
        ("", PASSWORD, "platform_admin", "user name"),
        ("has space", PASSWORD, "platform_admin", "user name"),
        ("carol", "short", "platform_admin", "at least 8"),
        ("carol", "é" * 40, "platform_admin", "at most 72 bytes"),
        ("carol", PASSWORD, "root", "unknown role"),
    ],
)
async def test_a_bad_user_is_refused_clearly(
    db: AsyncSession, name: str, password: str, role: str, error: str
) -> None:
    with pytest.raises(InvalidUser, match=error):
        await create_user(db, name, password, role)


async def test_a_user_name_is_taken_once_whatever_its_case(db: AsyncSession) -> None:
    await create_user(db, "alice", PASSWORD, UserRole.PLATFORM_ADMIN)
    with pytest.raises(UserExists):
        await create_user(db, "Alice", PASSWORD, UserRole.PLATFORM_ADMIN)


async def test_an_unknown_user_and_a_wrong_password_look_the_same(db: AsyncSession) -> None:
    await create_user(db, "alice", PASSWORD, UserRole.PLATFORM_ADMIN)

    with pytest.raises(InvalidCredentials) as unknown:
        await authenticate(db, "mallory", PASSWORD, NOON)
    with pytest.raises(InvalidCredentials) as wrong:
        await authenticate(db, "alice", "not the password", NOON)

    assert type(unknown.value) is type(wrong.value)
    assert str(unknown.value) == str(wrong.value)
    assert vars(unknown.value) == vars(wrong.value)


async def test_a_disabled_user_cannot_sign_in_and_is_not_told_why(db: AsyncSession) -> None:
    user = await create_user(db, "alice", PASSWORD, UserRole.PLATFORM_ADMIN)
    await set_active(db, user.id, False)
    with pytest.raises(InvalidCredentials):
        await authenticate(db, "alice", PASSWORD, NOON)
    await set_active(db, user.id, True)
    await authenticate(db, "alice", PASSWORD, NOON)


async def test_the_admin_of_a_deleted_merchant_cannot_sign_in(db: AsyncSession) -> None:
    merchant = await f.merchant(db, "cafe")
    await create_user(db, "bob", PASSWORD, "merchant_admin", merchant_code="cafe")
    await soft_delete(db, Merchant, [merchant.id], by="test")
    with pytest.raises(InvalidCredentials):
        await authenticate(db, "bob", PASSWORD, NOON)


async def test_five_wrong_passwords_lock_the_account_for_fifteen_minutes(
    db: AsyncSession,
) -> None:
    await create_user(db, "alice", PASSWORD, UserRole.PLATFORM_ADMIN)
    for _ in range(4):
        with pytest.raises(InvalidCredentials):
            await authenticate(db, "alice", "wrong password", NOON)

    with pytest.raises(AccountLocked) as locked:
        await authenticate(db, "alice", "wrong password", NOON)
    assert locked.value.until == NOON + timedelta(minutes=15)

    with pytest.raises(AccountLocked, match="locked until"):
        await authenticate(db, "alice", PASSWORD, NOON + timedelta(minutes=14))
    user = await authenticate(db, "alice", PASSWORD, NOON + timedelta(minutes=15))
    assert (user.failed_logins, user.locked_until) == (0, None)


async def test_a_right_password_resets_the_count(db: AsyncSession) -> None:
    await create_user(db, "alice", PASSWORD, UserRole.PLATFORM_ADMIN)
    for _ in range(4):
        with pytest.raises(InvalidCredentials):
            await authenticate(db, "alice", "wrong password", NOON)
    await authenticate(db, "alice", PASSWORD, NOON)
    for _ in range(4):
        with pytest.raises(InvalidCredentials):
            await authenticate(db, "alice", "wrong password", NOON)


async def test_an_admin_unlocks_or_resets_a_password(db: AsyncSession) -> None:
    user = await create_user(db, "alice", PASSWORD, UserRole.PLATFORM_ADMIN)
    for _ in range(5):
        with pytest.raises((InvalidCredentials, AccountLocked)):
            await authenticate(db, "alice", "wrong password", NOON)
    await unlock_user(db, user.id)
    await authenticate(db, "alice", PASSWORD, NOON)

    await set_password(db, user.id, "a new password")
    with pytest.raises(InvalidCredentials):
        await authenticate(db, "alice", PASSWORD, NOON)
    await authenticate(db, "alice", "a new password", NOON)


async def test_failures_are_kept_when_the_caller_commits_after_the_error(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with db_sessions() as session:
        await create_user(session, "alice", PASSWORD, UserRole.PLATFORM_ADMIN)
        await session.commit()
    for _ in range(2):
        async with db_sessions() as session:
            with pytest.raises(InvalidCredentials):
                try:
                    await authenticate(session, "alice", "wrong password", NOON)
                finally:
                    await session.commit()
    async with db_sessions() as session:
        assert await session.scalar(select(AdminUser.failed_logins)) == 2


async def test_the_first_admin_is_created_once_with_a_random_password(
    db: AsyncSession,
) -> None:
    password = await ensure_initial_admin(db)
    assert password is not None and len(password) >= 12

    assert await ensure_initial_admin(db) is None
    admin = await authenticate(db, "admin", password, NOON)
    assert admin.role is UserRole.PLATFORM_ADMIN
    assert await db.scalar(select(func.count()).select_from(AdminUser)) == 1


async def test_no_first_admin_when_users_exist(db: AsyncSession) -> None:
    await create_user(db, "alice", PASSWORD, UserRole.PLATFORM_ADMIN)
    assert await ensure_initial_admin(db) is None
