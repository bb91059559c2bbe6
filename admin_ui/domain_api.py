"""The admin panel's one door to the domain's services.

Pages, the terminal and the public pages call these functions (and ``admin_ui.queries`` for
the records they list and edit), never a ``domain`` module directly: a test of the panel's
layout (``tests/admin_ui/test_layout.py``) holds every NiceGUI module of the panel to that.
So a change of a domain module's API is absorbed here, in one place. Every refusal reaches
the pages as a ``DomainRefusal`` whose ``str()`` is a sentence for a person. The domain's
value types a page names (statistics, pairing codes) are named here too.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from admin_ui.problems import DomainRefusal, FieldProblem, FieldsRefused
from admin_ui.runtime import raw_connection
from core.settings import Settings
from domain import (
    campaign_trial,
    catalog,
    lookup,
    mail,
    staff_pins,
    stats,
    terminal_devices,
    users,
)
from domain.card_links import card_page_path, card_page_url, rotate_link
from domain.customers import erasure, export
from domain.customers.finding import CustomerDataError
from domain.engine import admin_actions
from domain.engine.batch import BatchOutcome, Inbound, process_batch
from domain.engine.state import BudgetOvertaken
from domain.models import AdminUser, StaffPin
from domain.rules.admin import AdjustmentError
from domain.rules.enrol import may_enrol
from streams.commands import InputEvent, to_command

_T = TypeVar("_T")


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
    """A new staff PIN, through the catalog (flushed, not committed)."""
    return await _pins(catalog.add_staff(session, store_code, name, pin))


async def change_pin(session: AsyncSession, staff_pin_id: int, pin: str) -> StaffPin:
    """A staff member's new PIN, through the catalog (flushed, not committed)."""
    return await _pins(catalog.change_staff_pin(session, staff_pin_id, pin))


async def remove_pin(session: AsyncSession, staff_pin_id: int) -> StaffPin:
    """Retire a staff PIN, through the catalog (flushed, not committed)."""
    return await _pins(catalog.remove_staff(session, staff_pin_id))


async def unlock_store(session: AsyncSession, store_code: str) -> None:
    """Lift a store's PIN lock (flushed, not committed)."""
    await _pins(staff_pins.unlock_store(session, store_code))


async def _pins(call: Awaitable[_T]) -> _T:
    try:
        return await call
    except (staff_pins.StaffPinError, catalog.CatalogRefusal, ValueError) as exc:
        raise DomainRefusal(str(exc)) from None


# --- cards ----------------------------------------------------------------------------------


async def find_card(session: AsyncSession, text: str, merchant_code: str) -> str | None:
    """The number of a merchant's live card found by what a person typed: card number, QR
    text or email."""
    try:
        card = await lookup.find_card_by_text(session, text, merchant_code=merchant_code)
    except lookup.CardLookupError as exc:
        raise DomainRefusal(str(exc)) from None
    return card.card_number if card is not None else None


async def apply_events(
    session: AsyncSession, events: Sequence[Inbound], now: datetime
) -> BatchOutcome:
    """Input events through the engine, in the session's transaction (the caller commits).

    Applied again once when others spent a campaign's budget meanwhile (``BudgetOvertaken``):
    the second time the campaign is read under its lock."""

    async def once() -> BatchOutcome:
        async with session.begin_nested():
            return await process_batch(await raw_connection(session), events, now)

    try:
        return await once()
    except BudgetOvertaken:
        return await once()


def inbound(
    topic: str, message: InputEvent, staff_pin_id: int | None = None, actor: str | None = None
) -> Inbound:
    """An input message as the engine takes it (its command), with the staff member and the
    actor for the audit."""
    return Inbound(topic, to_command(message), staff_pin_id=staff_pin_id, actor=actor)


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
    except (AdjustmentError, admin_actions.CardNotFound) as exc:
        raise DomainRefusal(str(exc)) from None


async def rotate_card_link(session: AsyncSession, card_id: int) -> str:
    """Give the card a new page link (the old one stops at once); the caller commits."""
    return await rotate_link(session, card_id)


def card_page(link_token: str) -> str:
    """The path of the customer's card page."""
    return card_page_path(link_token)


# --- customers' data (CONTRACT.md 7.6) ------------------------------------------------------

ErasureOutcome = erasure.ErasureOutcome


async def export_customer(session: AsyncSession, customer_id: int) -> bytes:
    """Everything held about the customer, as the JSON file the admin downloads."""
    try:
        return export.to_json(await export.export_customer(session, customer_id)).encode()
    except CustomerDataError as exc:
        raise DomainRefusal(str(exc)) from None


async def erase_customer(
    session: AsyncSession, customer_id: int, *, actor: str, now: datetime
) -> erasure.ErasureOutcome:
    """Erase the customer's personal data and deactivate their cards (``DomainRefusal`` when
    refused); the caller commits. Check first who may, and what the admin typed
    (``queries.customers.erasure_target``)."""
    try:
        return await erasure.erase_customer(session, customer_id, actor=actor, now=now)
    except CustomerDataError as exc:
        raise DomainRefusal(str(exc)) from None


# --- enrolment ------------------------------------------------------------------------------


def self_enrolment_refusal(allowed: bool) -> str | None:
    """Why a customer may not enrol themselves (a reason code), ``None`` when they may."""
    refused = may_enrol("self", allowed)
    return refused.value if refused is not None else None


def mail_configured(settings: Settings) -> bool:
    """Whether the card link can be sent by email at all."""
    return mail.mail_configured(settings)


async def send_card_link(
    settings: Settings, *, to: str, language: str, merchant_name: str, link_token: str
) -> bool:
    """Email the card page's link to its customer, in their language; whether it was sent."""
    link = card_page_url(settings.admin_url, link_token)
    letter = mail.card_link_message(
        mail.CardLinkMail(to, language, merchant_name, link), settings.smtp_sender
    )
    return await mail.send(settings, letter)


# --- terminals ------------------------------------------------------------------------------

PairingCode = terminal_devices.PairingCode
DeviceRow = terminal_devices.DeviceRow


async def paired_device(
    session: AsyncSession, store_code: str, token: str | None
) -> terminal_devices.PairedDevice | None:
    """The live device paired with the store whose token this is, or ``None``."""
    return await terminal_devices.paired_device(session, store_code, token)


async def mark_seen(session: AsyncSession, device_id: int, now: datetime) -> None:
    """Note that the device opened its terminal now (the caller commits)."""
    await terminal_devices.mark_seen(session, device_id, now)


async def pair(session: AsyncSession, store_code: str, code: str, now: datetime) -> str | None:
    """The device token a right pairing code gives (once), or ``None``; the caller commits."""
    return await terminal_devices.pair(session, store_code, code, now)


async def store_devices(
    session: AsyncSession, store_id: int, now: datetime
) -> list[terminal_devices.DeviceRow]:
    """The devices paired, waiting or revoked at a store."""
    return await terminal_devices.store_devices(session, store_id, now)


async def start_pairing(
    session: AsyncSession, store_id: int, name: str, *, by: str, now: datetime
) -> terminal_devices.PairingCode:
    """A one-time code that pairs a device named ``name`` with the store (the caller commits)."""
    return await terminal_devices.start_pairing(session, store_id, name, by=by, now=now)


async def revoke_device(
    session: AsyncSession, store_id: int, device_id: int, *, by: str, now: datetime
) -> None:
    """Revoke one of the store's terminals; it stops at its next action (the caller commits)."""
    if await terminal_devices.device_store_id(session, device_id) != store_id:
        raise DomainRefusal("this device is not a terminal of this store")
    await terminal_devices.revoke(session, device_id, by=by, now=now)


# --- statistics -----------------------------------------------------------------------------

StatsNotFound = stats.StatsNotFound
CardCounts = stats.CardCounts
Activity = stats.Activity
Balances = stats.Balances
DayPoint = stats.DayPoint
ExpiryOutlook = stats.ExpiryOutlook
ExpiryPeriod = stats.ExpiryPeriod
BreakageMonth = stats.BreakageMonth
TierStats = stats.TierStats
PlatformStats = stats.PlatformStats
MerchantStats = stats.MerchantStats
ProgramStats = stats.ProgramStats
TierLine = stats.TierLine
TierDay = stats.TierDay


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


async def expiry_outlook(
    session: AsyncSession, merchant_id: int, program_id: int | None = None
) -> stats.ExpiryOutlook:
    """Points pending and points expiring soon, of a merchant (or of its program)."""
    return await stats.expiry_outlook(session, merchant_id, program_id=program_id)


async def breakage_by_month(
    session: AsyncSession, merchant_id: int, program_id: int | None = None
) -> tuple[stats.BreakageMonth, ...]:
    """Points expired over points issued, per month of the last twelve."""
    return await stats.breakage_by_month(session, merchant_id, program_id=program_id)


async def tier_stats(
    session: AsyncSession, merchant_id: int, program_id: int | None = None
) -> stats.TierStats:
    """Members per tier over the last 90 days and the points each tier's multiplier added,
    of a merchant's program (no tiers: nothing)."""
    return await stats.tier_stats(session, merchant_id, program_id=program_id)


# --- validation of forms (the catalog's, the very one of ``loyalty provision``) -------------


def check_program(data: dict[str, Any]) -> list[FieldProblem]:
    """What is wrong with a program's settings and catalog, by field path (empty when valid)."""
    return catalog.check_program(data)


def check_store(data: dict[str, Any]) -> list[FieldProblem]:
    """What is wrong with a store's code and name."""
    return catalog.check_store(data)


def check_merchant(data: dict[str, Any]) -> list[FieldProblem]:
    """What is wrong with a merchant's code, name, time zone and switches."""
    return catalog.check_merchant(data)


def check_campaign(data: Mapping[str, Any]) -> list[FieldProblem]:
    """What is wrong with a campaign's fields, by field name (empty when valid)."""
    return catalog.check_campaign(data)


# --- campaigns tried on past traffic --------------------------------------------------------

TrialReport = campaign_trial.TrialReport
CampaignFigures = campaign_trial.CampaignFigures


async def try_campaign(
    session: AsyncSession,
    merchant_code: str,
    data: Mapping[str, Any],
    start: datetime,
    end: datetime,
    progress: Callable[[int, int], None] | None = None,
) -> campaign_trial.TrialReport:
    """The merchant's recorded purchases of [start, end) earned with and without the
    campaign a form holds (``data``, saved or not; it replaces the saved campaign of its id),
    as ``loyalty campaign simulate`` does. ``FieldsRefused`` when ``data`` is not a valid
    campaign. The session's transaction is read-only and rolled back: nothing is written."""
    try:
        row = catalog.campaign_values(data)
    except catalog.InvalidFields as exc:
        raise FieldsRefused(exc.errors) from None
    connection = await session.connection()
    # The first statement of the transaction: from here on PostgreSQL refuses any write,
    # whatever the trial's code would do.
    await connection.exec_driver_sql("SET TRANSACTION READ ONLY")
    driver = await raw_connection(session)
    # A session's driver connection is a plain asyncpg connection, never a pool's proxy.
    assert isinstance(driver, asyncpg.Connection)
    try:
        return await campaign_trial.try_campaigns(
            driver,
            merchant_code,
            campaign_trial.tried_terms([row]),
            start,
            end,
            progress,
        )
    except campaign_trial.TrialError as exc:
        raise DomainRefusal(str(exc)) from None
    finally:
        await session.rollback()


# --- users ----------------------------------------------------------------------------------


async def ensure_initial_admin(session: AsyncSession) -> str | None:
    """Create the first platform admin when there is no user; its password, shown once."""
    password = await users.ensure_initial_admin(session)
    await session.commit()
    return password
