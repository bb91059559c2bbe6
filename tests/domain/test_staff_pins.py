"""Staff PINs: one per staff member and store, checked with a per-store lockout."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.models import StaffPin, Store
from domain.staff_pins import (
    InvalidPin,
    PinAlreadyUsed,
    StaffNameTaken,
    StoreLocked,
    UnknownStaffPin,
    UnknownStore,
    WrongPin,
    add_pin,
    change_pin,
    remove_pin,
    store_pins,
    unlock_store,
    verify_pin,
)
from tests.domain import factories as f

NOON = f.utc(2025, 3, 1, 12, 0)


async def _store(db: AsyncSession, **program: int) -> Store:
    merchant = await f.merchant(db)
    if program:
        await f.program(db, merchant, **program)
    store = await f.store(db, merchant, "S1")
    await f.store(db, merchant, "S2")
    return store


async def test_the_right_pin_names_its_staff_member(db: AsyncSession) -> None:
    await _store(db)
    anna = await add_pin(db, "S1", "Anna", "4821")
    await add_pin(db, "S1", "Marc", "7305")

    found = await verify_pin(db, "S1", "4821", NOON)

    assert found.id == anna.id
    assert found.last_used_at == NOON
    assert "4821" not in anna.pin_hash


@pytest.mark.parametrize("pin", ["123", "123456789", "12a4", "", " 1234", "١٢٣٤"])
async def test_a_pin_is_four_to_eight_digits(db: AsyncSession, pin: str) -> None:
    await _store(db)
    with pytest.raises(InvalidPin):
        await add_pin(db, "S1", "Anna", pin)


async def test_two_staff_of_a_store_cannot_share_a_pin_but_two_stores_can(
    db: AsyncSession,
) -> None:
    await _store(db)
    await add_pin(db, "S1", "Anna", "4821")

    with pytest.raises(PinAlreadyUsed):
        await add_pin(db, "S1", "Marc", "4821")
    await add_pin(db, "S2", "Marc", "4821")


async def test_a_changed_pin_is_checked_against_the_other_pins_only(db: AsyncSession) -> None:
    await _store(db)
    anna = await add_pin(db, "S1", "Anna", "4821")
    marc = await add_pin(db, "S1", "Marc", "7305")

    with pytest.raises(PinAlreadyUsed):
        await change_pin(db, marc.id, "4821")
    await change_pin(db, anna.id, "4821")  # her own PIN again is fine
    await change_pin(db, anna.id, "1111")

    assert (await verify_pin(db, "S1", "1111", NOON)).id == anna.id
    with pytest.raises(WrongPin):
        await verify_pin(db, "S1", "4821", NOON)


async def test_a_removed_pin_stops_working_and_frees_its_digits(db: AsyncSession) -> None:
    await _store(db)
    anna = await add_pin(db, "S1", "Anna", "4821")
    await remove_pin(db, anna.id)

    with pytest.raises(WrongPin):
        await verify_pin(db, "S1", "4821", NOON)
    with pytest.raises(UnknownStaffPin):
        await change_pin(db, anna.id, "1234")
    await add_pin(db, "S1", "Anna", "4821")
    assert [p.name for p in await store_pins(db, "S1")] == ["Anna"]


async def test_a_store_has_one_active_staff_member_of_a_name(db: AsyncSession) -> None:
    await _store(db)
    await add_pin(db, "S1", "Anna", "4821")
    with pytest.raises(StaffNameTaken):
        await add_pin(db, "S1", "Anna", "9999")


async def test_an_unknown_or_deleted_store_is_named_as_such(db: AsyncSession) -> None:
    store = await _store(db)
    store.deleted_at = NOON
    await db.flush()
    with pytest.raises(UnknownStore):
        await verify_pin(db, "S1", "4821", NOON)
    with pytest.raises(UnknownStore):
        await add_pin(db, "NOPE", "Anna", "4821")


async def test_a_wrong_pin_says_how_many_tries_remain(db: AsyncSession) -> None:
    await _store(db)
    await add_pin(db, "S1", "Anna", "4821")

    remaining = []
    for _ in range(4):
        with pytest.raises(WrongPin) as wrong:
            await verify_pin(db, "S1", "0000", NOON)
        remaining.append(wrong.value.remaining)

    assert remaining == [4, 3, 2, 1]
    assert "1 try left" in str(wrong.value)


async def test_the_fifth_wrong_pin_locks_the_store_even_for_the_right_pin(
    db: AsyncSession,
) -> None:
    await _store(db)
    await add_pin(db, "S1", "Anna", "4821")
    await add_pin(db, "S2", "Marc", "7305")
    for _ in range(4):
        with pytest.raises(WrongPin):
            await verify_pin(db, "S1", "0000", NOON)

    with pytest.raises(StoreLocked) as locked:
        await verify_pin(db, "S1", "0000", NOON)
    assert locked.value.just_locked
    assert locked.value.until == NOON + timedelta(minutes=30)

    later = NOON + timedelta(minutes=29)
    with pytest.raises(StoreLocked) as still:
        await verify_pin(db, "S1", "4821", later)
    assert not still.value.just_locked
    assert "locked until" in str(still.value)
    # The lock is the store's: the other store is not affected.
    assert (await verify_pin(db, "S2", "7305", later)).name == "Marc"


async def test_the_lock_ends_with_time_and_the_count_starts_again(db: AsyncSession) -> None:
    await _store(db)
    await add_pin(db, "S1", "Anna", "4821")
    for _ in range(4):
        with pytest.raises(WrongPin):
            await verify_pin(db, "S1", "0000", NOON)
    with pytest.raises(StoreLocked):
        await verify_pin(db, "S1", "0000", NOON)

    after = NOON + timedelta(minutes=30)
    with pytest.raises(WrongPin) as wrong:
        await verify_pin(db, "S1", "0000", after)
    assert wrong.value.remaining == 4
    assert (await verify_pin(db, "S1", "4821", after)).name == "Anna"


async def test_a_right_pin_resets_the_count(db: AsyncSession) -> None:
    store = await _store(db)
    await add_pin(db, "S1", "Anna", "4821")
    for _ in range(3):
        with pytest.raises(WrongPin):
            await verify_pin(db, "S1", "0000", NOON)
    await verify_pin(db, "S1", "4821", NOON)

    assert store.pin_failed_attempts == 0
    with pytest.raises(WrongPin) as wrong:
        await verify_pin(db, "S1", "0000", NOON)
    assert wrong.value.remaining == 4


async def test_the_program_sets_the_number_of_tries_and_the_lock_length(
    db: AsyncSession,
) -> None:
    await _store(db, pin_max_attempts=2, pin_lockout_minutes=5)
    await add_pin(db, "S1", "Anna", "4821")
    with pytest.raises(WrongPin) as wrong:
        await verify_pin(db, "S1", "0000", NOON)
    assert wrong.value.remaining == 1
    with pytest.raises(StoreLocked) as locked:
        await verify_pin(db, "S1", "0000", NOON)
    assert locked.value.until == NOON + timedelta(minutes=5)


async def test_an_admin_unlocks_a_store(db: AsyncSession) -> None:
    await _store(db, pin_max_attempts=1)
    await add_pin(db, "S1", "Anna", "4821")
    with pytest.raises(StoreLocked):
        await verify_pin(db, "S1", "0000", NOON)

    await unlock_store(db, "S1")

    assert (await verify_pin(db, "S1", "4821", NOON)).name == "Anna"


async def test_wrong_tries_count_once_committed_even_when_the_caller_then_fails(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with db_sessions() as setup:
        await _store(setup)
        await add_pin(setup, "S1", "Anna", "4821")
        await setup.commit()

    for _ in range(2):
        async with db_sessions() as session:
            try:
                await verify_pin(session, "S1", "0000", NOON)
            except WrongPin:
                pass
            finally:
                await session.commit()

    async with db_sessions() as session:
        store = (await session.scalars(select(Store).where(Store.code == "S1"))).one()
        assert store.pin_failed_attempts == 2
        hashes = (await session.scalars(select(StaffPin.pin_hash))).all()
        assert all(h.startswith("$2b$04$") for h in hashes)  # the tests' bcrypt cost
