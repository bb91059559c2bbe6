"""Admin panel users: creation, sign-in with a lockout, and the first platform admin.

User names are compared case-insensitively (stored lower-case). Passwords are 8 to 72 bytes
and bcrypt-hashed. ``authenticate`` answers an unknown user name exactly like a known one, so a
caller cannot learn which names exist: a wrong password and an unknown name get the same
``InvalidCredentials`` after the same bcrypt work (an unknown name is checked against a dummy
hash), and both lock with the same ``AccountLocked`` after the same number of failures. A
known name's failures are kept on its row; an unknown name's in :class:`UnknownNameFailures`,
a bounded store in this process's memory (there is no table for names that do not exist).

Like ``domain.staff_pins``, these functions flush and never commit; ``authenticate`` changes
the failure counter even when it raises, so the caller commits in every case.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NoReturn

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.metrics import LOCKOUTS
from domain.hashing import (
    MAX_SECRET_BYTES,
    burn_check_async,
    check_secret_async,
    hash_secret_async,
)
from domain.models import AdminUser, Merchant, UserRole

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 8
INITIAL_ADMIN = "admin"
USERNAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._@-]{0,99}")
# An arbitrary constant key of PostgreSQL's advisory locks, for ensure_initial_admin.
_INITIAL_ADMIN_LOCK = 0x10_7A17_AD


class UserError(Exception):
    """Base of every refusal of this module; ``str()`` is a sentence for a person."""


class InvalidUser(UserError):
    """A user that cannot be created as asked (name, password, role or merchant)."""


class UserExists(UserError):
    """The user name is taken."""

    def __init__(self, username: str) -> None:
        self.username = username
        super().__init__(f"user {username!r} already exists")


class UnknownUser(UserError):
    """No user has this id (admin actions on a user, never sign-in)."""

    def __init__(self, user_id: int) -> None:
        self.user_id = user_id
        super().__init__(f"no user with id {user_id}")


class InvalidCredentials(UserError):
    """Unknown user, disabled user or wrong password: deliberately indistinguishable."""

    def __init__(self) -> None:
        super().__init__("unknown user name or wrong password")


class AccountLocked(UserError):
    """Too many wrong passwords: sign-in is refused until ``until``."""

    def __init__(self, until: datetime) -> None:
        self.until = until
        super().__init__(
            f"too many failed sign-ins: this account is locked until {until.isoformat()}"
        )


@dataclass(frozen=True)
class LoginPolicy:
    """How many wrong passwords in a row lock an account, and for how long."""

    max_failures: int = MAX_FAILED_LOGINS
    lockout: timedelta = LOCKOUT


def normalize_username(username: str) -> str:
    """The stored form of a user name: trimmed, lower-case."""
    return username.strip().lower()


@dataclass
class _Tally:
    failed: int = 0
    locked_until: datetime | None = None


class UnknownNameFailures:
    """Failed sign-ins of user names that have no account, under the same policy as accounts.

    Kept in this process's memory, keyed by a digest of the normalized name (no typed name,
    which may be a mistyped password, stays in memory), and bounded by ``capacity``: when
    full, the least recently tried name that is not locked is forgotten first, so a flood of
    new names does not lift the locks (a lock is forgotten only when every entry is locked).
    Several admin processes, or a restart, count apart: a DB table would be needed to share.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._tallies: OrderedDict[bytes, _Tally] = OrderedDict()

    def __len__(self) -> int:
        return len(self._tallies)

    @staticmethod
    def _key(username: str) -> bytes:
        return hashlib.sha256(normalize_username(username).encode()).digest()

    def locked_until(self, username: str, at: datetime) -> datetime | None:
        """When the lock of this name ends, or None when it is not locked at ``at``.

        An expired lock is lifted and the count starts again, as for an account.
        """
        key = self._key(username)
        tally = self._tallies.get(key)
        if tally is None or tally.locked_until is None:
            return None
        if tally.locked_until > at:
            return tally.locked_until
        del self._tallies[key]
        return None

    def fail(self, username: str, at: datetime, policy: LoginPolicy) -> datetime | None:
        """Count one failure of this name; the end of the lock it starts, if it starts one."""
        key = self._key(username)
        tally = self._tallies.pop(key, None) or _Tally()
        tally.failed += 1
        if tally.failed >= policy.max_failures:
            tally.failed = 0
            tally.locked_until = at + policy.lockout
        self._tallies[key] = tally  # most recently tried last
        self._evict(at)
        return tally.locked_until

    def _evict(self, at: datetime) -> None:
        while len(self._tallies) > self.capacity:
            victim = next(
                (
                    key
                    for key, tally in self._tallies.items()
                    if tally.locked_until is None or tally.locked_until <= at
                ),
                next(iter(self._tallies)),
            )
            del self._tallies[victim]


# The admin panel's process-wide store of unknown names' failures.
UNKNOWN_NAME_FAILURES = UnknownNameFailures()


def validate_password(password: str) -> str:
    """``password`` when it is 8 characters to 72 bytes long, else ``InvalidUser``."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidUser(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    if len(password.encode()) > MAX_SECRET_BYTES:
        raise InvalidUser(f"a password has at most {MAX_SECRET_BYTES} bytes")
    return password


async def create_user(
    session: AsyncSession,
    username: str,
    password: str,
    role: UserRole | str,
    *,
    merchant_code: str | None = None,
    rounds: int | None = None,
) -> AdminUser:
    """A new admin user: a platform admin sees everything, a merchant admin one merchant."""
    name = normalize_username(username)
    if not USERNAME_PATTERN.fullmatch(name):
        raise InvalidUser(
            "a user name is 1-100 letters, digits or . _ @ - and starts with a letter or digit"
        )
    try:
        role = UserRole(role)
    except ValueError:
        allowed = ", ".join(r.value for r in UserRole)
        raise InvalidUser(f"unknown role {role!r} (one of {allowed})") from None
    validate_password(password)
    merchant_id: int | None = None
    if role is UserRole.MERCHANT_ADMIN:
        if not merchant_code:
            raise InvalidUser("a merchant admin needs a merchant")
        merchant_id = await session.scalar(
            select(Merchant.id).where(Merchant.code == merchant_code)
        )
        if merchant_id is None:
            raise InvalidUser(f"unknown merchant {merchant_code!r}")
    elif merchant_code:
        raise InvalidUser("a platform admin belongs to no merchant")
    if await session.scalar(select(AdminUser.id).where(AdminUser.username == name)) is not None:
        raise UserExists(name)
    user = AdminUser(
        username=name,
        password_hash=await hash_secret_async(password, rounds=rounds),
        role=role,
        merchant_id=merchant_id,
        failed_logins=0,
        is_active=True,
    )
    session.add(user)
    await session.flush()
    return user


async def authenticate(
    session: AsyncSession,
    username: str,
    password: str,
    at: datetime,
    *,
    policy: LoginPolicy = LoginPolicy(),
    unknown_names: UnknownNameFailures | None = None,
) -> AdminUser:
    """The active user with this name and password, judged at time ``at``.

    Raises ``InvalidCredentials`` (unknown or disabled user, wrong password, a merchant admin of
    a deleted merchant: the same error)
    or ``AccountLocked`` after ``policy.max_failures`` failures in a row, until the lock ends;
    a locked account is refused even with the right password. An unknown name is counted and
    locked the same way, in ``unknown_names`` (the process's :data:`UNKNOWN_NAME_FAILURES`
    by default), and costs the same bcrypt check. The caller commits in every case (the
    failure count is part of the answer).
    """
    if at.tzinfo is None:
        raise ValueError("authenticate needs an aware datetime")
    user = (
        await session.scalars(
            select(AdminUser)
            .where(AdminUser.username == normalize_username(username))
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).first()
    if user is None:
        await _refuse_unknown(
            username, at, policy, UNKNOWN_NAME_FAILURES if unknown_names is None else unknown_names
        )
    if user.locked_until is not None:
        if user.locked_until > at:
            raise AccountLocked(user.locked_until)
        user.locked_until = None
        user.failed_logins = 0
    if await check_secret_async(password, user.password_hash):
        user.failed_logins = 0
        await session.flush()
        # A disabled user, or the admin of a deleted merchant, is refused only once the
        # password is right, so neither answers differently from an active account.
        if not user.is_active:
            raise InvalidCredentials()
        if user.merchant_id is not None and not await _merchant_is_live(session, user.merchant_id):
            # The merchant was deleted: its admins have nothing left to administer.
            raise InvalidCredentials()
        return user
    user.failed_logins += 1
    if user.failed_logins >= policy.max_failures:
        user.failed_logins = 0
        user.locked_until = at + policy.lockout
        await session.flush()
        LOCKOUTS.labels("sign_in").inc()
        raise AccountLocked(user.locked_until)
    await session.flush()
    raise InvalidCredentials()


async def _refuse_unknown(
    username: str, at: datetime, policy: LoginPolicy, failures: UnknownNameFailures
) -> NoReturn:
    """The answer to a name without an account: what an account would answer to a wrong
    password, in the same steps (lock first, then a bcrypt check, then the count)."""
    locked = failures.locked_until(username, at)
    if locked is not None:
        raise AccountLocked(locked)
    await burn_check_async()
    locked = failures.fail(username, at, policy)
    if locked is not None:
        # An unknown name locks as an account does, and counts as one: a monitor must not
        # tell the two apart either.
        LOCKOUTS.labels("sign_in").inc()
        raise AccountLocked(locked)
    raise InvalidCredentials()


async def set_password(
    session: AsyncSession, user_id: int, password: str, *, rounds: int | None = None
) -> AdminUser:
    """Replace a user's password (and lift a lock: the person has been vouched for)."""
    validate_password(password)
    user = await _user(session, user_id)
    user.password_hash = await hash_secret_async(password, rounds=rounds)
    user.failed_logins = 0
    user.locked_until = None
    await session.flush()
    return user


async def unlock_user(session: AsyncSession, user_id: int) -> AdminUser:
    """Lift a user's sign-in lock now and forget the failed tries."""
    user = await _user(session, user_id)
    user.failed_logins = 0
    user.locked_until = None
    await session.flush()
    return user


async def set_active(session: AsyncSession, user_id: int, active: bool) -> AdminUser:
    """Disable a user (sign-in refused like a wrong password) or enable them again."""
    user = await _user(session, user_id)
    user.is_active = active
    await session.flush()
    return user


async def ensure_initial_admin(session: AsyncSession, *, rounds: int | None = None) -> str | None:
    """Create the ``admin`` platform admin with a random password when no user exists.

    Returns that password, to be shown once, or ``None`` when there were users already. Two
    processes starting at once take turns (a transaction-scoped advisory lock), so the second
    one sees the first one's admin once it commits and creates nothing.
    """
    await session.execute(select(func.pg_advisory_xact_lock(_INITIAL_ADMIN_LOCK)))
    if await session.scalar(select(func.count()).select_from(AdminUser)):
        return None
    password = secrets.token_urlsafe(12)
    await create_user(session, INITIAL_ADMIN, password, UserRole.PLATFORM_ADMIN, rounds=rounds)
    return password


async def _merchant_is_live(session: AsyncSession, merchant_id: int) -> bool:
    return await session.scalar(select(Merchant.id).where(Merchant.id == merchant_id)) is not None


async def _user(session: AsyncSession, user_id: int) -> AdminUser:
    user = await session.get(AdminUser, user_id)
    if user is None:
        raise UnknownUser(user_id)
    return user
