"""Lockouts are counted where they start: a store's staff PINs, an admin name's sign-ins."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncSession

from core.settings import get_settings
from domain.models import UserRole
from domain.staff_pins import StoreLocked, WrongPin, add_pin, verify_pin
from domain.users import (
    AccountLocked,
    InvalidCredentials,
    UnknownNameFailures,
    authenticate,
    create_user,
)
from tests.domain import factories as f

NOON = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def cheap_bcrypt(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """bcrypt at its lowest cost: the tests count lockouts, not hashing."""
    monkeypatch.setenv("LOYALTY_BCRYPT_ROUNDS", "4")
    monkeypatch.setenv("LOYALTY_PIN_BCRYPT_ROUNDS", "4")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def lockouts(kind: str) -> float:
    """``loyalty_lockouts_total`` of a kind in this process."""
    return REGISTRY.get_sample_value("loyalty_lockouts_total", {"kind": kind}) or 0.0


async def test_the_wrong_pin_that_locks_a_store_counts_one_lockout(db: AsyncSession) -> None:
    merchant = await f.merchant(db)
    await f.store(db, merchant, "S1")
    await add_pin(db, "S1", "Anna", "4821")
    before = lockouts("staff_pin"), lockouts("sign_in")
    for _ in range(4):
        with pytest.raises(WrongPin):
            await verify_pin(db, "S1", "0000", NOON)
    assert lockouts("staff_pin") == before[0]

    with pytest.raises(StoreLocked) as locked:
        await verify_pin(db, "S1", "0000", NOON)
    assert locked.value.just_locked
    assert lockouts("staff_pin") == before[0] + 1

    # Tries while locked start no new lockout.
    with pytest.raises(StoreLocked):
        await verify_pin(db, "S1", "4821", NOON + timedelta(minutes=1))
    assert (lockouts("staff_pin"), lockouts("sign_in")) == (before[0] + 1, before[1])


async def test_a_locked_account_and_a_locked_unknown_name_count_as_sign_in_lockouts(
    db: AsyncSession,
) -> None:
    await create_user(db, "alice", "correct horse battery", UserRole.PLATFORM_ADMIN)
    before = lockouts("sign_in"), lockouts("staff_pin")
    for _ in range(4):
        with pytest.raises(InvalidCredentials):
            await authenticate(db, "alice", "wrong password", NOON)
    assert lockouts("sign_in") == before[0]
    with pytest.raises(AccountLocked):
        await authenticate(db, "alice", "wrong password", NOON)
    assert lockouts("sign_in") == before[0] + 1
    with pytest.raises(AccountLocked):
        await authenticate(db, "alice", "correct horse battery", NOON)
    assert lockouts("sign_in") == before[0] + 1

    strangers = UnknownNameFailures()
    for _ in range(4):
        with pytest.raises(InvalidCredentials):
            await authenticate(db, "nobody", "guess", NOON, unknown_names=strangers)
    with pytest.raises(AccountLocked):
        await authenticate(db, "nobody", "guess", NOON, unknown_names=strangers)
    assert (lockouts("sign_in"), lockouts("staff_pin")) == (before[0] + 2, before[1])
