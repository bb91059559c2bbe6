"""The admin panel's thin layer over the domain services it calls.

Pages call these functions, never ``domain.users``, ``domain.staff_pins``, ``domain.lookup``,
``domain.stats`` or ``domain.provisioning`` directly, so a change of those modules' API is
absorbed here, in one place. Every refusal reaches the pages as a ``DomainRefusal`` whose
``str()`` is a sentence for a person.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from admin_ui.runtime import raw_connection
from domain import lookup, staff_pins, stats, users
from domain.engine import admin_actions
from domain.engine.batch import BatchOutcome, Inbound, InputEvent, process_batch
from domain.models import AdminUser, LoyaltyCard, StaffPin
from domain.provisioning import MerchantSpec, ProgramSpec, StoreSpec, validation_errors
from domain.rules.admin import AdjustmentError

_T = TypeVar("_T")


class DomainRefusal(Exception):
    """A domain rule said no; the message is meant for the person who asked."""


@dataclass(frozen=True)
class FieldProblem:
    """A form field (its path, e.g. ``points_rewards[0].name``) and what is wrong with it."""

    path: str
    message: str


# --- sign-in --------------------------------------------------------------------------------


class SignInRefused(DomainRefusal):
    """Wrong credentials or a locked account; ``locked_until`` is set for a lock."""

    def __init__(self, message: str, locked_until: datetime | None = None) -> None:
        self.locked_until = locked_until
        super().__init__(message)


async def sign_in(session: AsyncSession, username: str, password: str, at: datetime) -> AdminUser:
    """The user with these credentials; ``SignInRefused`` otherwise. Commits in every case."""
    try:
        user = await users.authenticate(session, username, password, at)
    except users.AccountLocked as exc:
        await session.commit()
        raise SignInRefused(str(exc), exc.until) from None
    except users.UserError as exc:
        await session.commit()
        raise SignInRefused(str(exc)) from None
    await session.commit()
    return user


# --- staff PINs -----------------------------------------------------------------------------


class PinRefused(DomainRefusal):
    """A wrong PIN (``remaining`` tries) or a locked store (``locked_until``)."""

    def __init__(
        self, message: str, *, remaining: int | None = None, locked_until: datetime | None = None
    ) -> None:
        self.remaining = remaining
        self.locked_until = locked_until
        super().__init__(message)


async def verify_pin(session: AsyncSession, store_code: str, pin: str, at: datetime) -> StaffPin:
    """The staff member whose PIN this is at the store; ``PinRefused`` otherwise. Commits."""
    try:
        staff = await staff_pins.verify_pin(session, store_code, pin, at)
    except staff_pins.WrongPin as exc:
        await session.commit()
        raise PinRefused(str(exc), remaining=exc.remaining) from None
    except staff_pins.StoreLocked as exc:
        await session.commit()
        raise PinRefused(str(exc), locked_until=exc.until) from None
    except staff_pins.StaffPinError as exc:
        await session.commit()
        raise PinRefused(str(exc)) from None
    await session.commit()
    return staff


async def store_pins(session: AsyncSession, store_code: str) -> Sequence[StaffPin]:
    """The active staff PINs of a store."""
    return await _pins(staff_pins.store_pins(session, store_code))


async def add_pin(session: AsyncSession, store_code: str, name: str, pin: str) -> StaffPin:
    """A new staff PIN (flushed, not committed)."""
    return await _pins(staff_pins.add_pin(session, store_code, name, pin))


async def change_pin(session: AsyncSession, staff_pin_id: int, pin: str) -> StaffPin:
    """A staff member's new PIN (flushed, not committed)."""
    return await _pins(staff_pins.change_pin(session, staff_pin_id, pin))


async def remove_pin(session: AsyncSession, staff_pin_id: int) -> StaffPin:
    """Retire a staff PIN (flushed, not committed)."""
    return await _pins(staff_pins.remove_pin(session, staff_pin_id))


async def unlock_store(session: AsyncSession, store_code: str) -> None:
    """Lift a store's PIN lock (flushed, not committed)."""
    await _pins(staff_pins.unlock_store(session, store_code))


async def _pins(call: Awaitable[_T]) -> _T:
    try:
        return await call
    except (staff_pins.StaffPinError, ValueError) as exc:
        raise DomainRefusal(str(exc)) from None


# --- cards ----------------------------------------------------------------------------------


async def find_card(session: AsyncSession, text: str, merchant_code: str) -> LoyaltyCard | None:
    """A merchant's live card by what a person typed: card number, QR text or email."""
    try:
        return await lookup.find_card_by_text(session, text, merchant_code=merchant_code)
    except lookup.CardLookupError as exc:
        raise DomainRefusal(str(exc)) from None


async def apply_events(
    session: AsyncSession, events: Sequence[Inbound], now: datetime
) -> BatchOutcome:
    """Input events through the engine, in the session's transaction (the caller commits)."""
    return await process_batch(await raw_connection(session), events, now)


def inbound(
    topic: str, message: InputEvent, staff_pin_id: int | None = None, actor: str | None = None
) -> Inbound:
    """An input event as the engine takes it, with the staff member and actor for the audit."""
    return Inbound(topic, message, staff_pin_id=staff_pin_id, actor=actor)


async def adjust_card(
    session: AsyncSession,
    *,
    action_id: uuid.UUID,
    card_id: int,
    stamps: int,
    points: int,
    reason: str,
    actor: str,
    now: datetime,
) -> admin_actions.AdminActionOutcome:
    """A manual adjustment (``DomainRefusal`` when the rules refuse it); the caller commits."""
    try:
        return await admin_actions.adjust_card(
            await raw_connection(session),
            action_id=action_id,
            card_id=card_id,
            stamps=stamps,
            points=points,
            reason=reason,
            actor=actor,
            now=now,
        )
    except (AdjustmentError, admin_actions.CardNotFound) as exc:
        raise DomainRefusal(str(exc)) from None


async def set_card_active(
    session: AsyncSession,
    *,
    action_id: uuid.UUID,
    card_id: int,
    active: bool,
    actor: str,
    now: datetime,
    reason: str | None = None,
) -> admin_actions.AdminActionOutcome:
    """Deactivate or reactivate a card; the caller commits."""
    try:
        return await admin_actions.set_card_active(
            await raw_connection(session),
            action_id=action_id,
            card_id=card_id,
            active=active,
            actor=actor,
            now=now,
            reason=reason,
        )
    except admin_actions.CardNotFound as exc:
        raise DomainRefusal(str(exc)) from None


# --- statistics -----------------------------------------------------------------------------


async def merchant_stats(session: AsyncSession, merchant_id: int) -> stats.MerchantStats:
    """A live merchant's figures with a line per store."""
    return await stats.merchant_stats(session, merchant_id)


async def program_stats(session: AsyncSession, program_id: int) -> stats.ProgramStats:
    """A live program's figures."""
    return await stats.program_stats(session, program_id)


async def platform_stats(session: AsyncSession) -> stats.PlatformStats:
    """Every live merchant's figures."""
    return await stats.platform_stats(session)


async def daily_series(
    session: AsyncSession, merchant_id: int, days: int, program_id: int | None = None
) -> tuple[stats.DayPoint, ...]:
    """The last ``days`` days of a merchant (or of its program), oldest first."""
    return await stats.daily_series(session, merchant_id, days, program_id=program_id)


StatsNotFound = stats.StatsNotFound


# --- validation of forms (the provisioning file's schema, one source of truth) ---------------


def check_program(data: dict[str, Any]) -> list[FieldProblem]:
    """What is wrong with a program's settings, by field path (empty when valid)."""
    rewards = data.get("points_rewards") or []
    spec = {
        **data,
        # The catalog's on/off switch is the panel's, not the file's: a reward absent from a
        # provisioning file is deactivated instead.
        "points_rewards": [{k: v for k, v in r.items() if k != "is_active"} for r in rewards],
    }
    problems = _problems(ProgramSpec, spec)
    seen: dict[str, int] = {}
    for i, reward in enumerate(rewards):
        code = reward.get("id")
        if code in seen:
            problems.append(
                FieldProblem(f"points_rewards[{i}].id", f"duplicate reward code {code!r}")
            )
        elif isinstance(code, str):
            seen[code] = i
    if data.get("type") == "stamps" and any(r.get("is_active", True) for r in rewards):
        problems.append(
            FieldProblem(
                "points_rewards", "a stamps program has no points rewards (type points or hybrid)"
            )
        )
    return problems


def check_store(data: dict[str, Any]) -> list[FieldProblem]:
    """What is wrong with a store's code and name."""
    return _problems(StoreSpec, data)


def check_merchant(data: dict[str, Any]) -> list[FieldProblem]:
    """What is wrong with a merchant's code, name, time zone and switches."""
    spec = {
        "code": data.get("code"),
        "name": data.get("name"),
        "timezone": data.get("timezone"),
        "settings": {
            "allow_self_enrollment": data.get("allow_self_enrollment"),
            "allow_cross_location_redemption": data.get("allow_cross_location_redemption"),
        },
    }
    return [
        FieldProblem(p.path.removeprefix("settings."), p.message)
        for p in _problems(MerchantSpec, spec)
    ]


def _problems(model: Any, data: dict[str, Any]) -> list[FieldProblem]:
    try:
        model.model_validate(data)
    except ValidationError as exc:
        return [FieldProblem(e.path, e.message) for e in validation_errors(exc)]
    return []


async def ensure_initial_admin(session: AsyncSession) -> str | None:
    """Create the first platform admin when there is no user; its password, shown once."""
    password = await users.ensure_initial_admin(session)
    await session.commit()
    return password


# --- wallets --------------------------------------------------------------------------------


@dataclass(frozen=True)
class WalletLinks:
    """Where a card's wallet buttons lead; ``None`` for a wallet that is not set up."""

    card_page: str
    apple: str | None
    google: str | None


async def wallet_links(session: AsyncSession, link_token: str) -> WalletLinks:
    """The card page, the ``.pkpass`` route and the Google save link of a card; a wallet's
    link only when that wallet is set up."""
    from admin_ui.card_page import google_save_link
    from domain.wallet_cards import wallet_card_by_link_token
    from wallet import get_wallet_settings

    settings = get_wallet_settings()
    google = None
    card = await wallet_card_by_link_token(session, link_token)
    if card is not None:
        google = google_save_link(card, settings)
    return WalletLinks(
        card_page=f"/card/{link_token}",
        apple=f"/card/{link_token}/pass.pkpass" if settings.apple_enabled else None,
        google=google,
    )
