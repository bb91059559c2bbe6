"""Paired staff terminals: a store's devices that may open its terminal without an admin.

An admin of the merchant starts a pairing on the store's page and reads a short one-time code
(``K7Q4-M2XP``, 40 bits, valid ten minutes, tries rate-limited by the panel). The device that
types it gets a long random token (256 bits) kept in an http-only cookie; the database holds
only SHA-256 digests of codes and tokens, so reading it opens no terminal. A revoked device is
refused at its next action.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.audit_trail import record_change
from domain.models import Merchant, Store, TerminalDevice

PAIRING_TTL = timedelta(minutes=10)
# No 0/O, 1/I/L: a code is read off one screen and typed on another.
_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
_CODE_LENGTH = 8
NAME_MAX = 100


@dataclass(frozen=True)
class PairingCode:
    """A pairing just started: the code to type on the device, once, before ``expires_at``."""

    device_id: int
    code: str
    expires_at: datetime


@dataclass(frozen=True)
class DeviceRow:
    """A store's terminal device as the admin lists it."""

    id: int
    name: str
    created_at: datetime
    created_by: str
    paired_at: datetime | None
    last_seen_at: datetime | None
    pairing_expires_at: datetime | None
    revoked_at: datetime | None

    @property
    def state(self) -> str:
        """``paired``, ``waiting`` (for its code) or ``revoked``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.paired_at is not None:
            return "paired"
        return "waiting"


@dataclass(frozen=True)
class PairedDevice:
    """A device that holds a valid token for a store's terminal."""

    id: int
    name: str
    store_id: int
    merchant_id: int


def digest(secret: str) -> str:
    """The stored form of a code or token."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_pairing_code() -> str:
    """Eight characters of an unambiguous alphabet, shown as ``XXXX-XXXX``."""
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_LENGTH))
    return f"{raw[:4]}-{raw[4:]}"


def normalize_code(typed: str) -> str:
    """A code as typed (any case, spaces, with or without the dash) in its shown form."""
    raw = "".join(ch for ch in typed.upper() if ch.isalnum())
    return f"{raw[:4]}-{raw[4:]}" if len(raw) == _CODE_LENGTH else raw


def new_device_token() -> str:
    """The secret a paired device keeps in its cookie."""
    return secrets.token_urlsafe(32)


async def start_pairing(
    session: AsyncSession, store_id: int, name: str, *, by: str, now: datetime
) -> PairingCode:
    """A device of ``store_id`` waiting for its code; the caller commits."""
    code = new_pairing_code()
    device = TerminalDevice(
        store_id=store_id,
        name=(name.strip() or "Terminal")[:NAME_MAX],
        pairing_code_hash=digest(code),
        pairing_expires_at=now + PAIRING_TTL,
        created_by=by,
        created_at=now,
    )
    session.add(device)
    await session.flush()
    return PairingCode(device.id, code, now + PAIRING_TTL)


async def pair(
    session: AsyncSession, store_code: str, typed_code: str, now: datetime
) -> str | None:
    """The new device token when ``typed_code`` is a live code of this store, else ``None``.

    The code is spent by the first success; the caller commits.
    """
    code = normalize_code(typed_code)
    if len(code) != _CODE_LENGTH + 1:
        return None
    device_id = await session.scalar(
        select(TerminalDevice.id)
        .join(Store, Store.id == TerminalDevice.store_id)
        .join(Merchant, Merchant.id == Store.merchant_id)
        .where(
            TerminalDevice.pairing_code_hash == digest(code),
            TerminalDevice.pairing_expires_at > now,
            TerminalDevice.token_hash.is_(None),
            TerminalDevice.revoked_at.is_(None),
            Store.code == store_code,
        )
        .with_for_update(of=TerminalDevice)
    )
    if device_id is None:
        return None
    token = new_device_token()
    await session.execute(
        update(TerminalDevice)
        .where(TerminalDevice.id == device_id)
        .values(
            token_hash=digest(token),
            pairing_code_hash=None,
            pairing_expires_at=None,
            paired_at=now,
            last_seen_at=now,
        )
    )
    return token


async def paired_device(
    session: AsyncSession, store_code: str, token: str | None
) -> PairedDevice | None:
    """The live, unrevoked device of this store (live merchant too) holding ``token``."""
    if not token:
        return None
    row = (
        await session.execute(
            select(TerminalDevice.id, TerminalDevice.name, Store.id, Store.merchant_id)
            .join(Store, Store.id == TerminalDevice.store_id)
            .join(Merchant, Merchant.id == Store.merchant_id)
            .where(
                TerminalDevice.token_hash == digest(token),
                TerminalDevice.revoked_at.is_(None),
                Store.code == store_code,
            )
        )
    ).first()
    return PairedDevice(*row) if row is not None else None


async def mark_seen(session: AsyncSession, device_id: int, now: datetime) -> None:
    """Note when the device last opened its terminal; the caller commits."""
    await session.execute(
        update(TerminalDevice).where(TerminalDevice.id == device_id).values(last_seen_at=now)
    )


async def revoke(session: AsyncSession, device_id: int, *, by: str, now: datetime) -> bool:
    """Revoke a device (or a pairing still waiting); False when it was revoked already."""
    merchant_id = await session.scalar(
        update(TerminalDevice)
        .where(TerminalDevice.id == device_id, TerminalDevice.revoked_at.is_(None))
        .values(revoked_at=now, revoked_by=by, pairing_code_hash=None)
        .returning(
            select(Store.merchant_id).where(Store.id == TerminalDevice.store_id).scalar_subquery()
        )
    )
    if merchant_id is None:
        return False
    # A bulk update: the audit trail's flush hook does not see it.
    await record_change(
        session,
        action="revoke",
        entity="terminal_device",
        entity_id=device_id,
        merchant_id=merchant_id,
        before={"revoked_at": None},
        after={"revoked_at": now.isoformat()},
    )
    return True


async def store_devices(session: AsyncSession, store_id: int, now: datetime) -> list[DeviceRow]:
    """The store's devices, newest first; pairings that ended unused are left out."""
    rows = await session.scalars(
        select(TerminalDevice)
        .where(TerminalDevice.store_id == store_id)
        .order_by(TerminalDevice.created_at.desc(), TerminalDevice.id.desc())
    )
    return [
        DeviceRow(
            d.id,
            d.name,
            d.created_at,
            d.created_by,
            d.paired_at,
            d.last_seen_at,
            d.pairing_expires_at,
            d.revoked_at,
        )
        for d in rows
        if d.paired_at is not None
        or (
            d.revoked_at is None and d.pairing_expires_at is not None and d.pairing_expires_at > now
        )
    ]


async def device_store_id(session: AsyncSession, device_id: int) -> int | None:
    """The store of a device, to check the admin may act on it."""
    return await session.scalar(
        select(TerminalDevice.store_id).where(TerminalDevice.id == device_id)
    )
