"""What the audit log page shows: the admin audit trail (``domain.audit_trail``) an admin may
see, filtered, one page at a time, newest first, each change as a compact diff.

A merchant admin sees the rows of their own merchant only, whatever the filters say (a
``merchant_id`` in the URL included); a platform admin sees every row, and may pick a merchant.
Days of the date filters are the viewer's: the merchant's time zone for a merchant admin, UTC
for a platform admin; each row comes with its merchant's time zone, the clock its time is shown
on. The trail is read here, never written: there is no edit path.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Text, cast, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from admin_ui.queries.admins import Principal
from admin_ui.queries.common import ALL, PageRequest, Rows, like, page, scoped
from domain.audit_trail import ACTIONS, ENTITIES
from domain.models import AdminAuditLog, Merchant

__all__ = [
    "ACTIONS",
    "ENTITIES",
    "AuditEntry",
    "AuditFilters",
    "Change",
    "changes",
    "entries",
    "viewer_zone",
]

UTC_ZONE = "UTC"
_SHOWN = 120


@dataclass(frozen=True)
class AuditFilters:
    """What the page's filters ask for; empty means any. ``start`` and ``end`` are days (the
    end included) on the viewer's clock."""

    actor: str = ""
    action: str = ""
    entity: str = ""
    entity_id: str = ""
    merchant_id: int | None = None
    start: date | None = None
    end: date | None = None


@dataclass(frozen=True)
class Change:
    """One field of a change: its value before and after in a few characters (``None``: the
    row had no such value, as before a creation), and the values themselves as the trail
    keeps them (``before``, ``after``), for the page to put into words."""

    field: str
    old: str | None
    new: str | None
    # ``dataclasses.field``: ``field`` is this class's first field.
    before: object = dataclasses.field(default=None, compare=False, repr=False)
    after: object = dataclasses.field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class AuditEntry:
    """A row of the trail as the page lists it."""

    id: int
    at: datetime
    actor: str
    source: str
    action: str
    entity: str
    entity_id: str | None
    merchant_id: int | None
    merchant_code: str | None
    summary: str
    changes: tuple[Change, ...]
    merchant_timezone: str | None = None
    """The clock of the row's merchant (``None``: a change of no merchant's)."""


async def viewer_zone(session: AsyncSession, me: Principal) -> str:
    """The time zone the admin reads times in: their merchant's, or UTC for a platform admin."""
    if me.is_platform or me.merchant_id is None:
        return UTC_ZONE
    zone = await session.scalar(
        select(Merchant.timezone).where(Merchant.id == me.merchant_id).execution_options(**ALL)
    )
    return zone or UTC_ZONE


def _start_of(day: date, zone: str) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(zone)).astimezone(UTC)


async def entries(
    session: AsyncSession,
    me: Principal,
    filters: AuditFilters,
    request: PageRequest,
    zone: str = UTC_ZONE,
) -> Rows[AuditEntry]:
    """One page of the rows the admin may see that match ``filters`` and the search text,
    newest first. ``zone``: the clock of the date filters."""
    log = AdminAuditLog
    query: Any = select(log, Merchant.code, Merchant.timezone).outerjoin(
        Merchant, Merchant.id == log.merchant_id
    )
    # The scope first: for a merchant admin nothing below can widen it.
    query = scoped(query, log.merchant_id, me)
    if me.is_platform and filters.merchant_id is not None:
        query = query.where(log.merchant_id == filters.merchant_id)
    if filters.actor.strip():
        query = query.where(log.actor.ilike(like(filters.actor.strip())))
    if filters.action:
        query = query.where(log.action == filters.action)
    if filters.entity:
        query = query.where(log.entity == filters.entity)
    if filters.entity_id.strip():
        query = query.where(log.entity_id == filters.entity_id.strip())
    if filters.start is not None:
        query = query.where(log.at >= _start_of(filters.start, zone))
    if filters.end is not None:
        query = query.where(log.at < _start_of(filters.end + timedelta(days=1), zone))
    if request.search:
        pattern = like(request.search)
        # The values are searched as the trail keeps them: masked.
        query = query.where(
            or_(
                log.summary.ilike(pattern),
                log.actor.ilike(pattern),
                log.entity_id.ilike(pattern),
                cast(log.before, Text).ilike(pattern),
                cast(log.after, Text).ilike(pattern),
            )
        )
    rows, total = await page(session, query, request, log.at.desc(), log.id.desc())
    return Rows([_entry(row[0], row[1], row[2]) for row in rows], total)


def _entry(row: AdminAuditLog, merchant_code: str | None, zone: str | None) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        at=row.at,
        actor=row.actor,
        source=row.source,
        action=row.action,
        entity=row.entity,
        entity_id=row.entity_id,
        merchant_id=row.merchant_id,
        merchant_code=merchant_code,
        summary=row.summary,
        changes=changes(row.before, row.after),
        merchant_timezone=zone,
    )


def _shown(value: object) -> str:
    """A stored value in a few characters: text as it is, the rest as compact JSON."""
    if value is None:
        return "—"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def changes(
    before: Mapping[str, object] | None, after: Mapping[str, object] | None
) -> tuple[Change, ...]:
    """The fields of a change in alphabetical order (JSONB keeps no order of its own), each
    with its value before and after (``None`` where the side has no such field)."""
    old = before or {}
    new = after or {}
    fields = sorted(set(old) | set(new))
    return tuple(
        Change(
            key,
            _shown(old[key]) if key in old else None,
            _shown(new[key]) if key in new else None,
            old.get(key),
            new.get(key),
        )
        for key in fields
    )
