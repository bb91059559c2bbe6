"""Admin users: creation, sign-in that reveals nothing, lockout, the first admin."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import bcrypt
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.models import AdminUser, Merchant, UserRole
from domain.soft_delete import soft_delete
from domain.users import (
    LOCKOUT,
    MAX_FAILED_LOGINS,
    AccountLocked,
    InvalidCredentials,
    InvalidUser,
    LoginPolicy,
    UnknownNameFailures,
    UserError,
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


# --- unknown names answer like known ones ------------------------------------------------------


def stranger() -> str:
    """A name without an account, of this test only (the process keeps unknown names' counts)."""
    return f"stranger-{uuid.uuid4().hex[:8]}"


async def answer(db: AsyncSession, name: str, password: str, at: datetime) -> tuple[Any, ...]:
    """What a sign-in attempt answers, as comparable values: the error's type and content."""
    try:
        user = await authenticate(db, name, password, at)
    except UserError as exc:
        return (type(exc), str(exc), vars(exc))
    return ("signed in", user.username)


async def test_an_unknown_name_is_counted_and_locked_exactly_like_a_known_one(
    db: AsyncSession,
) -> None:
    await create_user(db, "alice", PASSWORD, UserRole.PLATFORM_ADMIN)
    nobody = stranger()

    known = [await answer(db, "alice", "wrong password", NOON) for _ in range(MAX_FAILED_LOGINS)]
    unknown = [await answer(db, nobody, "wrong password", NOON) for _ in range(MAX_FAILED_LOGINS)]

    assert known == unknown
    assert [a[0] for a in unknown] == [InvalidCredentials] * (MAX_FAILED_LOGINS - 1) + [
        AccountLocked
    ]
    assert unknown[-1][2] == {"until": NOON + LOCKOUT}
    # Locked: any password is refused the same way until the lock ends.
    later = NOON + LOCKOUT - timedelta(minutes=1)
    assert await answer(db, "alice", PASSWORD, later) == await answer(db, nobody, PASSWORD, later)
    assert (await answer(db, nobody.upper() + " ", PASSWORD, later))[0] is AccountLocked
    # Then the count starts again, for both.
    after = NOON + LOCKOUT
    assert await answer(db, "alice", "wrong password", after) == await answer(
        db, nobody, "wrong password", after
    )
    assert (await answer(db, nobody, "wrong password", after))[0] is InvalidCredentials


async def test_the_admin_panel_refuses_unknown_and_known_names_alike(db: AsyncSession) -> None:
    from admin_ui.domain_api import SignInRefused, sign_in

    await create_user(db, "alice", PASSWORD, UserRole.PLATFORM_ADMIN)
    await db.commit()
    nobody = stranger()
    refusals: dict[str, list[tuple[str, datetime | None]]] = {"alice": [], nobody: []}
    for name, seen in refusals.items():
        for _ in range(MAX_FAILED_LOGINS + 1):
            with pytest.raises(SignInRefused) as refused:
                await sign_in(db, name, "wrong password", NOON)
            seen.append((str(refused.value), refused.value.locked_until))

    assert refusals["alice"] == refusals[nobody]
    assert [until for _, until in refusals[nobody]] == [None] * (MAX_FAILED_LOGINS - 1) + [
        NOON + LOCKOUT
    ] * 2


async def test_a_disabled_account_is_counted_and_locked_like_the_others(
    db: AsyncSession,
) -> None:
    user = await create_user(db, "alice", PASSWORD, UserRole.PLATFORM_ADMIN)
    await set_active(db, user.id, False)
    nobody = stranger()

    disabled = [await answer(db, "alice", "wrong password", NOON) for _ in range(5)]
    unknown = [await answer(db, nobody, "wrong password", NOON) for _ in range(5)]

    assert disabled == unknown
    assert disabled[-1][0] is AccountLocked


async def test_an_unknown_name_costs_the_same_bcrypt_check_as_a_wrong_password(
    db: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    await create_user(db, "alice", PASSWORD, UserRole.PLATFORM_ADMIN)
    checks: list[int] = []
    real_checkpw = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        checks.append(int(hashed.split(b"$")[2]))  # the cost of the hash checked against
        return real_checkpw(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counting)
    nobody = stranger()

    for name in ("alice", nobody):
        for _ in range(MAX_FAILED_LOGINS):
            await answer(db, name, "wrong password", NOON)
        await answer(db, name, "wrong password", NOON)  # locked: refused before any check

    # One check per attempt until the lock, at the cost of the users' hashes (4 in tests).
    assert checks == [4] * (2 * MAX_FAILED_LOGINS)


def test_unknown_names_are_kept_as_digests_in_a_bounded_store() -> None:
    store = UnknownNameFailures(capacity=3)
    policy = LoginPolicy(max_failures=2)
    for _ in range(2):
        locked = store.fail("Mallory", NOON, policy)
    assert locked == NOON + policy.lockout
    # A flood of new names forgets the unlocked ones first: the lock stays.
    for name in ("a", "b", "c", "d", "e"):
        store.fail(name, NOON, policy)
    assert len(store) == 3
    assert store.locked_until(" mallory ", NOON) == NOON + policy.lockout
    assert "mallory" not in repr(vars(store)).lower()
    # Full of locks, a new name's count is what goes: no lock is lifted early.
    for name in ("x", "y"):
        store.fail(name, NOON, policy)
        store.fail(name, NOON, policy)
    assert len(store) == 3
    store.fail("w", NOON, policy)
    assert len(store) == 3
    for name in ("mallory", "x", "y"):
        assert store.locked_until(name, NOON) == NOON + policy.lockout
    # An expired lock is lifted, and the count starts again.
    assert store.locked_until("mallory", NOON + policy.lockout) is None
    assert store.fail("mallory", NOON + policy.lockout, policy) is None
