"""Points pending, points expiring soon and breakage (``domain.stats``, CONTRACT.md 7.2 and
7.3) on hand-built lots, cards and ledgers whose answers are worked out in the comments."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from core.enums import ExpiryPolicy
from domain.models import (
    LedgerType,
    LoyaltyCard,
    LoyaltyProgram,
    Merchant,
    PointLot,
    ProgramType,
)
from domain.soft_delete import soft_delete
from domain.stats import (
    BreakageMonth,
    ExpiryPeriod,
    StatsNotFound,
    breakage_by_month,
    expiry_outlook,
)
from tests.domain import factories as f

T = LedgerType
# A Thursday, 13:00 in Luxembourg (UTC+1 until 30 March, UTC+2 after): "today" is 20 March.
NOW = datetime(2025, 3, 20, 12, tzinfo=UTC)


def utc(year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


async def _lot(
    db: AsyncSession,
    card: LoyaltyCard,
    lot_no: int,
    remaining: int,
    expires_at: datetime | None,
    *,
    pending: bool = False,
    points: int | None = None,
) -> None:
    db.add(
        PointLot(
            card_id=card.id,
            lot_no=lot_no,
            merchant_id=card.merchant_id,
            points=points if points is not None else max(remaining, 1),
            remaining=remaining,
            earned_at=utc(2024, 6, 1),
            releases_at=utc(2025, 3, 25) if pending else None,
            expires_at=expires_at,
            pending=pending,
        )
    )
    await db.flush()


async def _shop(db: AsyncSession, code: str = "shop") -> tuple[Merchant, LoyaltyProgram]:
    """A rolling program (a year) whose cards hold, as of NOW:

    - c1: dated lots of 100 (25 March), 0 (spent), 50 (19 April 13:00 local: within 30 days),
      70 (19 April 15:00 local: after), 30 (due this morning: already due, not "expiring"),
      20 (beyond 90 days); a pending lot of 40.
    - c2 (deleted): a lot of 500 in the window and a pending lot of 60: not counted.
    - c3: 80 points kept by inactivity, idle limit 10 April.
    - c4: 25 spendable + 5 pending, 10 of them dated (beyond the window): 20 kept by
      inactivity, idle limit 30 May; its pending lot of 5.
    - c5: idle limit passed already (1 March); c6: no activity ever.
    """
    m = await f.merchant(db, code, timezone="Europe/Luxembourg")
    p = await f.program(
        db,
        m,
        type=ProgramType.POINTS,
        points_expiration_days=365,
        expiry_policy=ExpiryPolicy.ROLLING,
        pending_days=5,
    )
    recent = utc(2025, 3, 19)
    c1 = await f.card(
        db, m, p, points_balance=270, points_pending=40, dated_points=270,
        last_activity_at=recent,
    )  # fmt: skip
    for lot_no, remaining, expires in [
        (1, 100, utc(2025, 3, 25)),
        (2, 0, utc(2025, 3, 26)),
        (3, 50, utc(2025, 4, 19, 11)),
        (4, 70, utc(2025, 4, 19, 13)),
        (5, 30, utc(2025, 3, 20, 11)),
        (6, 20, utc(2025, 6, 18, 13)),
    ]:
        await _lot(db, c1, lot_no, remaining, expires)
    await _lot(db, c1, 7, 40, utc(2026, 3, 20), pending=True)
    c2 = await f.card(db, m, p, points_balance=500, points_pending=60, dated_points=560,
                      last_activity_at=recent)  # fmt: skip
    await _lot(db, c2, 1, 500, utc(2025, 4, 1))
    await _lot(db, c2, 2, 60, utc(2026, 3, 1), pending=True)
    c3 = await f.card(db, m, p, points_balance=80, last_activity_at=utc(2024, 4, 10))
    await _lot(db, c3, 1, 80, None)
    c4 = await f.card(db, m, p, points_balance=25, points_pending=5, dated_points=10,
                      last_activity_at=utc(2024, 5, 30))  # fmt: skip
    await _lot(db, c4, 1, 15, None)
    await _lot(db, c4, 2, 10, utc(2025, 12, 1))
    await _lot(db, c4, 3, 5, None, pending=True)
    await f.card(db, m, p, points_balance=90, last_activity_at=utc(2024, 3, 1))
    await f.card(db, m, p, points_balance=60)
    await soft_delete(db, LoyaltyCard, [c2.id], by="test")
    await db.commit()
    return m, p


async def test_points_pending_and_expiring_soon(db: AsyncSession) -> None:
    m, p = await _shop(db)
    other, _ = await _shop(db, "other")  # another merchant's lots stay out

    outlook = await expiry_outlook(db, m.id, at=NOW)

    assert (outlook.today, outlook.points) == (date(2025, 3, 20), True)
    assert outlook.points_pending == 45  # c1's 40 and c4's 5; not the deleted c2's 60
    # 100 (25 March) + 50 (19 April, just within) + 80 (c3, 10 April)
    assert outlook.expiring_30_days == 230
    # ... + 70 (19 April, after the 30 days) + 20 (c4, 30 May)
    assert outlook.expiring_90_days == 320
    # Weeks from Monday 17 March (this week) to Monday 16 June (the week of 18 June).
    weeks = {w.start: w.points for w in outlook.weeks}
    assert (outlook.weeks[0].start, outlook.weeks[-1].start) == (
        date(2025, 3, 17),
        date(2025, 6, 16),
    )
    assert len(weeks) == 14
    assert {d: n for d, n in weeks.items() if n} == {
        date(2025, 3, 24): 100,
        date(2025, 4, 7): 80,
        date(2025, 4, 14): 120,
        date(2025, 5, 26): 20,
    }
    assert outlook.months == (
        ExpiryPeriod(date(2025, 3, 1), 100),
        ExpiryPeriod(date(2025, 4, 1), 200),
        ExpiryPeriod(date(2025, 5, 1), 20),
        ExpiryPeriod(date(2025, 6, 1), 0),
    )
    assert sum(w.points for w in outlook.weeks) == outlook.expiring_90_days

    of_program = await expiry_outlook(db, m.id, at=NOW, program_id=p.id)
    assert (of_program.points_pending, of_program.expiring_90_days) == (45, 320)
    assert (await expiry_outlook(db, other.id, at=NOW)).expiring_90_days == 320


async def test_a_day_later_what_was_expiring_is_due_and_the_window_moves_on(
    db: AsyncSession,
) -> None:
    m, _ = await _shop(db)

    later = await expiry_outlook(db, m.id, at=NOW + timedelta(days=6))

    # 25 March has passed (100 left out); 18 June 13:00 UTC now is in (c1's lot of 20).
    assert later.expiring_90_days == 320 - 100 + 20
    assert later.months[0] == ExpiryPeriod(date(2025, 3, 1), 0)


async def test_points_kept_by_inactivity_only_expire_when_the_program_says_so(
    db: AsyncSession,
) -> None:
    m = await f.merchant(db, "forever", timezone="UTC")
    p = await f.program(
        db, m, type=ProgramType.HYBRID
    )  # points_expiration_days: none, never expire
    await f.card(db, m, p, points_balance=80, last_activity_at=utc(2024, 4, 10))
    stamps = await f.merchant(db, "stamps", timezone="UTC")
    await f.program(db, stamps, type=ProgramType.STAMPS)
    await db.commit()

    outlook = await expiry_outlook(db, m.id, at=NOW)
    assert (outlook.points, outlook.points_pending, outlook.expiring_90_days) == (True, 0, 0)
    assert len(outlook.months) == 4
    # A merchant whose program gives no points has nothing to show.
    assert not (await expiry_outlook(db, stamps.id, at=NOW)).points
    with pytest.raises(StatsNotFound):
        await expiry_outlook(db, 10_000, at=NOW)


async def test_the_outlook_reads_the_same_few_statements_whatever_the_cards(
    db: AsyncSession, db_engine: AsyncEngine
) -> None:
    m, _ = await _shop(db)
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(db_engine.sync_engine, "before_cursor_execute", count)
    try:
        await expiry_outlook(db, m.id, at=NOW)
    finally:
        event.remove(db_engine.sync_engine, "before_cursor_execute", count)
    # The merchant, its programs, the pending points, the expiries.
    assert len(statements) == 4


async def test_breakage_is_points_expired_over_points_issued_per_month(db: AsyncSession) -> None:
    m = await f.merchant(db, "brk", timezone="Europe/Luxembourg")
    p = await f.program(db, m, type=ProgramType.POINTS)
    card = await f.card(db, m, p)
    for kind, when, points in [
        (T.POINTS_EARNED, utc(2024, 3, 10), 999),  # 13 months ago: left out
        (T.POINTS_EARNED, utc(2025, 1, 10), 200),
        (T.WELCOME_BONUS, utc(2025, 1, 11), 50),
        (T.POINTS_EXPIRED, utc(2025, 1, 20), -25),
        (T.POINTS_EXPIRED, utc(2025, 1, 31, 23, 30), -80),  # 1 February 00:30 local
        (T.POINTS_REDEEMED, utc(2025, 3, 2), -30),  # neither issued nor expired
        (T.POINTS_EARNED, utc(2025, 3, 5), 400),
        (T.POINTS_EXPIRED, utc(2025, 3, 6), -100),
    ]:
        await f.entry(db, card, kind, when, points=points)
    await db.commit()

    months = await breakage_by_month(db, m.id, at=NOW)

    assert [x.month for x in months] == [date(2024, n, 1) for n in range(4, 13)] + [
        date(2025, n, 1) for n in range(1, 4)
    ]
    by_month = {x.month: x for x in months}
    assert by_month[date(2025, 1, 1)] == BreakageMonth(date(2025, 1, 1), 250, 25)
    assert by_month[date(2025, 1, 1)].breakage == pytest.approx(0.1)
    assert by_month[date(2025, 2, 1)] == BreakageMonth(date(2025, 2, 1), 0, 80)
    assert by_month[date(2025, 2, 1)].breakage is None
    assert by_month[date(2025, 3, 1)].breakage == pytest.approx(0.25)
    assert by_month[date(2024, 12, 1)] == BreakageMonth(date(2024, 12, 1), 0, 0)
    assert len(await breakage_by_month(db, m.id, 3, at=NOW, program_id=p.id)) == 3
    assert (await breakage_by_month(db, m.id, at=NOW, program_id=p.id + 1))[-2].points_issued == 0
