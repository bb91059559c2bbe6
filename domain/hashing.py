"""bcrypt hashing of staff PINs and admin passwords.

The cost comes from ``Settings.bcrypt_rounds`` (``LOYALTY_BCRYPT_ROUNDS``, passwords) or
``Settings.pin_bcrypt_rounds`` (``LOYALTY_PIN_BCRYPT_ROUNDS``, staff PINs) unless a caller
passes ``rounds``. Hashing takes a quarter of a second at the default cost, so the async
functions run it in a worker thread: an admin panel signing someone in must not freeze every
other page of the event loop meanwhile.
"""

from __future__ import annotations

import asyncio

import bcrypt

from core.settings import get_settings

# bcrypt only reads the first 72 bytes of a secret (and the library refuses longer ones):
# longer passwords are refused when set, so two passwords never silently share a hash.
MAX_SECRET_BYTES = 72

# A valid hash of a secret nobody knows, checked when a user name is unknown so that an unknown
# name costs the same time as a wrong password. Its cost is fixed at creation, so it is made
# lazily with the configured cost.
_dummy_hashes: dict[int, bytes] = {}


def bcrypt_rounds(rounds: int | None = None) -> int:
    """The bcrypt cost of passwords: ``rounds`` when given, else the configured one."""
    return rounds if rounds is not None else get_settings().bcrypt_rounds


def pin_rounds(rounds: int | None = None) -> int:
    """The bcrypt cost of staff PINs: ``rounds`` when given, else the configured one."""
    return rounds if rounds is not None else get_settings().pin_bcrypt_rounds


def hash_secret(secret: str, *, rounds: int | None = None) -> str:
    """A bcrypt hash of ``secret`` (a PIN or a password) as text, salt included."""
    raw = secret.encode()
    if len(raw) > MAX_SECRET_BYTES:
        raise ValueError(f"a secret longer than {MAX_SECRET_BYTES} bytes cannot be hashed")
    return bcrypt.hashpw(raw, bcrypt.gensalt(rounds=bcrypt_rounds(rounds))).decode()


def check_secret(secret: str, hashed: str) -> bool:
    """Whether ``secret`` matches ``hashed``; a malformed hash or an over-long secret is no."""
    raw = secret.encode()
    if len(raw) > MAX_SECRET_BYTES:
        return False
    try:
        return bcrypt.checkpw(raw, hashed.encode())
    except ValueError:
        return False


def burn_check(*, rounds: int | None = None) -> None:
    """Spend the time of one ``check_secret`` without anything to check (unknown users)."""
    cost = bcrypt_rounds(rounds)
    if cost not in _dummy_hashes:
        _dummy_hashes[cost] = bcrypt.hashpw(b"no such user", bcrypt.gensalt(rounds=cost))
    bcrypt.checkpw(b"not the password", _dummy_hashes[cost])


async def hash_secret_async(secret: str, *, rounds: int | None = None) -> str:
    """``hash_secret`` in a worker thread."""
    cost = bcrypt_rounds(rounds)
    return await asyncio.to_thread(hash_secret, secret, rounds=cost)


async def check_secret_async(secret: str, hashed: str) -> bool:
    """``check_secret`` in a worker thread."""
    return await asyncio.to_thread(check_secret, secret, hashed)


async def burn_check_async(*, rounds: int | None = None) -> None:
    """``burn_check`` in a worker thread."""
    cost = bcrypt_rounds(rounds)
    await asyncio.to_thread(burn_check, rounds=cost)
