"""Statistics of a program, a merchant (with its stores) and the platform, and their history.

Figures come from two summary tables kept in the transaction of every write, by database
triggers (migration ``statistics rollups``) or, for the engine's own batches, by the engine
(``domain.engine.rollups``): ``ledger_daily_totals`` (the ledger summed per
merchant, program, store and merchant-local day) and ``card_daily_counts`` (live cards counted by
the day they were created and the day of their last activity). A merchant's statistics read a
few thousand summary rows whatever the size of its ledger, in a fixed number of queries
whatever its number of stores.

Definitions:

- cards: ``total`` live (not deleted) cards, ``active`` those with ``is_active``, ``new_this_month``
  created since the first of the month, ``active_last_30_days`` whose ``last_activity_at`` (set by
  the engine on earns, redemptions, voids and adjustments) falls in the last 30 days; months and
  days are the merchant's, today included. Per store, a card counts at the store it was issued.
  The 30-day count is exact for an ``at`` on or after the cards' latest activity, i.e. for the
  statistics of today: to keep the engine's writes cheap, the summary forgets a card's previous
  activity day only when it lies within 30 days of the new one (see the migration).
- activity: ledger sums. ``stamps_issued`` = stamps earned; ``points_issued`` = points earned plus
  welcome bonuses; redeemed, voided and expired are positive; adjustments are net (signed);
  ``ledger_events_last_30_days`` counts every ledger entry. Per store, an entry counts at the store
  where it happened (no store: expiry, admin adjustments). History is kept for deleted cards.
- balances: what the live cards hold (the ledger's net minus the balances of deleted cards).
  Liability values stamps pro rata (``stamps_reward_value_cents / stamps_target`` each) and
  points at ``point_value_cents``, with each program's current values.
- ``balances_as_of`` and ``daily_series`` rebuild balances at past times from the ledger (the
  summary for whole days, the raw ledger for the part of a day), for the cards live today.
- ``expiry_outlook`` (CONTRACT.md 7.2, 7.3): points pending (earned, not yet spendable) of the
  live cards, and the points due to expire in the next 30 and 90 days, per week and month: the
  lots with an expiry date of their own in the window (their partial index), and the points kept
  by inactivity of cards whose idle limit (``last_activity_at + points_expiration_days``) falls
  in it (that part reads the merchant's cards: no index on their activity, which every event
  changes). Points already due, the daily run not yet passed, are not "expiring".
- ``breakage_by_month``: per merchant-local month, points expired over points issued (earned
  plus welcome bonuses) that same month, from the ledger's daily totals.
- ``tier_stats`` (CONTRACT.md 7.4), for a program with tiers (and points): members per tier at
  the end of each of the last 90 merchant-local days, and the points each tier's multiplier
  added (``purchases.tier_points`` by ``purchases.tier``) over those days and in all. A card's
  tier on a day is the ``to_tier`` of its last change (``tier_changes``) on or before that day;
  before its first change it is in the first tier. Cards count from the day they were created,
  the cards live today (as for balances); tiers the program no longer has are left out.

Every function takes ``at`` ("now", default the wall clock) so tests and reports fix time.

Long (about 1,150 lines) because the three levels (program, merchant, platform) read the same
rollups with the same helpers; splitting them would split those helpers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

ACTIVITY_WINDOW_DAYS = 30


class StatsNotFound(LookupError):
    """The merchant or program does not exist, or is deleted."""


# --------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class CardCounts:
    """How many live cards, and how many of them active, new, recently used."""

    total: int = 0
    active: int = 0
    new_this_month: int = 0
    active_last_30_days: int = 0


@dataclass(frozen=True)
class Activity:
    """What the ledger recorded (all time, except the 30-day count of entries)."""

    ledger_events_last_30_days: int = 0
    stamps_issued: int = 0
    stamps_redeemed: int = 0
    stamps_voided: int = 0
    stamps_adjusted: int = 0
    points_earned: int = 0
    points_welcome: int = 0
    points_issued: int = 0
    points_redeemed: int = 0
    points_voided: int = 0
    points_expired: int = 0
    points_adjusted: int = 0


@dataclass(frozen=True)
class Balances:
    """Stamps and points held by cards, and what they are worth in cents."""

    stamps: int = 0
    points: int = 0
    stamps_liability_cents: Decimal = Decimal(0)
    points_liability_cents: Decimal = Decimal(0)

    @property
    def liability_cents(self) -> int:
        """The total liability, rounded to a whole cent (half up)."""
        total = self.stamps_liability_cents + self.points_liability_cents
        return int(total.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class Averages:
    """Per live card: the balances held, and what was issued."""

    stamps_per_card: float = 0.0
    points_per_card: float = 0.0
    stamps_issued_per_card: float = 0.0
    points_issued_per_card: float = 0.0


@dataclass(frozen=True)
class StoreStats:
    """One store's line of a merchant's breakdown (``store_id`` None: entries without a store)."""

    store_id: int | None
    code: str | None
    name: str | None
    deleted: bool
    cards: CardCounts
    activity: Activity


@dataclass(frozen=True)
class ProgramStats:
    """A program's figures at ``at`` (``today`` is the merchant's local date then)."""

    program_id: int
    merchant_id: int
    at: datetime
    today: date
    cards: CardCounts
    activity: Activity
    balances: Balances
    averages: Averages


@dataclass(frozen=True)
class MerchantStats:
    """A merchant's figures at ``at``, with a line per store (live stores, and any other store
    or no store the data names)."""

    merchant_id: int
    merchant_code: str
    merchant_name: str
    at: datetime
    today: date
    cards: CardCounts
    activity: Activity
    balances: Balances
    averages: Averages
    stores: tuple[StoreStats, ...]


@dataclass(frozen=True)
class MerchantLine:
    """One merchant's line of the platform's breakdown."""

    merchant_id: int
    merchant_code: str
    merchant_name: str
    cards: CardCounts
    activity: Activity
    balances: Balances


@dataclass(frozen=True)
class PlatformStats:
    """Every live merchant together, and a line per merchant."""

    at: datetime
    merchants: int
    stores: int
    cards: CardCounts
    activity: Activity
    balances: Balances
    averages: Averages
    by_merchant: tuple[MerchantLine, ...]


@dataclass(frozen=True)
class BalancesAsOf:
    """The balances of a merchant's (or a program's) cards at a past instant."""

    merchant_id: int
    program_id: int | None
    as_of: datetime
    balances: Balances


@dataclass(frozen=True)
class DayPoint:
    """One merchant-local day of a chart: what happened that day, what was held at its end."""

    day: date
    ledger_events: int
    stamps_issued: int
    stamps_redeemed: int
    points_issued: int
    points_redeemed: int
    balances: Balances


@dataclass(frozen=True)
class ExpiryPeriod:
    """Points due to expire in one period of the outlook: a week (from its Monday) or a
    month (from its first day), merchant-local."""

    start: date
    points: int


@dataclass(frozen=True)
class ExpiryOutlook:
    """Points pending now and points due to expire soon, of a merchant (or one program).

    ``weeks`` and ``months`` cover the next ``EXPIRY_HORIZON_DAYS`` days, every period
    present (zero when nothing expires), and add up to ``expiring_90_days``. ``points`` is
    false when no live program in scope gives points (nothing to show).
    """

    merchant_id: int
    program_id: int | None
    at: datetime
    today: date
    points: bool
    points_pending: int
    expiring_30_days: int
    expiring_90_days: int
    weeks: tuple[ExpiryPeriod, ...]
    months: tuple[ExpiryPeriod, ...]


@dataclass(frozen=True)
class BreakageMonth:
    """One merchant-local month: points issued and expired in it, and their ratio."""

    month: date
    points_issued: int
    points_expired: int

    @property
    def breakage(self) -> float | None:
        """Points expired over points issued that month; None when none were issued."""
        return self.points_expired / self.points_issued if self.points_issued else None


@dataclass(frozen=True)
class TierLine:
    """One tier of a program: its members today and the points its multiplier added."""

    code: str
    name: str
    members: int
    points_added_period: int
    points_added: int


@dataclass(frozen=True)
class TierDay:
    """The members of each tier at the end of one merchant-local day, in the tiers' order."""

    day: date
    members: tuple[int, ...]


@dataclass(frozen=True)
class TierStats:
    """A program's tiers over the last ``TIER_DAYS`` days. ``tiers`` is empty (and ``days``
    too) when the program has no tiers, or gives no points: nothing to show."""

    merchant_id: int
    program_id: int | None
    at: datetime
    today: date
    tiers: tuple[TierLine, ...]
    days: tuple[TierDay, ...]


# --------------------------------------------------------------------------------------------
# Public functions


async def merchant_stats(
    session: AsyncSession, merchant_id: int, *, at: datetime | None = None
) -> MerchantStats:
    """A live merchant's figures with a per-store breakdown: five queries, whatever the stores."""
    now = _now(at)
    merchant = await _merchant(session, merchant_id, now)
    scope = _Scope(merchant_id=merchant_id)
    cards = await _card_counts(session, scope, now, by="store")
    activity = await _activity(session, scope, now, by="store")
    balances = (await _balances(session, scope, now)).get(merchant_id, Balances())
    total_cards = _sum_cards(cards.values())
    total_activity = _sum_activity(activity.values())
    stores = await _stores(session, merchant_id)
    # Live stores, and deleted ones whose cards or entries still count; "no store" (0) last.
    shown = {s for s, (_, _, deleted) in stores.items() if not deleted} | set(cards) | set(activity)
    lines = tuple(
        StoreStats(
            store_id=store_id or None,
            code=stores[store_id][0] if store_id in stores else None,
            name=stores[store_id][1] if store_id in stores else None,
            deleted=stores[store_id][2] if store_id in stores else False,
            cards=cards.get(store_id, CardCounts()),
            activity=activity.get(store_id, Activity()),
        )
        for store_id in sorted(shown, key=lambda s: (s == 0, stores.get(s, ("", "", False))[0], s))
    )
    return MerchantStats(
        merchant_id=merchant_id,
        merchant_code=merchant["code"],
        merchant_name=merchant["name"],
        at=now,
        today=merchant["today"],
        cards=total_cards,
        activity=total_activity,
        balances=balances,
        averages=_averages(total_cards, total_activity, balances),
        stores=lines,
    )


async def program_stats(
    session: AsyncSession, program_id: int, *, at: datetime | None = None
) -> ProgramStats:
    """A live program's figures: its cards, their ledger, balances and liability."""
    now = _now(at)
    row = (
        await session.execute(
            text(
                "SELECT p.merchant_id FROM loyalty_programs p"
                " JOIN merchants m ON m.id = p.merchant_id WHERE p.id = :program_id"
                " AND p.deleted_at IS NULL AND m.deleted_at IS NULL"
            ),
            {"program_id": program_id},
        )
    ).first()
    if row is None:
        raise StatsNotFound(f"no live program with id {program_id}")
    merchant_id = int(row[0])
    merchant = await _merchant(session, merchant_id, now)
    scope = _Scope(merchant_id=merchant_id, program_id=program_id)
    cards = _sum_cards((await _card_counts(session, scope, now, by=None)).values())
    activity = _sum_activity((await _activity(session, scope, now, by=None)).values())
    balances = (await _balances(session, scope, now)).get(merchant_id, Balances())
    return ProgramStats(
        program_id=program_id,
        merchant_id=merchant_id,
        at=now,
        today=merchant["today"],
        cards=cards,
        activity=activity,
        balances=balances,
        averages=_averages(cards, activity, balances),
    )


async def platform_stats(session: AsyncSession, *, at: datetime | None = None) -> PlatformStats:
    """All live merchants: totals and a line per merchant (windows in each one's time zone)."""
    now = _now(at)
    scope = _Scope()
    cards = await _card_counts(session, scope, now, by="merchant")
    activity = await _activity(session, scope, now, by="merchant")
    balances = await _balances(session, scope, now)
    rows = (
        await session.execute(
            text(
                "SELECT m.id, m.code, m.name,"
                " (SELECT count(*) FROM stores s WHERE s.merchant_id = m.id"
                "  AND s.deleted_at IS NULL)"
                " FROM merchants m WHERE m.deleted_at IS NULL ORDER BY m.code"
            )
        )
    ).all()
    lines = tuple(
        MerchantLine(
            merchant_id=r[0],
            merchant_code=r[1],
            merchant_name=r[2],
            cards=cards.get(r[0], CardCounts()),
            activity=activity.get(r[0], Activity()),
            balances=balances.get(r[0], Balances()),
        )
        for r in rows
    )
    total_cards = _sum_cards(line.cards for line in lines)
    total_activity = _sum_activity(line.activity for line in lines)
    total_balances = _sum_balances(line.balances for line in lines)
    return PlatformStats(
        at=now,
        merchants=len(lines),
        stores=sum(int(r[3]) for r in rows),
        cards=total_cards,
        activity=total_activity,
        balances=total_balances,
        averages=_averages(total_cards, total_activity, total_balances),
        by_merchant=lines,
    )


async def balances_as_of(
    session: AsyncSession,
    merchant_id: int,
    as_of: datetime | date,
    *,
    program_id: int | None = None,
) -> BalancesAsOf:
    """The balances and liability of the merchant's live cards at a past time, from the ledger.

    A ``date`` means the end of that day in the merchant's time zone; a ``datetime`` counts the
    entries that occurred at or before it. Deleted cards are left out, as in ``merchant_stats``,
    so ``balances_as_of(now)`` equals today's balances.
    """
    merchant = await _merchant(session, merchant_id, _now(None))
    zone = ZoneInfo(merchant["timezone"])
    if isinstance(as_of, datetime):
        if as_of.tzinfo is None:
            raise ValueError("balances_as_of needs an aware datetime or a date")
        instant = as_of
        local_day = as_of.astimezone(zone).date()
        whole_days_before = local_day
        partial = (datetime.combine(local_day, time(0), zone), as_of)
    else:
        whole_days_before = as_of + timedelta(days=1)
        instant = datetime.combine(whole_days_before, time(0), zone) - timedelta(microseconds=1)
        partial = None
    program_filter = "AND d.program_id = :program_id" if program_id is not None else ""
    card_filter = "AND c.program_id = :program_id" if program_id is not None else ""
    parts = [
        f"""SELECT d.program_id, sum(d.stamps_net) AS s, sum(d.points_net) AS p
            FROM ledger_daily_totals d
            WHERE d.merchant_id = :merchant_id AND d.day < :until {program_filter}
            GROUP BY d.program_id""",  # noqa: S608 - fragments are this module's constants
        f"""SELECT c.program_id, -sum(l.stamps_delta), -sum(l.points_delta)
            FROM loyalty_cards c JOIN ledger_entries l ON l.card_id = c.id
            WHERE c.merchant_id = :merchant_id AND c.deleted_at IS NOT NULL
              AND l.occurred_at <= :instant {card_filter}
            GROUP BY c.program_id""",  # noqa: S608 - fragments are this module's constants
    ]
    params: dict[str, Any] = {
        "merchant_id": merchant_id,
        "until": whole_days_before,
        "instant": instant,
        "program_id": program_id,
    }
    if partial is not None:
        # The program of an entry as the summary's trigger takes it: the merchant's live one
        # (no card lookup per entry of the day).
        live_filter = "AND p.id = :program_id" if program_id is not None else ""
        parts.append(
            f"""SELECT p.id, sum(l.stamps_delta), sum(l.points_delta)
                FROM ledger_entries l
                JOIN loyalty_programs p ON p.merchant_id = l.merchant_id AND p.deleted_at IS NULL
                WHERE l.merchant_id = :merchant_id AND l.occurred_at >= :day_start
                  AND l.occurred_at <= :instant {live_filter}
                GROUP BY p.id"""  # noqa: S608 - fragments are this module's constants
        )
        params["day_start"] = partial[0]
    rows = (
        await session.execute(
            text(
                f"""SELECT x.program_id, sum(x.s), sum(x.p), {_RATES}
                    FROM ({" UNION ALL ".join(parts)}) x(program_id, s, p)
                    JOIN loyalty_programs r ON r.id = x.program_id
                    GROUP BY x.program_id, r.stamps_target, r.stamps_reward_value_cents,
                             r.point_value_cents"""  # noqa: S608 - fragments are this module's constants
            ),
            params,
        )
    ).all()
    return BalancesAsOf(
        merchant_id=merchant_id,
        program_id=program_id,
        as_of=instant,
        balances=_sum_balances(_valued(int(r[1] or 0), int(r[2] or 0), r[3:]) for r in rows),
    )


async def daily_series(
    session: AsyncSession,
    merchant_id: int,
    days: int,
    *,
    at: datetime | None = None,
    program_id: int | None = None,
) -> tuple[DayPoint, ...]:
    """The last ``days`` merchant-local days up to today, oldest first, for charts: stamps and
    points issued and redeemed each day, and the balances and liability at each day's end."""
    if days < 1:
        raise ValueError("days must be >= 1")
    now = _now(at)
    merchant = await _merchant(session, merchant_id, now)
    last: date = merchant["today"]
    first = last - timedelta(days=days - 1)
    zone = merchant["timezone"]
    program_filter = "AND d.program_id = :program_id" if program_id is not None else ""
    card_filter = "AND c.program_id = :program_id" if program_id is not None else ""
    rows = (
        await session.execute(
            text(
                f"""
                SELECT x.program_id, x.day, sum(x.entries), sum(x.stamps_issued),
                       sum(x.stamps_redeemed), sum(x.points_issued), sum(x.points_redeemed),
                       sum(x.s), sum(x.p), {_RATES}
                FROM (
                    SELECT d.program_id,
                           CASE WHEN d.day >= :first THEN d.day END AS day,
                           d.entries, d.stamps_earned AS stamps_issued, d.stamps_redeemed,
                           d.points_earned + d.points_welcome AS points_issued,
                           d.points_redeemed, d.stamps_net AS s, d.points_net AS p
                    FROM ledger_daily_totals d
                    WHERE d.merchant_id = :merchant_id AND d.day <= :last {program_filter}
                    UNION ALL
                    SELECT c.program_id,
                           CASE WHEN (l.occurred_at AT TIME ZONE :zone)::date >= :first
                                THEN (l.occurred_at AT TIME ZONE :zone)::date END,
                           0, 0, 0, 0, 0, -l.stamps_delta, -l.points_delta
                    FROM loyalty_cards c JOIN ledger_entries l ON l.card_id = c.id
                    WHERE c.merchant_id = :merchant_id AND c.deleted_at IS NOT NULL
                      AND (l.occurred_at AT TIME ZONE :zone)::date <= :last {card_filter}
                ) x
                JOIN loyalty_programs r ON r.id = x.program_id
                GROUP BY x.program_id, x.day, r.stamps_target, r.stamps_reward_value_cents,
                         r.point_value_cents
                """  # noqa: S608 - fragments are this module's constants
            ),
            {
                "merchant_id": merchant_id,
                "first": first,
                "last": last,
                "zone": zone,
                "program_id": program_id,
            },
        )
    ).all()
    # Per program: the balance before the first day, then each day's net and figures.
    opening: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    nets: dict[tuple[int, date], list[int]] = defaultdict(lambda: [0, 0])
    figures: dict[date, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    rates: dict[int, Sequence[Any]] = {}
    for r in rows:
        program, day = int(r[0]), r[1]
        rates[program] = r[9:]
        if day is None:
            opening[program][0] += int(r[7] or 0)
            opening[program][1] += int(r[8] or 0)
            continue
        nets[program, day][0] += int(r[7] or 0)
        nets[program, day][1] += int(r[8] or 0)
        for i in range(5):
            figures[day][i] += int(r[2 + i] or 0)
    running = {p: list(v) for p, v in opening.items()}
    points = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        for program in rates:
            held = running.setdefault(program, [0, 0])
            held[0] += nets.get((program, day), [0, 0])[0]
            held[1] += nets.get((program, day), [0, 0])[1]
        f = figures.get(day, [0, 0, 0, 0, 0])
        points.append(
            DayPoint(
                day=day,
                ledger_events=f[0],
                stamps_issued=f[1],
                stamps_redeemed=f[2],
                points_issued=f[3],
                points_redeemed=f[4],
                balances=_sum_balances(
                    _valued(held[0], held[1], rates[p]) for p, held in running.items()
                ),
            )
        )
    return tuple(points)


EXPIRY_HORIZON_DAYS = 90
_EXPIRY_SHORT_DAYS = 30


async def expiry_outlook(
    session: AsyncSession,
    merchant_id: int,
    *,
    at: datetime | None = None,
    program_id: int | None = None,
) -> ExpiryOutlook:
    """Points pending and points expiring in the next 30 and 90 days (CONTRACT.md 7.2, 7.3).

    Three queries. Pending points are read from the pending lots (a partial index: a few
    days of purchases), dated expiries from the lots in the window (the partial index of
    expiring lots). Points kept by inactivity have no date of their own: they come from the
    cards, and only when a program in scope lets points expire.
    """
    now = _now(at)
    merchant = await _merchant(session, merchant_id, now)
    until = now + timedelta(days=EXPIRY_HORIZON_DAYS)
    params: dict[str, Any] = {
        "merchant_id": merchant_id,
        "program_id": program_id,
        "at": now,
        "short": now + timedelta(days=_EXPIRY_SHORT_DAYS),
        "until": until,
        "zone": merchant["timezone"],
    }
    only = "AND p.id = :program_id" if program_id is not None else ""
    programs = (
        await session.execute(
            text(
                "SELECT p.id, p.points_expiration_days FROM loyalty_programs p"  # noqa: S608 - fragments are this module's constants
                " WHERE p.merchant_id = :merchant_id AND p.deleted_at IS NULL"
                f" AND p.type IN ('points', 'hybrid') {only}"
            ),
            params,
        )
    ).all()
    idle = [(int(r[0]), int(r[1])) for r in programs if r[1] is not None]
    params["programs"] = [int(r[0]) for r in programs]
    params["idle_programs"] = [p for p, _ in idle]
    params["idle_days"] = [d for _, d in idle]
    pending = await session.scalar(text(_PENDING_SQL), params)
    parts = [_DATED_SQL] + ([_IDLE_SQL] if idle else [])
    rows = (
        await session.execute(
            text(
                "SELECT day, sum(points), sum(soon) FROM ("  # noqa: S608 - fragments are this module's constants
                + " UNION ALL ".join(parts)
                + ") x GROUP BY day"
            ),
            params,
        )
    ).all()
    by_day = {r[0]: int(r[1]) for r in rows}
    today: date = merchant["today"]
    last = until.astimezone(ZoneInfo(merchant["timezone"])).date()
    return ExpiryOutlook(
        merchant_id=merchant_id,
        program_id=program_id,
        at=now,
        today=today,
        points=bool(programs),
        points_pending=int(pending or 0),
        expiring_30_days=sum(int(r[2]) for r in rows),
        expiring_90_days=sum(by_day.values()),
        weeks=_periods(by_day, today, last, _week_start, _next_week),
        months=_periods(by_day, today, last, _month_start, _next_month),
    )


async def breakage_by_month(
    session: AsyncSession,
    merchant_id: int,
    months: int = 12,
    *,
    at: datetime | None = None,
    program_id: int | None = None,
) -> tuple[BreakageMonth, ...]:
    """The last ``months`` merchant-local months up to this one, oldest first: points issued
    (earned and welcome bonuses) and expired in each, from the ledger's daily totals."""
    if months < 1:
        raise ValueError("months must be >= 1")
    now = _now(at)
    merchant = await _merchant(session, merchant_id, now)
    today: date = merchant["today"]
    first = _month_start(today)
    for _ in range(months - 1):
        first = _month_start(first - timedelta(days=1))
    program_filter = "AND d.program_id = :program_id" if program_id is not None else ""
    rows = (
        await session.execute(
            text(
                f"""SELECT date_trunc('month', d.day)::date,
                           sum(d.points_earned + d.points_welcome), sum(d.points_expired)
                    FROM ledger_daily_totals d
                    WHERE d.merchant_id = :merchant_id AND d.day >= :first
                      AND d.day <= :last {program_filter}
                    GROUP BY 1"""  # noqa: S608 - fragments are this module's constants
            ),
            {"merchant_id": merchant_id, "first": first, "last": today, "program_id": program_id},
        )
    ).all()
    found = {r[0]: (int(r[1] or 0), int(r[2] or 0)) for r in rows}
    lines = []
    month = first
    while month <= today:
        issued, expired = found.get(month, (0, 0))
        lines.append(BreakageMonth(month, issued, expired))
        month = _next_month(month)
    return tuple(lines)


TIER_DAYS = 90


async def tier_stats(
    session: AsyncSession,
    merchant_id: int,
    *,
    at: datetime | None = None,
    program_id: int | None = None,
    days: int = TIER_DAYS,
) -> TierStats:
    """Members per tier on each of the last ``days`` days and the points each tier's
    multiplier added, of the merchant's live program (or of ``program_id``, if it is the
    merchant's and live): three queries, the members' one a single pass over the program's
    cards and tier changes whatever the number of days."""
    if days < 1:
        raise ValueError("days must be >= 1")
    now = _now(at)
    merchant = await _merchant(session, merchant_id, now)
    today: date = merchant["today"]
    nothing = TierStats(merchant_id, program_id, now, today, (), ())
    only = "AND p.id = :program_id" if program_id is not None else ""
    rows = (
        await session.execute(
            text(
                "SELECT p.id, t.tier ->> 'id', coalesce(t.tier ->> 'name', t.tier ->> 'id')"  # noqa: S608 - fragments are this module's constants
                " FROM loyalty_programs p"
                " CROSS JOIN LATERAL jsonb_array_elements(p.tiers) WITH ORDINALITY AS t(tier, n)"
                " WHERE p.merchant_id = :merchant_id AND p.deleted_at IS NULL"
                f" AND p.type IN ('points', 'hybrid') {only} ORDER BY p.id, t.n"
            ),
            {"merchant_id": merchant_id, "program_id": program_id},
        )
    ).all()
    if not rows:
        return nothing
    program = int(rows[0][0])
    tiers = [(str(r[1]), str(r[2])) for r in rows if int(r[0]) == program]
    zone = ZoneInfo(merchant["timezone"])
    first = today - timedelta(days=days - 1)
    params: dict[str, Any] = {
        "merchant_id": merchant_id,
        "program_id": program,
        "zone": merchant["timezone"],
        "first": first,
        "last": today,
        "since": datetime.combine(first, time(0), zone),
        "until": datetime.combine(today + timedelta(days=1), time(0), zone),
        "lowest": tiers[0][0],
    }
    deltas = (await session.execute(text(_TIER_MEMBERS_SQL), params)).all()
    added = (await session.execute(text(_TIER_POINTS_SQL), params)).all()
    # Each span of a card in a tier came in as +1 on its first day in the window and -1 on the
    # day it ended: the running sum per tier is the members at each day's end.
    changes: dict[tuple[date, str], int] = defaultdict(int)
    for day, tier, n in deltas:
        changes[day, tier] += int(n)
    held = dict.fromkeys((code for code, _ in tiers), 0)
    series = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        for code in held:
            held[code] += changes.get((day, code), 0)
        series.append(TierDay(day, tuple(held.values())))
    points = {str(r[0]): (int(r[1] or 0), int(r[2] or 0)) for r in added}
    return TierStats(
        merchant_id=merchant_id,
        program_id=program,
        at=now,
        today=today,
        tiers=tuple(
            TierLine(code, name, held[code], *points.get(code, (0, 0))) for code, name in tiers
        ),
        days=tuple(series),
    )


async def rebuild_summaries(session: AsyncSession, merchant_id: int | None = None) -> None:
    """Recompute the summary tables from the ledger and the cards (one merchant, or all).

    Never needed in normal operation (the triggers keep them, and a merchant's new time zone
    rebuilds its rows by itself); for repairs and bulk loads made with triggers disabled.
    """
    await session.execute(
        text("SELECT stats_rebuild(CAST(:merchant_id AS bigint))"), {"merchant_id": merchant_id}
    )


# --------------------------------------------------------------------------------------------
# Queries

# Pending now: what the pending lots of the merchant's live cards hold (the engine keeps a
# card's ``points_pending`` equal to its pending lots).
_PENDING_SQL = """
SELECT coalesce(sum(l.remaining), 0)
FROM point_lots l JOIN loyalty_cards c ON c.id = l.card_id
WHERE l.pending AND l.remaining > 0 AND l.merchant_id = :merchant_id
  AND c.deleted_at IS NULL
  AND (CAST(:program_id AS bigint) IS NULL OR c.program_id = CAST(:program_id AS bigint))
"""

# Points due to expire in (:at, :until], by the merchant's local day, and those of them due by
# :short. Dated lots of the live cards of the programs in scope (``:programs``)...
_DATED_SQL = """
SELECT (l.expires_at AT TIME ZONE :zone)::date AS day, l.remaining AS points,
       CASE WHEN l.expires_at <= :short THEN l.remaining ELSE 0 END AS soon
FROM point_lots l JOIN loyalty_cards c ON c.id = l.card_id
WHERE l.remaining > 0 AND l.expires_at IS NOT NULL
  AND l.expires_at > :at AND l.expires_at <= :until
  AND l.merchant_id = :merchant_id AND c.deleted_at IS NULL
  AND c.program_id = ANY(CAST(:programs AS bigint[]))
"""

# ... and the points kept by inactivity of cards whose idle limit falls in the window (the
# programs whose points expire, with their ``points_expiration_days``).
_IDLE_SQL = """
SELECT (e.at AT TIME ZONE :zone)::date, e.points,
       CASE WHEN e.at <= :short THEN e.points ELSE 0 END
FROM (
    SELECT c.last_activity_at + make_interval(days => g.days) AS at,
           c.points_balance + c.points_pending - c.dated_points AS points
    FROM loyalty_cards c
    JOIN unnest(CAST(:idle_programs AS bigint[]), CAST(:idle_days AS int[]))
         AS g(program_id, days) ON g.program_id = c.program_id
    WHERE c.merchant_id = :merchant_id AND c.deleted_at IS NULL
      AND c.points_balance + c.points_pending - c.dated_points > 0
      AND c.last_activity_at > CAST(:at AS timestamptz) - make_interval(days => g.days)
      AND c.last_activity_at <= CAST(:until AS timestamptz) - make_interval(days => g.days)
) e
"""

# Members per tier (``tier_stats``), set-based: each card's spans in a tier (from its creation
# in the first tier until its first change, then from each change until the next; the last
# change of a local day wins), as +1 on the span's first day in [:first, :last] and -1 on the
# day after its end; the caller sums them up day by day. Live cards of the program created by
# the end of :last, their changes up to then.
_TIER_MEMBERS_SQL = """
WITH cards AS MATERIALIZED (
    SELECT c.id, (c.created_at AT TIME ZONE :zone)::date AS born
    FROM loyalty_cards c
    WHERE c.program_id = :program_id AND c.deleted_at IS NULL AND c.created_at < :until
),
changes AS MATERIALIZED (
    SELECT DISTINCT ON (t.card_id, t.day) t.card_id, t.day, t.to_tier, c.born
    FROM (
        SELECT card_id, (occurred_at AT TIME ZONE :zone)::date AS day, to_tier, occurred_at, id
        FROM tier_changes
        WHERE merchant_id = :merchant_id AND occurred_at < :until
    ) t
    JOIN cards c ON c.id = t.card_id
    ORDER BY t.card_id, t.day, t.occurred_at DESC, t.id DESC
),
spans AS (
    SELECT greatest(ch.day, ch.born) AS start,
           lead(ch.day) OVER (PARTITION BY ch.card_id ORDER BY ch.day) AS stop,
           ch.to_tier AS tier
    FROM changes ch
    UNION ALL
    SELECT c.born, f.day, CAST(:lowest AS text)
    FROM cards c
    LEFT JOIN (SELECT card_id, min(day) AS day FROM changes GROUP BY card_id) f
           ON f.card_id = c.id
),
shown AS MATERIALIZED (
    SELECT start, stop, tier FROM spans
    WHERE tier IS NOT NULL AND start <= :last
      AND (stop IS NULL OR (stop > start AND stop > :first))
)
SELECT greatest(start, :first) AS day, tier, count(*) FROM shown GROUP BY 1, 2
UNION ALL
SELECT stop, tier, -count(*) FROM shown WHERE stop <= :last GROUP BY 1, 2
"""

# What each tier's multiplier added: the purchases of the program's cards (deleted ones too:
# history), since :since and in all.
_TIER_POINTS_SQL = """
SELECT p.tier, sum(p.tier_points) FILTER (WHERE p.occurred_at >= :since), sum(p.tier_points)
FROM purchases p JOIN loyalty_cards c ON c.id = p.card_id
WHERE p.merchant_id = :merchant_id AND c.program_id = :program_id AND p.tier IS NOT NULL
  AND p.occurred_at < :until
GROUP BY p.tier
"""

_RATES = "r.stamps_target, r.stamps_reward_value_cents, r.point_value_cents"


@dataclass(frozen=True)
class _Scope:
    merchant_id: int | None = None
    program_id: int | None = None

    def merchants(self) -> str:
        """The live merchants in scope, with their local date at ``:at``."""
        only = "AND id = :merchant_id" if self.merchant_id is not None else ""
        return (
            "SELECT id, (CAST(:at AS timestamptz) AT TIME ZONE timezone)::date AS today"  # noqa: S608
            f" FROM merchants WHERE deleted_at IS NULL {only}"
        )

    def where(self, alias: str) -> str:
        """The filter on a summary table's rows."""
        clauses = ["TRUE"]
        if self.merchant_id is not None:
            clauses.append(f"{alias}.merchant_id = :merchant_id")
        if self.program_id is not None:
            clauses.append(f"{alias}.program_id = :program_id")
        return " AND ".join(clauses)

    def params(self, at: datetime) -> dict[str, Any]:
        return {"at": at, "merchant_id": self.merchant_id, "program_id": self.program_id}


Dimension = Literal["store", "merchant"] | None
_DIMENSIONS: dict[str | None, str] = {"store": "d.store_id", "merchant": "d.merchant_id", None: "0"}


async def _card_counts(
    session: AsyncSession, scope: _Scope, at: datetime, *, by: Dimension
) -> dict[int, CardCounts]:
    key = _DIMENSIONS[by]
    rows = (
        await session.execute(
            text(
                f"""
                WITH m AS MATERIALIZED ({scope.merchants()})
                SELECT {key},
                  sum(d.cards_created), sum(d.active_cards_created),
                  coalesce(sum(d.cards_created) FILTER (
                    WHERE d.day >= date_trunc('month', m.today)::date AND d.day <= m.today), 0),
                  coalesce(sum(d.last_active_cards) FILTER (
                    WHERE d.day > m.today - {ACTIVITY_WINDOW_DAYS} AND d.day <= m.today), 0)
                FROM card_daily_counts d JOIN m ON m.id = d.merchant_id
                WHERE {scope.where("d")}
                GROUP BY 1
                """  # noqa: S608 - fragments are this module's constants
            ),
            scope.params(at),
        )
    ).all()
    return {int(r[0]): CardCounts(*(int(v) for v in r[1:])) for r in rows}


_ACTIVITY_COLUMNS = (
    "stamps_earned",
    "stamps_redeemed",
    "stamps_voided",
    "stamps_adjusted",
    "points_earned",
    "points_welcome",
    "points_redeemed",
    "points_voided",
    "points_expired",
    "points_adjusted",
)


async def _activity(
    session: AsyncSession, scope: _Scope, at: datetime, *, by: Dimension
) -> dict[int, Activity]:
    key = _DIMENSIONS[by]
    sums = ", ".join(f"sum(d.{c})" for c in _ACTIVITY_COLUMNS)
    rows = (
        await session.execute(
            text(
                f"""
                WITH m AS MATERIALIZED ({scope.merchants()})
                SELECT {key},
                  coalesce(sum(d.entries) FILTER (
                    WHERE d.day > m.today - {ACTIVITY_WINDOW_DAYS} AND d.day <= m.today), 0),
                  {sums}
                FROM ledger_daily_totals d JOIN m ON m.id = d.merchant_id
                WHERE {scope.where("d")}
                GROUP BY 1
                """  # noqa: S608 - fragments are this module's constants
            ),
            scope.params(at),
        )
    ).all()
    return {int(r[0]): _activity_of(r[1:]) for r in rows}


def _activity_of(values: Sequence[Any]) -> Activity:
    v = [int(x or 0) for x in values]
    return Activity(
        ledger_events_last_30_days=v[0],
        stamps_issued=v[1],
        stamps_redeemed=v[2],
        stamps_voided=v[3],
        stamps_adjusted=v[4],
        points_earned=v[5],
        points_welcome=v[6],
        points_issued=v[5] + v[6],
        points_redeemed=v[7],
        points_voided=v[8],
        points_expired=v[9],
        points_adjusted=v[10],
    )


async def _balances(session: AsyncSession, scope: _Scope, at: datetime) -> dict[int, Balances]:
    """Balances per merchant: the ledger's net per program, less what deleted cards hold."""
    deleted_filter = "c.merchant_id = :merchant_id" if scope.merchant_id is not None else "TRUE"
    if scope.program_id is not None:
        deleted_filter += " AND c.program_id = :program_id"
    rows = (
        await session.execute(
            text(
                f"""
                WITH m AS MATERIALIZED ({scope.merchants()})
                SELECT x.merchant_id, sum(x.s), sum(x.p), {_RATES}
                FROM (
                    SELECT d.merchant_id, d.program_id, sum(d.stamps_net) AS s,
                           sum(d.points_net) AS p
                    FROM ledger_daily_totals d JOIN m ON m.id = d.merchant_id
                    WHERE {scope.where("d")}
                    GROUP BY 1, 2
                    UNION ALL
                    SELECT c.merchant_id, c.program_id, -sum(c.stamp_count), -sum(c.points_balance)
                    FROM loyalty_cards c JOIN m ON m.id = c.merchant_id
                    WHERE c.deleted_at IS NOT NULL AND {deleted_filter}
                    GROUP BY 1, 2
                ) x
                JOIN loyalty_programs r ON r.id = x.program_id
                GROUP BY x.merchant_id, x.program_id, r.stamps_target,
                         r.stamps_reward_value_cents, r.point_value_cents
                """  # noqa: S608 - fragments are this module's constants
            ),
            scope.params(at),
        )
    ).all()
    per_merchant: dict[int, list[Balances]] = defaultdict(list)
    for r in rows:
        per_merchant[int(r[0])].append(_valued(int(r[1] or 0), int(r[2] or 0), r[3:]))
    return {m: _sum_balances(b) for m, b in per_merchant.items()}


async def _merchant(session: AsyncSession, merchant_id: int, at: datetime) -> Mapping[str, Any]:
    row = (
        await session.execute(
            text(
                "SELECT code, name, timezone,"
                " (CAST(:at AS timestamptz) AT TIME ZONE timezone)::date AS today"
                " FROM merchants WHERE id = :merchant_id AND deleted_at IS NULL"
            ),
            {"merchant_id": merchant_id, "at": at},
        )
    ).first()
    if row is None:
        raise StatsNotFound(f"no live merchant with id {merchant_id}")
    return dict(row._mapping)


async def _stores(session: AsyncSession, merchant_id: int) -> dict[int, tuple[str, str, bool]]:
    rows = (
        await session.execute(
            text(
                "SELECT id, code, name, deleted_at IS NOT NULL FROM stores"
                " WHERE merchant_id = :merchant_id"
            ),
            {"merchant_id": merchant_id},
        )
    ).all()
    return {int(r[0]): (r[1], r[2], bool(r[3])) for r in rows}


# --------------------------------------------------------------------------------------------
# Arithmetic


def _week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _next_week(start: date) -> date:
    return start + timedelta(days=7)


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _next_month(start: date) -> date:
    return (start + timedelta(days=32)).replace(day=1)


def _periods(
    by_day: Mapping[date, int],
    first: date,
    last: date,
    start_of: Callable[[date], date],
    following: Callable[[date], date],
) -> tuple[ExpiryPeriod, ...]:
    """Every period from the one of ``first`` to the one of ``last``, with its points."""
    totals: dict[date, int] = defaultdict(int)
    for day, points in by_day.items():
        totals[start_of(day)] += points
    periods = []
    start = start_of(first)
    while start <= last:
        periods.append(ExpiryPeriod(start, totals.get(start, 0)))
        start = following(start)
    return tuple(periods)


def _valued(stamps: int, points: int, rates: Sequence[Any]) -> Balances:
    target, reward_value, point_value = int(rates[0]), int(rates[1]), Decimal(rates[2])
    return Balances(
        stamps=stamps,
        points=points,
        stamps_liability_cents=Decimal(stamps * reward_value) / Decimal(target),
        points_liability_cents=points * point_value,
    )


def _sum_balances(items: Iterable[Balances]) -> Balances:
    stamps = points = 0
    stamps_cents = points_cents = Decimal(0)
    for b in items:
        stamps += b.stamps
        points += b.points
        stamps_cents += b.stamps_liability_cents
        points_cents += b.points_liability_cents
    return Balances(stamps, points, stamps_cents, points_cents)


def _sum_cards(items: Iterable[CardCounts]) -> CardCounts:
    total = active = new = recent = 0
    for c in items:
        total += c.total
        active += c.active
        new += c.new_this_month
        recent += c.active_last_30_days
    return CardCounts(total, active, new, recent)


def _sum_activity(items: Iterable[Activity]) -> Activity:
    fields = list(Activity.__dataclass_fields__)
    totals = dict.fromkeys(fields, 0)
    for a in items:
        for f in fields:
            totals[f] += getattr(a, f)
    return Activity(**totals)


def _averages(cards: CardCounts, activity: Activity, balances: Balances) -> Averages:
    if cards.total == 0:
        return Averages()
    n = cards.total
    return Averages(
        stamps_per_card=balances.stamps / n,
        points_per_card=balances.points / n,
        stamps_issued_per_card=activity.stamps_issued / n,
        points_issued_per_card=activity.points_issued / n,
    )


def _now(at: datetime | None) -> datetime:
    if at is None:
        return datetime.now(UTC)
    if at.tzinfo is None:
        raise ValueError("statistics need an aware datetime")
    return at
