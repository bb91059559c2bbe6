"""A merchant's finance report over a period of its local days (issue 17, ``docs/finance.md``).

What the cards held at the start and at the end of the period, in stamps, points and money;
what moved it in between (issued, redeemed, expired, voided, adjusted, and what cards deleted
in the period took with them); redemption and breakage rates; active and new members; and the
retention of each of the last twelve months' new cards. Six queries over summary tables
(``bench/stats_bench.py`` times them; the issue asks for under 2 s at a million cards and ten
million ledger rows): whole months cost tens of milliseconds at any size. The ledger itself is
read only for deleted cards and, when the period starts or ends inside a month, for those
days' active cards, which grows with the ledger rows of those days.

Definitions (the same words in ``docs/finance.md``):

- Days are the merchant's local days, both ends included. "At the start" is the first instant
  of ``start``, "at the end" the last instant of ``end``; a ledger entry counts on the local day
  of its ``occurred_at`` (event time), as in the statistics (``domain.stats``).
- Liability: what the cards not deleted at that instant held. Pending points (CONTRACT.md 7.2)
  are part of it: a purchase earned them, and only a return takes them back, so the merchant
  owes them as much as spendable points; they are shown apart as well. Stamps are valued at
  ``stamps_reward_value_cents / stamps_target`` each, points at ``point_value_cents``, with each
  program's current values, in cents rounded half up (each line on its own, so the lines of
  money may miss a sum by a cent; the stamps and points add up exactly).
- Issued: stamps earned; points earned (pending ones included, when earned) plus welcome
  bonuses. Redeemed, expired and voided (returns; pending points voided included) are positive
  amounts; adjusted is signed (admin adjustments). Deleted: what the cards deleted in the
  period held when deleted (soft delete takes a card's balance out of the liability; a card
  restored is as if never deleted). For stamps and for points (spendable plus pending):
  ``end = start + issued - redeemed - expired - voided + adjusted - deleted``, exactly.
- Redemption rate: redeemed / issued in the period; breakage rate: expired / issued in the
  period (points; stamps do not expire). None when nothing was issued.
- Active members: cards with at least one entry in the period of a kind that moves
  ``last_activity_at`` (earned, redeemed, voided, adjusted, welcome bonus, card created);
  deleted cards included (history). New members: cards created in the period, deleted or not.
- Cohorts: for each of the twelve months up to the month of ``end``, the cards created that
  month (deleted or not) and how many of them were active in it and in each month after it, up
  to the month of ``end`` (months counted whole, that one too).

A late event (an ``occurred_at`` inside a closed period) or a card restored changes a past
period's figures when asked again: the ledger is the truth, and it is by event time.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from core.csv_cells import safe_text
from core.enums import LedgerType
from domain.rules.project import ACTIVITY

COHORT_MONTHS = 12

# The kinds of entry that are a card's activity: those that move ``last_activity_at``
# (``domain.rules.project``), and those the activity triggers count (migration "the finance
# report").
ACTIVITY_TYPES: frozenset[LedgerType] = ACTIVITY


class FinanceNotFound(LookupError):
    """No live merchant has this code."""


# --------------------------------------------------------------------------------------------
# The report


@dataclass(frozen=True)
class Holdings:
    """What the cards held at an instant and what it is worth (cents, rounded half up)."""

    stamps: int
    points: int
    points_pending: int
    stamps_cents: int
    points_cents: int

    @property
    def points_total(self) -> int:
        """Spendable and pending points: the points of the liability."""
        return self.points + self.points_pending

    @property
    def cents(self) -> int:
        """The liability: stamps and points (spendable and pending)."""
        return self.stamps_cents + self.points_cents


@dataclass(frozen=True)
class Movement:
    """One line of what moved the liability in the period: stamps, points and their value."""

    stamps: int
    points: int
    cents: int


@dataclass(frozen=True)
class Cohort:
    """The cards created in one month and how many of them were active in it (``active[0]``)
    and in each following month (``active[i]``, ``i`` months later)."""

    month: date
    cards: int
    active: tuple[int, ...]

    @property
    def retention(self) -> tuple[float | None, ...]:
        """Each month's active cards over the cohort's cards; None for an empty cohort."""
        return tuple(n / self.cards if self.cards else None for n in self.active)


@dataclass(frozen=True)
class ProgramValue:
    """What a program's stamp and point are worth, in cents (its current values)."""

    program_id: int
    name: str
    deleted: bool
    stamp_value_cents: Decimal
    point_value_cents: Decimal


@dataclass(frozen=True)
class FinanceReport:
    """A merchant's finance report over ``start`` .. ``end`` (local days, both included).

    Money is in cents of ``currency`` (the live program's). ``deleted``: what cards deleted in
    the period took out of the liability.
    """

    merchant_id: int
    merchant_code: str
    merchant_name: str
    timezone: str
    currency: str
    start: date
    end: date
    opening: Holdings
    closing: Holdings
    issued: Movement
    redeemed: Movement
    expired: Movement
    voided: Movement
    adjusted: Movement
    deleted: Movement
    points_redemption_rate: float | None
    points_breakage_rate: float | None
    stamps_redemption_rate: float | None
    active_members: int
    new_members: int
    cohorts: tuple[Cohort, ...]
    programs: tuple[ProgramValue, ...]

    def movements(self) -> tuple[tuple[str, Movement], ...]:
        """The lines between the two liabilities, in order, with their names."""
        return (
            ("issued", self.issued),
            ("redeemed", self.redeemed),
            ("expired", self.expired),
            ("voided", self.voided),
            ("adjusted", self.adjusted),
            ("deleted", self.deleted),
        )


# --------------------------------------------------------------------------------------------
# Queries

_MERCHANT = """
SELECT id, code, name, timezone FROM merchants WHERE code = :code AND deleted_at IS NULL
"""

# The live program first: its currency is the report's.
_PROGRAMS = """
SELECT id, name, currency, stamps_target, stamps_reward_value_cents, point_value_cents,
       deleted_at IS NOT NULL AS deleted
FROM loyalty_programs WHERE merchant_id = :merchant_id
ORDER BY deleted_at IS NULL DESC, id DESC
"""

# Points held, spendable and pending: what issued and took them (the daily totals count
# pending points where earned and where voided; a release moves none).
_HELD = (
    "d.points_earned + d.points_welcome - d.points_redeemed - d.points_voided"
    " - d.points_expired + d.points_adjusted"
)
_PERIOD = (
    "d.stamps_earned",
    "d.stamps_redeemed",
    "d.stamps_voided",
    "d.stamps_adjusted",
    "d.points_earned + d.points_welcome",
    "d.points_redeemed",
    "d.points_expired",
    "d.points_voided",
    "d.points_adjusted",
)
_TOTALS = f"""
SELECT d.program_id,
       sum(d.stamps_net) FILTER (WHERE d.day < :start),
       sum(d.points_net) FILTER (WHERE d.day < :start),
       sum({_HELD}) FILTER (WHERE d.day < :start),
       sum(d.stamps_net), sum(d.points_net), sum({_HELD}),
       {", ".join(f"sum({c}) FILTER (WHERE d.day >= :start)" for c in _PERIOD)}
FROM ledger_daily_totals d
WHERE d.merchant_id = :merchant_id AND d.day <= :end
GROUP BY d.program_id
"""  # noqa: S608 - fragments are this module's constants

# What the cards deleted by the start, and by the end, held then (from their ledger: a deleted
# card's row may have moved since, and its entries are few).
_DELETED = """
WITH gone AS MATERIALIZED (
    SELECT c.id, c.program_id, (c.deleted_at AT TIME ZONE :zone)::date AS day
    FROM loyalty_cards c
    WHERE c.merchant_id = :merchant_id AND c.deleted_at IS NOT NULL
      AND (c.deleted_at AT TIME ZONE :zone)::date <= :end
),
entries AS (
    SELECT g.program_id, g.day < :start AS by_start,
           (l.occurred_at AT TIME ZONE :zone)::date AS day,
           l.stamps_delta, l.points_delta, l.pending_delta
    FROM gone g JOIN ledger_entries l ON l.card_id = g.id
)
SELECT program_id,
       sum(stamps_delta) FILTER (WHERE by_start AND day < :start),
       sum(points_delta) FILTER (WHERE by_start AND day < :start),
       sum(pending_delta) FILTER (WHERE by_start AND day < :start),
       sum(stamps_delta) FILTER (WHERE day <= :end),
       sum(points_delta) FILTER (WHERE day <= :end),
       sum(pending_delta) FILTER (WHERE day <= :end)
FROM entries
GROUP BY program_id
"""

_ACTIVE_IN = "(" + ", ".join(f"'{t.value}'" for t in sorted(ACTIVITY_TYPES)) + ")"

# Cards active in the whole months :first_month .. :last_month: the rows of those months whose
# previous active month is before them (one per card, its first active month from then).
_ACTIVE_MONTHS = """
SELECT coalesce(sum(cards), 0) FROM active_month_counts
WHERE merchant_id = :merchant_id AND month >= :first_month AND month <= :last_month
  AND previous < :first_month
"""

# Cards active on the days of the period outside its whole months (from the ledger: at most
# two part months). The range on ``occurred_at`` is a day wider than the local days, for the
# index; the local day decides.
_ACTIVE_DAYS = f"""
SELECT DISTINCT l.card_id
FROM ledger_entries l
WHERE l.merchant_id = :merchant_id AND l.entry_type IN {_ACTIVE_IN}
  AND (
    (l.occurred_at >= :lo_from AND l.occurred_at < :lo_to
     AND (l.occurred_at AT TIME ZONE :zone)::date BETWEEN :lo_first AND :lo_last)
    OR (l.occurred_at >= :hi_from AND l.occurred_at < :hi_to
        AND (l.occurred_at AT TIME ZONE :zone)::date BETWEEN :hi_first AND :hi_last)
  )
"""  # noqa: S608 - fragments are this module's constants
# ... less those active in the whole months (counted from the monthly counts).
_ACTIVE_DAYS_ONLY = f"""
SELECT count(*) FROM ({_ACTIVE_DAYS}) x
WHERE NOT EXISTS (
    SELECT 1 FROM card_active_months a
    WHERE a.card_id = x.card_id AND a.month >= :first_month AND a.month <= :last_month
)
"""  # noqa: S608 - fragments are this module's constants
_ACTIVE_DAYS_ALL = f"SELECT count(*) FROM ({_ACTIVE_DAYS}) x"  # noqa: S608 - constants

# Cards created per local day: the live ones from their daily counts, the deleted ones from
# their rows (few, on a partial index).
_CREATED = """
SELECT day, sum(cards_created) FROM card_daily_counts
WHERE merchant_id = :merchant_id AND day >= :first AND day <= :last
GROUP BY day
UNION ALL
SELECT (created_at AT TIME ZONE :zone)::date, count(*) FROM loyalty_cards
WHERE merchant_id = :merchant_id AND deleted_at IS NOT NULL
  AND (created_at AT TIME ZONE :zone)::date >= :first
  AND (created_at AT TIME ZONE :zone)::date <= :last
GROUP BY 1
"""

_COHORTS = """
SELECT cohort, month, sum(cards) FROM active_month_counts
WHERE merchant_id = :merchant_id AND cohort >= :first_month AND cohort <= :last_month
  AND month >= cohort AND month <= :last_month
GROUP BY cohort, month
"""


async def finance_report(
    session: AsyncSession, merchant_code: str, start: date, end: date
) -> FinanceReport:
    """The finance report of the live merchant ``merchant_code`` over ``start`` .. ``end``
    (its local days, both included); see the module's docstring for every figure.

    Raises ``FinanceNotFound`` for an unknown or deleted merchant, ``ValueError`` when
    ``start`` is after ``end``.
    """
    if start > end:
        raise ValueError(f"the period starts ({start}) after it ends ({end})")
    row = (await session.execute(text(_MERCHANT), {"code": merchant_code})).first()
    if row is None:
        raise FinanceNotFound(f"no live merchant with code {merchant_code!r}")
    merchant_id, code, name, zone = int(row[0]), str(row[1]), str(row[2]), str(row[3])
    params: dict[str, Any] = {"merchant_id": merchant_id, "start": start, "end": end, "zone": zone}

    programs = (await session.execute(text(_PROGRAMS), params)).all()
    values = {
        int(p[0]): ProgramValue(
            program_id=int(p[0]),
            name=str(p[1]),
            deleted=bool(p[6]),
            stamp_value_cents=Decimal(int(p[4])) / Decimal(int(p[3])),
            point_value_cents=Decimal(p[5]),
        )
        for p in programs
    }
    currency = str(programs[0][2]) if programs else "EUR"

    totals = {
        int(r[0]): [int(v or 0) for v in r[1:]]
        for r in (await session.execute(text(_TOTALS), params)).all()
    }
    deleted = {
        int(r[0]): [int(v or 0) for v in r[1:]]
        for r in (await session.execute(text(_DELETED), params)).all()
    }
    ledger = _Ledger(totals, deleted, values)

    last_month = _month_of(end)
    first_cohort = _add_months(last_month, 1 - COHORT_MONTHS)
    created = await _created(session, params, min(start, first_cohort), _month_end(last_month))
    cohorts = await _cohorts(session, params, created, first_cohort, last_month)
    active = await _active_members(session, params, start, end)

    issued = ledger.movement(0, 4)
    redeemed = ledger.movement(1, 5)
    expired = ledger.movement(None, 6)  # stamps do not expire
    return FinanceReport(
        merchant_id=merchant_id,
        merchant_code=code,
        merchant_name=name,
        timezone=zone,
        currency=currency,
        start=start,
        end=end,
        opening=ledger.holdings(opening=True),
        closing=ledger.holdings(opening=False),
        issued=issued,
        redeemed=redeemed,
        expired=expired,
        voided=ledger.movement(2, 7),
        adjusted=ledger.movement(3, 8),
        deleted=ledger.deleted(),
        points_redemption_rate=_rate(redeemed.points, issued.points),
        points_breakage_rate=_rate(expired.points, issued.points),
        stamps_redemption_rate=_rate(redeemed.stamps, issued.stamps),
        active_members=active,
        new_members=sum(n for day, n in created.items() if start <= day <= end),
        cohorts=cohorts,
        programs=tuple(values.values()),
    )


class _Ledger:
    """The query results per program, as the report's lines.

    ``totals[p]``: stamps, spendable points and points held (spendable and pending) before
    the start, then the same up to the end, then the period's columns (``_PERIOD``).
    ``deleted[p]``: the stamps, spendable and pending points of the cards deleted by the start
    (held at the start), then of those deleted by the end (held at the end).
    """

    def __init__(
        self,
        totals: Mapping[int, Sequence[int]],
        deleted: Mapping[int, Sequence[int]],
        values: Mapping[int, ProgramValue],
    ) -> None:
        self.totals = totals
        self.gone = deleted
        # A program named by the figures but gone since cannot be valued: worth nothing.
        nothing = ProgramValue(0, "", True, Decimal(0), Decimal(0))
        self.values = {p: values.get(p, nothing) for p in set(totals) | set(deleted)}

    def _held(self, program: int, opening: bool) -> tuple[int, int, int]:
        """Stamps, spendable and pending points of the cards not deleted then."""
        t = self.totals.get(program, [0] * 15)
        g = self.gone.get(program, [0] * 6)
        stamps, spendable, held = t[0:3] if opening else t[3:6]
        gone_stamps, gone_spendable, gone_pending = g[0:3] if opening else g[3:6]
        return (
            stamps - gone_stamps,
            spendable - gone_spendable,
            held - spendable - gone_pending,
        )

    def holdings(self, *, opening: bool) -> Holdings:
        stamps = points = pending = 0
        stamps_cents = points_cents = Decimal(0)
        for program, value in self.values.items():
            s, p, q = self._held(program, opening)
            stamps, points, pending = stamps + s, points + p, pending + q
            stamps_cents += s * value.stamp_value_cents
            points_cents += (p + q) * value.point_value_cents
        return Holdings(stamps, points, pending, _cents(stamps_cents), _cents(points_cents))

    def movement(self, stamps_column: int | None, points_column: int) -> Movement:
        """A line of the period from the ``_PERIOD`` columns (None: no stamps)."""
        lines = {}
        for program in self.values:
            t = self.totals.get(program, [0] * 15)
            s = t[6 + stamps_column] if stamps_column is not None else 0
            lines[program] = (s, t[6 + points_column])
        return self._valued(lines)

    def deleted(self) -> Movement:
        """What the cards deleted in the period took out: held by the deleted at the end less
        held by the deleted at the start (their entries in between are in the other lines)."""
        lines = {}
        for program in self.values:
            g = self.gone.get(program, [0] * 6)
            lines[program] = (g[3] - g[0], g[4] + g[5] - g[1] - g[2])
        return self._valued(lines)

    def _valued(self, lines: Mapping[int, tuple[int, int]]) -> Movement:
        stamps = points = 0
        cents = Decimal(0)
        for program, (s, p) in lines.items():
            value = self.values[program]
            stamps, points = stamps + s, points + p
            cents += s * value.stamp_value_cents + p * value.point_value_cents
        return Movement(stamps, points, _cents(cents))


async def _active_members(
    session: AsyncSession, params: Mapping[str, Any], start: date, end: date
) -> int:
    """Cards active in the period: whole months from the monthly counts, the days outside
    them from the ledger (less the cards already counted)."""
    first_whole = start if start.day == 1 else _add_months(_month_of(start), 1)
    last_whole = _month_of(end) if end == _month_end(end) else _add_months(_month_of(end), -1)
    if first_whole > last_whole:
        # No whole month: the ledger's days, and no card counted already.
        parts = [(start, end)]
        whole, query = 0, _ACTIVE_DAYS_ALL
    else:
        parts = [(start, first_whole - timedelta(days=1)), (_month_end(last_whole) + _DAY, end)]
        months = {"first_month": first_whole, "last_month": last_whole}
        whole = int(await session.scalar(text(_ACTIVE_MONTHS), {**params, **months}) or 0)
        query = _ACTIVE_DAYS_ONLY
    parts = [(a, b) for a, b in parts if a <= b]
    if not parts:
        return whole
    lo, hi = parts[0], parts[-1]
    days = {
        "first_month": first_whole,
        "last_month": last_whole,
        "lo_first": lo[0],
        "lo_last": lo[1],
        "hi_first": hi[0],
        "hi_last": hi[1],
        # The instants around the local days, a day wider on each side (any time zone).
        "lo_from": _midnight(lo[0] - _DAY),
        "lo_to": _midnight(lo[1] + 2 * _DAY),
        "hi_from": _midnight(hi[0] - _DAY),
        "hi_to": _midnight(hi[1] + 2 * _DAY),
    }
    outside = await session.scalar(text(query), {**params, **days})
    return whole + int(outside or 0)


async def _created(
    session: AsyncSession, params: Mapping[str, Any], first: date, last: date
) -> dict[date, int]:
    """Cards created per local day from ``first`` to ``last``, deleted or not."""
    rows = (await session.execute(text(_CREATED), {**params, "first": first, "last": last})).all()
    created: dict[date, int] = defaultdict(int)
    for day, n in rows:
        created[day] += int(n or 0)
    return created


async def _cohorts(
    session: AsyncSession,
    params: Mapping[str, Any],
    created: Mapping[date, int],
    first_month: date,
    last_month: date,
) -> tuple[Cohort, ...]:
    months = {"first_month": first_month, "last_month": last_month}
    rows = (await session.execute(text(_COHORTS), {**params, **months})).all()
    active = {(r[0], r[1]): int(r[2] or 0) for r in rows}
    sizes: dict[date, int] = defaultdict(int)
    for day, n in created.items():
        sizes[_month_of(day)] += n
    cohorts = []
    month = first_month
    while month <= last_month:
        following = []
        later = month
        while later <= last_month:
            following.append(active.get((month, later), 0))
            later = _add_months(later, 1)
        cohorts.append(Cohort(month, sizes.get(month, 0), tuple(following)))
        month = _add_months(month, 1)
    return tuple(cohorts)


# --------------------------------------------------------------------------------------------
# Output: JSON-ready values and CSV


def report_dict(report: FinanceReport) -> dict[str, Any]:
    """The report as JSON-ready values (money in cents, rates as fractions or null)."""

    def holdings(h: Holdings) -> dict[str, int]:
        return {
            "stamps": h.stamps,
            "points": h.points,
            "points_pending": h.points_pending,
            "stamps_cents": h.stamps_cents,
            "points_cents": h.points_cents,
            "cents": h.cents,
        }

    return {
        "merchant": report.merchant_code,
        "merchant_name": report.merchant_name,
        "timezone": report.timezone,
        "currency": report.currency,
        "from": report.start.isoformat(),
        "to": report.end.isoformat(),
        "liability": {"start": holdings(report.opening), "end": holdings(report.closing)},
        "movements": {
            name: {"stamps": m.stamps, "points": m.points, "cents": m.cents}
            for name, m in report.movements()
        },
        "rates": {
            "points_redemption": report.points_redemption_rate,
            "points_breakage": report.points_breakage_rate,
            "stamps_redemption": report.stamps_redemption_rate,
        },
        "members": {"active": report.active_members, "new": report.new_members},
        "cohorts": [
            {
                "month": c.month.strftime("%Y-%m"),
                "cards": c.cards,
                "active": list(c.active),
                "retention": list(c.retention),
            }
            for c in report.cohorts
        ],
        "programs": [
            {
                "id": p.program_id,
                "name": p.name,
                "deleted": p.deleted,
                "stamp_value_cents": str(p.stamp_value_cents),
                "point_value_cents": str(p.point_value_cents),
            }
            for p in report.programs
        ],
    }


CSV_HEADER = ("section", "figure", "unit", "value")


def report_rows(report: FinanceReport) -> list[tuple[str, str, str, str]]:
    """The report as rows of ``CSV_HEADER``: one figure a row, money in the currency's units
    (``12.34``), rates as fractions (empty when there is none)."""
    cur = report.currency
    rows = [
        ("report", "merchant", "", report.merchant_code),
        # Named by the merchant's admins: kept from being read as a formula by a spreadsheet.
        ("report", "merchant_name", "", safe_text(report.merchant_name)),
        ("report", "from", "", report.start.isoformat()),
        ("report", "to", "", report.end.isoformat()),
        ("report", "timezone", "", report.timezone),
        ("report", "currency", "", cur),
    ]
    for section, h in (("liability_start", report.opening), ("liability_end", report.closing)):
        rows += [
            (section, "stamps", "stamps", str(h.stamps)),
            (section, "points", "points", str(h.points_total)),
            (section, "points_spendable", "points", str(h.points)),
            (section, "points_pending", "points", str(h.points_pending)),
            (section, "value", cur, money(h.cents)),
        ]
    for name, m in report.movements():
        rows += [
            ("movement", name, "stamps", str(m.stamps)),
            ("movement", name, "points", str(m.points)),
            ("movement", name, cur, money(m.cents)),
        ]
    rows += [
        ("rate", "redemption", "points", _fraction(report.points_redemption_rate)),
        ("rate", "breakage", "points", _fraction(report.points_breakage_rate)),
        ("rate", "redemption", "stamps", _fraction(report.stamps_redemption_rate)),
        ("members", "active", "cards", str(report.active_members)),
        ("members", "new", "cards", str(report.new_members)),
    ]
    for c in report.cohorts:
        label = c.month.strftime("%Y-%m")
        rows.append(("cohort", label, "cards", str(c.cards)))
        for i, (n, share) in enumerate(zip(c.active, c.retention, strict=True)):
            month = _add_months(c.month, i).strftime("%Y-%m")
            rows.append(("cohort_active", label, month, str(n)))
            rows.append(("cohort_retention", label, month, _fraction(share)))
    return rows


def report_csv(report: FinanceReport) -> str:
    """The report as CSV (``report_rows`` under ``CSV_HEADER``)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    writer.writerows(report_rows(report))
    return out.getvalue()


def money(cents: int) -> str:
    """Cents in the currency's units, without grouping: ``-1234`` -> ``-12.34``."""
    return str((Decimal(cents) / 100).quantize(Decimal("0.01")))


# --------------------------------------------------------------------------------------------
# Arithmetic

_DAY = timedelta(days=1)


def _cents(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _fraction(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _month_of(day: date) -> date:
    return day.replace(day=1)


def _add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def _month_end(day: date) -> date:
    return _add_months(_month_of(day), 1) - _DAY


def _midnight(day: date) -> datetime:
    """Midnight UTC of ``day``: every time zone's ``day`` lies within a day of it."""
    return datetime.combine(day, time(0), UTC)
