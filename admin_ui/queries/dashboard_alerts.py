"""The dashboard's alerts, each linking to what fixes it: the merchant's stores whose staff
PINs are locked, its active campaigns near or over their budget, and the dead letters not sent
again that concern it (all of them for a platform admin)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from admin_ui.queries.admins import Principal
from admin_ui.queries.dashboard import Scope

BUDGET_WARNING = 0.8  # a campaign is "near its budget" from 80 % of it used
DEAD_LETTERS_READ = 500  # the newest dead letters the alert looks through


@dataclass(frozen=True)
class LockedStore:
    """A store whose staff PINs are locked after wrong tries."""

    store_id: int
    name: str
    until: datetime


@dataclass(frozen=True)
class BudgetCampaign:
    """An active campaign that used ``BUDGET_WARNING`` or more of its budget."""

    campaign_id: int
    name: str
    awarded: int
    budget: int

    @property
    def used(self) -> float:
        """The share of the budget given out."""
        return self.awarded / self.budget


@dataclass(frozen=True)
class DeadLetters:
    """Messages that could not be read and wait to be sent again (``count`` at most
    ``DEAD_LETTERS_READ``): how many, the newest's time and error."""

    count: int
    latest_at: datetime | None
    latest_error: str | None


@dataclass(frozen=True)
class Alerts:
    """What needs someone's attention."""

    dead_letters: DeadLetters
    locked_stores: tuple[LockedStore, ...]
    campaigns: tuple[BudgetCampaign, ...]

    @property
    def any(self) -> bool:
        """Whether there is anything to show."""
        return bool(self.dead_letters.count or self.locked_stores or self.campaigns)


_LOCKED = """
SELECT id, name, pin_locked_until FROM stores
WHERE merchant_id = :merchant_id AND deleted_at IS NULL AND pin_locked_until > :now
ORDER BY name, id
"""

_BUDGETS = """
SELECT c.id, c.name, c.points_awarded, c.budget_points
FROM campaigns c JOIN loyalty_programs p ON p.id = c.program_id
WHERE p.merchant_id = :merchant_id AND p.deleted_at IS NULL AND c.deleted_at IS NULL
  AND c.status = 'active' AND c.budget_points IS NOT NULL
  AND c.points_awarded >= c.budget_points * CAST(:share AS numeric)
ORDER BY c.points_awarded::numeric / c.budget_points DESC, c.name
"""

_STORE_CODES = "SELECT code FROM stores WHERE merchant_id = :merchant_id AND deleted_at IS NULL"

# The newest first, through the key (the table has no index on ``redriven_at``); which ones
# name the merchant is read from the head of each payload by pattern, in SQL: a payload can
# be megabytes, or JSON nested deep enough to break a parser, and a platform admin, who sees
# every one, needs no payload at all.
_LETTERS = r"""
SELECT occurred_at, error FROM (
    SELECT id, occurred_at, error,
           CASE WHEN :everyone THEN NULL ELSE left(payload, 4096) END AS head
    FROM dead_letters WHERE redriven_at IS NULL
    ORDER BY id DESC LIMIT :limit
) AS newest
WHERE :everyone
   OR substring(head FROM '"store_code"\s*:\s*"([^"\\]*)"') = ANY(:store_codes)
   OR substring(head FROM '"merchant_code"\s*:\s*"([^"\\]*)"') = :merchant_code
ORDER BY id DESC
"""


async def alerts(session: AsyncSession, me: Principal, scope: Scope) -> Alerts:
    """The scope's locked stores and campaigns near their budget, and the dead letters not
    sent again among the newest ``DEAD_LETTERS_READ``: every one for a platform admin, for
    a merchant admin those that name one of the merchant's stores (or the merchant)."""
    params = {"merchant_id": scope.merchant_id, "now": scope.now, "share": BUDGET_WARNING}
    locked = tuple(
        LockedStore(int(r[0]), str(r[1]), r[2])
        for r in await session.execute(text(_LOCKED), params)
    )
    campaigns = tuple(
        BudgetCampaign(int(r[0]), str(r[1]), int(r[2]), int(r[3]))
        for r in await session.execute(text(_BUDGETS), params)
    )
    return Alerts(await _dead_letters(session, me, scope), locked, campaigns)


async def _dead_letters(session: AsyncSession, me: Principal, scope: Scope) -> DeadLetters:
    codes = list(
        (await session.scalars(text(_STORE_CODES), {"merchant_id": scope.merchant_id})).all()
    )
    rows = (
        await session.execute(
            text(_LETTERS),
            {
                "everyone": me.is_platform,
                "limit": DEAD_LETTERS_READ,
                "store_codes": codes,
                "merchant_code": scope.code,
            },
        )
    ).all()
    return DeadLetters(len(rows), rows[0][0] if rows else None, rows[0][1] if rows else None)
