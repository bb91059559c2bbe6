"""Staff PINs per store: adding, changing, removing, unlocking, and checking them.

A PIN is 4 to 8 digits, stored as a bcrypt hash and never logged. Two active PINs of one store
are never equal, so a PIN names one staff member at its store; as hashes cannot be compared,
a new PIN is checked against every other active PIN of the store.

The lockout belongs to the store (``stores.pin_failed_attempts`` / ``pin_locked_until``): a
wrong PIN names nobody. After ``pin_max_attempts`` wrong PINs in a row (the merchant's program,
5 when it has none) the store's PINs are locked for ``pin_lockout_minutes`` (30); a right PIN
resets the count, and the lock ends by itself with time. Time is always passed in (``at``), so
tests and replays decide what "now" is.

These functions write through the caller's session and flush; they never commit. A refused PIN
still changes the store's counters, so the caller commits after ``WrongPin`` and
``StoreLocked`` too (a rollback would forget the wrong try)::

    try:
        staff = await verify_pin(session, store_code, pin, at=now)
    finally:
        await session.commit()
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.metrics import LOCKOUTS
from domain.hashing import check_secret_async, hash_secret_async, pin_rounds
from domain.models import LoyaltyProgram, StaffPin, Store

PIN_PATTERN = re.compile(r"[0-9]{4,8}")
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_LOCKOUT_MINUTES = 30


class StaffPinError(Exception):
    """Base of every refusal of this module; ``str()`` is a sentence for a person."""


class InvalidPin(StaffPinError):
    """The PIN is not 4 to 8 digits."""

    def __init__(self) -> None:
        super().__init__("a PIN is 4 to 8 digits")


class PinAlreadyUsed(StaffPinError):
    """Another active staff member of the store has this PIN."""

    def __init__(self, store_code: str) -> None:
        self.store_code = store_code
        super().__init__(f"another staff member of store {store_code} already has this PIN")


class StaffNameTaken(StaffPinError):
    """The store already has an active staff member of that name."""

    def __init__(self, store_code: str, name: str) -> None:
        self.store_code = store_code
        self.name = name
        super().__init__(f"store {store_code} already has a staff member named {name!r}")


class UnknownStore(StaffPinError):
    """No live store has this code."""

    def __init__(self, store_code: str) -> None:
        self.store_code = store_code
        super().__init__(f"unknown store {store_code!r}")


class UnknownStaffPin(StaffPinError):
    """No active staff PIN has this id."""

    def __init__(self, staff_pin_id: int) -> None:
        self.staff_pin_id = staff_pin_id
        super().__init__(f"no active staff PIN with id {staff_pin_id}")


class WrongPin(StaffPinError):
    """No active PIN of the store matches; ``remaining`` tries are left before the lock."""

    def __init__(self, store_code: str, remaining: int) -> None:
        self.store_code = store_code
        self.remaining = remaining
        tries = "try" if remaining == 1 else "tries"
        super().__init__(
            f"wrong PIN for store {store_code}: {remaining} {tries} left before the lock"
        )


class StoreLocked(StaffPinError):
    """The store's PINs are locked until ``until`` (just now, when ``just_locked``)."""

    def __init__(self, store_code: str, until: datetime, *, just_locked: bool = False) -> None:
        self.store_code = store_code
        self.until = until
        self.just_locked = just_locked
        why = "too many wrong PINs: " if just_locked else ""
        super().__init__(
            f"{why}the PINs of store {store_code} are locked until {until.isoformat()}"
        )


@dataclass(frozen=True)
class LockoutPolicy:
    """How many wrong PINs a store takes, and for how long it locks then."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    lockout: timedelta = timedelta(minutes=DEFAULT_LOCKOUT_MINUTES)


def validate_pin(pin: str) -> str:
    """``pin`` when it is 4 to 8 digits, else ``InvalidPin``."""
    if not PIN_PATTERN.fullmatch(pin):
        raise InvalidPin()
    return pin


async def add_pin(
    session: AsyncSession, store_code: str, name: str, pin: str, *, rounds: int | None = None
) -> StaffPin:
    """Give a staff member of a store a PIN; refused when the store already uses it."""
    validate_pin(pin)
    name = name.strip()
    if not name:
        raise ValueError("a staff member needs a name")
    store = await _store(session, store_code, for_update=True)
    others = await active_pins(session, store.id)
    if any(other.name == name for other in others):
        raise StaffNameTaken(store.code, name)
    await _refuse_if_used(store, others, pin)
    staff = StaffPin(
        store_id=store.id,
        name=name,
        pin_hash=await hash_secret_async(pin, rounds=pin_rounds(rounds)),
        is_active=True,
    )
    session.add(staff)
    await session.flush()
    return staff


async def change_pin(
    session: AsyncSession, staff_pin_id: int, pin: str, *, rounds: int | None = None
) -> StaffPin:
    """Replace a staff member's PIN; refused when another staff member of the store has it."""
    validate_pin(pin)
    staff = await _staff(session, staff_pin_id)
    store = await _store_by_id(session, staff.store_id)
    others = [p for p in await active_pins(session, store.id) if p.id != staff.id]
    await _refuse_if_used(store, others, pin)
    staff.pin_hash = await hash_secret_async(pin, rounds=pin_rounds(rounds))
    await session.flush()
    return staff


async def remove_pin(session: AsyncSession, staff_pin_id: int) -> StaffPin:
    """Retire a PIN: it stops working but stays, since ledger entries may name it."""
    staff = await _staff(session, staff_pin_id)
    staff.is_active = False
    await session.flush()
    return staff


async def unlock_store(session: AsyncSession, store_code: str) -> Store:
    """Lift a store's PIN lock now and forget its wrong tries (an admin's action)."""
    store = await _store(session, store_code, for_update=True)
    store.pin_failed_attempts = 0
    store.pin_locked_until = None
    await session.flush()
    return store


async def active_pins(session: AsyncSession, store_id: int) -> Sequence[StaffPin]:
    """The active staff PINs of a store, oldest first."""
    return (
        await session.scalars(
            select(StaffPin)
            .where(StaffPin.store_id == store_id, StaffPin.is_active.is_(True))
            .order_by(StaffPin.id)
        )
    ).all()


async def store_pins(session: AsyncSession, store_code: str) -> Sequence[StaffPin]:
    """The active staff PINs of the store with this code (for the admin panel's list)."""
    store = await _store(session, store_code)
    return await active_pins(session, store.id)


async def lockout_policy(session: AsyncSession, merchant_id: int) -> LockoutPolicy:
    """The merchant's program's lockout settings, or the defaults without a live program."""
    row = (
        await session.execute(
            select(LoyaltyProgram.pin_max_attempts, LoyaltyProgram.pin_lockout_minutes).where(
                LoyaltyProgram.merchant_id == merchant_id
            )
        )
    ).first()
    if row is None:
        return LockoutPolicy()
    return LockoutPolicy(max_attempts=row[0], lockout=timedelta(minutes=row[1]))


async def verify_pin(session: AsyncSession, store_code: str, pin: str, at: datetime) -> StaffPin:
    """The active staff PIN of the store that matches ``pin``, judged at time ``at``.

    Raises ``UnknownStore``, ``StoreLocked`` (with ``until``; also on the wrong try that locks
    the store, then with ``just_locked``) or ``WrongPin`` (with ``remaining`` tries). The store's
    row is locked for the check, so concurrent terminals count their wrong tries exactly. The
    caller commits in every case (see the module's docstring).
    """
    if at.tzinfo is None:
        raise ValueError("verify_pin needs an aware datetime")
    store = await _store(session, store_code, for_update=True)
    if store.pin_locked_until is not None:
        if store.pin_locked_until > at:
            raise StoreLocked(store.code, store.pin_locked_until)
        store.pin_locked_until = None
        store.pin_failed_attempts = 0
    if PIN_PATTERN.fullmatch(pin):
        for staff in await active_pins(session, store.id):
            if await check_secret_async(pin, staff.pin_hash):
                store.pin_failed_attempts = 0
                staff.last_used_at = at
                await session.flush()
                return staff
    policy = await lockout_policy(session, store.merchant_id)
    store.pin_failed_attempts += 1
    if store.pin_failed_attempts >= policy.max_attempts:
        store.pin_failed_attempts = 0
        store.pin_locked_until = at + policy.lockout
        await session.flush()
        LOCKOUTS.labels("staff_pin").inc()
        raise StoreLocked(store.code, store.pin_locked_until, just_locked=True)
    await session.flush()
    raise WrongPin(store.code, policy.max_attempts - store.pin_failed_attempts)


async def _refuse_if_used(store: Store, others: Sequence[StaffPin], pin: str) -> None:
    for other in others:
        if await check_secret_async(pin, other.pin_hash):
            raise PinAlreadyUsed(store.code)


async def _store(session: AsyncSession, store_code: str, *, for_update: bool = False) -> Store:
    query = select(Store).where(Store.code == store_code)
    if for_update:
        # populate_existing: the counters must be the ones just locked, not a stale copy.
        query = query.with_for_update().execution_options(populate_existing=True)
    store = (await session.scalars(query)).first()
    if store is None:
        raise UnknownStore(store_code)
    return store


async def _store_by_id(session: AsyncSession, store_id: int) -> Store:
    store = (
        await session.scalars(
            select(Store)
            .where(Store.id == store_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).first()
    if store is None:
        raise UnknownStore(str(store_id))
    return store


async def _staff(session: AsyncSession, staff_pin_id: int) -> StaffPin:
    staff = (
        await session.scalars(
            select(StaffPin).where(StaffPin.id == staff_pin_id, StaffPin.is_active.is_(True))
        )
    ).first()
    if staff is None:
        raise UnknownStaffPin(staff_pin_id)
    return staff
