"""The dashboard's reads (issue 18, item 1): one merchant's day and month at a glance.

Every figure comes from the summary tables or from reads of the ledger that its index
``(merchant_id, occurred_at)`` bounds to the days shown (two months at most): the cost grows
with the merchant's entries of those days, not with the ledger's size.

- members, stamps and points issued and redeemed, and the liability are the finance report's
  (``domain.finance``, the same definitions as the finance page), for today, yesterday, this
  month and the same days of last month. This month is asked for as the whole month: nothing
  has happened after today, and whole months are read from the monthly summaries;
- visits (purchases with a card that earned stamps or points: a purchase that earns nothing
  writes no ledger entry) are counted from the ledger, per merchant-local day, over the days
  shown only (the last 30 and the same days of last month, at most two months);
- the chart's stamps and points per day are ``domain.stats.daily_series``'s (daily totals),
  its new members the cards' daily counts;
- top rewards read this month's ledger, recent activity the merchant's newest entries (a
  backward walk of the index that stops after a few rows); the alerts are
  ``admin_ui.queries.dashboard_alerts``'s.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from admin_ui.queries.admins import Principal
from admin_ui.queries.finance import merchants as merchants
from domain.finance import FinanceReport, finance_report
from domain.stats import daily_series

CHART_DAYS = 30
_DAY = timedelta(days=1)


# --------------------------------------------------------------------------------------------
# Whose dashboard


@dataclass(frozen=True)
class Scope:
    """The merchant a dashboard shows, on its own clock at ``now``."""

    merchant_id: int
    code: str
    name: str
    timezone: str
    currency: str
    now: datetime
    today: date
    gives_stamps: bool
    gives_points: bool
    has_data: bool
    """Whether the merchant has any card or ledger entry at all (else: the empty state)."""


_SCOPE = """
SELECT m.code, m.name, m.timezone, p.type, p.currency,
       EXISTS (SELECT 1 FROM card_daily_counts d WHERE d.merchant_id = m.id)
       OR EXISTS (SELECT 1 FROM ledger_daily_totals d WHERE d.merchant_id = m.id)
FROM merchants m
LEFT JOIN loyalty_programs p ON p.merchant_id = m.id AND p.deleted_at IS NULL
WHERE m.id = :merchant_id AND m.deleted_at IS NULL
"""


async def scope(
    session: AsyncSession, me: Principal, merchant_id: int, *, at: datetime | None = None
) -> Scope | None:
    """The live merchant's scope, or ``None`` when it is gone or not this admin's (the page
    answers alike: not found)."""
    if not me.sees(merchant_id):
        return None
    row = (await session.execute(text(_SCOPE), {"merchant_id": merchant_id})).first()
    if row is None:
        return None
    now = at or datetime.now(UTC)
    kind = str(row[3]) if row[3] is not None else None
    return Scope(
        merchant_id=merchant_id,
        code=str(row[0]),
        name=str(row[1]),
        timezone=str(row[2]),
        currency=str(row[4] or "EUR"),
        now=now,
        today=now.astimezone(ZoneInfo(str(row[2]))).date(),
        gives_stamps=kind in ("stamps", "hybrid"),
        gives_points=kind in ("points", "hybrid"),
        has_data=bool(row[5]),
    )


# --------------------------------------------------------------------------------------------
# Figures: today and this month against the period before


@dataclass(frozen=True)
class Figures:
    """One period's figures; ``liability_cents`` is at the period's end (now for the current
    ones), as the finance report values it."""

    first: date
    last: date
    new_members: int
    active_cards: int
    visits: int
    stamps_issued: int
    stamps_redeemed: int
    points_issued: int
    points_redeemed: int
    liability_cents: int


@dataclass(frozen=True)
class Comparison:
    """A period so far and the one it is compared with."""

    current: Figures
    previous: Figures


@dataclass(frozen=True)
class DayLine:
    """One merchant-local day of the chart."""

    day: date
    visits: int
    new_members: int
    stamps_issued: int
    stamps_redeemed: int
    points_issued: int
    points_redeemed: int


@dataclass(frozen=True)
class Overview:
    """Today against yesterday, this month against its days of last month, the chart."""

    day: Comparison
    month: Comparison
    days: tuple[DayLine, ...]


def month_periods(today: date) -> tuple[tuple[date, date], tuple[date, date]]:
    """This month so far, and the same days of last month (its days 1 .. today's day of the
    month, fewer when last month is shorter: 31 March compares with 1 .. 28 February)."""
    first = today.replace(day=1)
    previous_first = (first - _DAY).replace(day=1)
    previous_last = min(previous_first + timedelta(days=today.day - 1), first - _DAY)
    return (first, today), (previous_first, previous_last)


async def overview(sessions: async_sessionmaker[AsyncSession], scope: Scope) -> Overview:
    """The dashboard's figures and chart (see the module's docstring for where each comes
    from), in two sessions at once: the ledger's reads beside the finance reports."""
    today, yesterday = scope.today, scope.today - _DAY
    (month_first, _), (previous_first, previous_last) = month_periods(today)
    month_last = (month_first + timedelta(days=32)).replace(day=1) - _DAY
    chart_first = today - timedelta(days=CHART_DAYS - 1)
    # The days asked of the finance report, and the days its figures are shown for: this
    # month is asked whole, so the monthly summaries count its active cards (nothing happened
    # after today), where a part of a month would read its ledger.
    periods = [
        ((today, today), (today, today)),
        ((yesterday, yesterday), (yesterday, yesterday)),
        ((month_first, month_last), (month_first, today)),
        ((previous_first, previous_last), (previous_first, previous_last)),
    ]

    async def ledger() -> tuple[dict[date, int], tuple[DayLine, ...]]:
        async with sessions() as session:
            # This month's days, the same days of last month and the chart's 30 days, which
            # start before the first of last month on 1 March (January 31st).
            visits = await _visits(session, scope, min(previous_first, chart_first), today)
            return visits, await _days(session, scope, chart_first, visits)

    async def reports() -> list[FinanceReport]:
        async with sessions() as session:
            return [await finance_report(session, scope.code, *asked) for asked, _ in periods]

    (visits, days), found = await asyncio.gather(ledger(), reports())
    figures = [_figures(r, *shown, visits) for r, (_, shown) in zip(found, periods, strict=True)]
    return Overview(Comparison(*figures[:2]), Comparison(*figures[2:]), days)


def _figures(report: FinanceReport, first: date, last: date, visits: dict[date, int]) -> Figures:
    return Figures(
        first=first,
        last=last,
        new_members=report.new_members,
        active_cards=report.active_members,
        visits=sum(n for day, n in visits.items() if first <= day <= last),
        stamps_issued=report.issued.stamps,
        stamps_redeemed=report.redeemed.stamps,
        points_issued=report.issued.points,
        points_redeemed=report.redeemed.points,
        liability_cents=report.closing.cents,
    )


_VISITS = """
SELECT (l.occurred_at AT TIME ZONE :zone)::date, count(DISTINCT l.order_reference)
FROM ledger_entries l
WHERE l.merchant_id = :merchant_id AND l.occurred_at >= :start AND l.occurred_at < :stop
  AND l.entry_type IN ('stamp_earned', 'points_earned') AND l.order_reference IS NOT NULL
GROUP BY 1
"""


async def _visits(session: AsyncSession, scope: Scope, first: date, last: date) -> dict[date, int]:
    """Purchases per local day, ``first`` to ``last`` (a range of the ledger's index; a
    purchase's entries share its time, so its day, and order references are unique per
    merchant)."""
    rows = await session.execute(
        text(_VISITS),
        {
            "merchant_id": scope.merchant_id,
            "zone": scope.timezone,
            "start": _midnight(first, scope),
            "stop": _midnight(last + _DAY, scope),
        },
    )
    return {r[0]: int(r[1]) for r in rows}


def _midnight(day: date, scope: Scope) -> datetime:
    return datetime.combine(day, time(0), ZoneInfo(scope.timezone))


# Cards created per local day, deleted ones too (as the finance report's new members).
_CREATED = """
SELECT day, sum(cards_created) FROM card_daily_counts
WHERE merchant_id = :merchant_id AND day >= :first AND day <= :last
GROUP BY day
UNION ALL
SELECT (created_at AT TIME ZONE :zone)::date, count(*) FROM loyalty_cards
WHERE merchant_id = :merchant_id AND deleted_at IS NOT NULL
  AND created_at >= :start AND created_at < :stop
GROUP BY 1
"""


async def _days(
    session: AsyncSession, scope: Scope, first: date, visits: dict[date, int]
) -> tuple[DayLine, ...]:
    series = await daily_series(session, scope.merchant_id, CHART_DAYS, at=scope.now)
    rows = await session.execute(
        text(_CREATED),
        {
            "merchant_id": scope.merchant_id,
            "zone": scope.timezone,
            "first": first,
            "last": scope.today,
            "start": _midnight(first, scope),
            "stop": _midnight(scope.today + _DAY, scope),
        },
    )
    created: dict[date, int] = defaultdict(int)
    for day, n in rows:
        created[day] += int(n or 0)
    return tuple(
        DayLine(
            *(p.day, visits.get(p.day, 0), created.get(p.day, 0)),
            *(p.stamps_issued, p.stamps_redeemed, p.points_issued, p.points_redeemed),
        )
        for p in series
    )


# --------------------------------------------------------------------------------------------
# Top rewards and recent activity


@dataclass(frozen=True)
class TopReward:
    """A reward and how often it was redeemed this month."""

    name: str
    redeemed: int


_TOP = """
SELECT l.entry_type, l.reward_code, l.reward_description, count(*)
FROM ledger_entries l
WHERE l.merchant_id = :merchant_id AND l.occurred_at >= :start AND l.occurred_at < :stop
  AND l.entry_type IN ('stamp_redeemed', 'points_redeemed')
GROUP BY 1, 2, 3
ORDER BY count(*) DESC, 3, 2
LIMIT :limit
"""


async def top_rewards(session: AsyncSession, scope: Scope, limit: int = 5) -> list[TopReward]:
    """The rewards redeemed most this month (the merchant's month so far)."""
    first = scope.today.replace(day=1)
    rows = await session.execute(
        text(_TOP),
        {
            "merchant_id": scope.merchant_id,
            "start": _midnight(first, scope),
            "stop": _midnight(scope.today + _DAY, scope),
            "limit": limit,
        },
    )
    return [TopReward(_reward_name(r[0], r[1], r[2]), int(r[3])) for r in rows]


def _reward_name(entry_type: str, code: str | None, description: str | None) -> str:
    # A café's stamp card and its points catalogue may both give a "Free coffee": say which.
    if entry_type == "stamp_redeemed":
        return f"{description} (stamp card)" if description else "Full stamp card"
    return f"{description or code or 'Reward'} (points)"


@dataclass(frozen=True)
class Activity:
    """One event of the merchant, as the recent activity lists it: its ledger entries (a
    hybrid purchase makes two, a stamp's and the points') taken together."""

    occurred_at: datetime
    kinds: tuple[str, ...]
    stamps_delta: int
    points_delta: int
    pending_delta: int
    reward: str | None
    card_id: int
    customer: str
    store: str | None


# The newest entries first: the index read backwards, stopped after :limit rows. The customer
# as the cards list names them: email, else their reference, else their name.
_RECENT = """
SELECT l.occurred_at, l.entry_type, l.stamps_delta, l.points_delta, l.pending_delta,
       coalesce(l.reward_description, l.reward_code) AS reward, l.card_id, s.name AS store,
       coalesce(u.email, u.customer_ref, nullif(concat_ws(' ', u.first_name, u.last_name), ''),
                'a customer') AS customer,
       coalesce(l.source_event_id::text, l.id::text) AS event
FROM (
    SELECT * FROM ledger_entries WHERE merchant_id = :merchant_id
    ORDER BY occurred_at DESC, id DESC LIMIT :limit
) l
LEFT JOIN loyalty_cards c ON c.id = l.card_id
LEFT JOIN customers u ON u.id = c.customer_id
LEFT JOIN stores s ON s.id = l.store_id
ORDER BY l.occurred_at DESC, l.id DESC
"""


async def recent_activity(session: AsyncSession, scope: Scope, limit: int = 8) -> list[Activity]:
    """The merchant's ``limit`` newest events, from its ``3 * limit`` newest entries."""
    rows = await session.execute(
        text(_RECENT), {"merchant_id": scope.merchant_id, "limit": 3 * limit}
    )
    events: dict[tuple[str, int], list[Any]] = {}
    for r in rows:
        key = (r.event, r.card_id)
        if key not in events and len(events) == limit:
            break
        events.setdefault(key, []).append(r)
    return [
        Activity(
            occurred_at=e[0].occurred_at,
            kinds=tuple(str(r.entry_type) for r in e),
            stamps_delta=sum(int(r.stamps_delta) for r in e),
            points_delta=sum(int(r.points_delta) for r in e),
            pending_delta=sum(int(r.pending_delta or 0) for r in e),
            reward=next((r.reward for r in e if r.reward), None),
            card_id=int(e[0].card_id),
            customer=str(e[0].customer),
            store=e[0].store,
        )
        for e in events.values()
    ]
