"""Members per tier over time and what each tier's multiplier added (``domain.stats.tier_stats``,
CONTRACT.md 7.4), on tier changes and purchases written with SQL, the answers worked out in the
comments."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from domain.models import LoyaltyCard, LoyaltyProgram, Merchant, ProgramType
from domain.soft_delete import soft_delete
from domain.stats import StatsNotFound, TierDay, TierLine, TierStats, tier_stats
from tests.domain import factories as f

# 13:00 in Luxembourg (UTC+1): "today" is Thursday 20 March 2025; the 90 days start on
# 21 December 2024.
NOW = datetime(2025, 3, 20, 12, tzinfo=UTC)
FIRST = date(2024, 12, 21)
TIERS = [
    {"id": "bronze", "name": "Bronze", "threshold_points": 0, "multiplier": 1},
    {"id": "silver", "name": "Silver", "threshold_points": 500, "multiplier": 1.25},
    {"id": "gold", "name": "Gold", "threshold_points": 1000, "multiplier": 1.5},
]


def utc(year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


async def _change(
    db: AsyncSession, card: LoyaltyCard, before: str | None, after: str | None, at: datetime
) -> None:
    await db.execute(
        text(
            "INSERT INTO tier_changes (card_id, merchant_id, from_tier, to_tier,"
            " qualifying_points, occurred_at) VALUES (:card, :merchant, :before, :after, 0, :at)"
        ),
        {"card": card.id, "merchant": card.merchant_id, "before": before, "after": after, "at": at},
    )


async def _purchase(
    db: AsyncSession, card: LoyaltyCard, tier: str | None, points: int, at: datetime
) -> None:
    await db.execute(
        text(
            "INSERT INTO purchases (merchant_id, order_reference, card_id, amount_cents, currency,"
            " points_earned, stamps_earned, refunded_cents, points_voided, stamps_voided,"
            " source_event_id, occurred_at, tier, tier_points) VALUES (:merchant, :order,"
            " :card, 1000, 'EUR', 100 + :points, 0, 0, 0, 0, :event, :at, :tier, :points)"
        ),
        {
            "merchant": card.merchant_id,
            "order": f"o-{uuid.uuid4()}",
            "card": card.id,
            "event": uuid.uuid4(),
            "at": at,
            "tier": tier,
            "points": points,
        },
    )


async def _shop(db: AsyncSession, code: str = "shop") -> tuple[Merchant, LoyaltyProgram]:
    """A tiered program whose cards, as of NOW, were:

    - a: bronze all along (no change up to today; its move up tomorrow, local time, is later);
    - b: bronze until 9 January, silver from 10 January, gold from 2 March (its change at
      23:30 UTC on 1 March is past midnight in Luxembourg);
    - c: created 1 February, moved to silver then to gold that day (the day's last change
      wins), down to silver on 15 March;
    - d: deleted (its purchases still count, its membership does not);
    - e: created tomorrow, local time: not counted yet.
    """
    m = await f.merchant(db, code, timezone="Europe/Luxembourg")
    p = await f.program(db, m, type=ProgramType.POINTS, tiers=TIERS)
    a = await f.card(db, m, p, created_at=utc(2024, 6, 1))
    b = await f.card(db, m, p, created_at=utc(2024, 6, 1))
    c = await f.card(db, m, p, created_at=utc(2025, 2, 1))
    d = await f.card(db, m, p, created_at=utc(2024, 6, 1))
    e = await f.card(db, m, p, created_at=utc(2025, 3, 20, 23, 30))
    await _change(db, a, "bronze", "silver", utc(2025, 3, 20, 23, 30))
    await _change(db, b, None, "bronze", utc(2024, 7, 1))
    await _change(db, b, "bronze", "silver", utc(2025, 1, 10))
    await _change(db, b, "silver", "gold", utc(2025, 3, 1, 23, 30))
    await _change(db, c, "bronze", "silver", utc(2025, 2, 1, 11))
    await _change(db, c, "silver", "gold", utc(2025, 2, 1, 15))
    await _change(db, c, "gold", "silver", utc(2025, 3, 15, 3))
    await _change(db, d, "bronze", "gold", utc(2025, 1, 1))
    await _change(db, e, None, "gold", utc(2025, 3, 20, 23, 45))
    # What the multipliers added: 25 and 40 in silver (40 before the 90 days), 100 and the
    # deleted card's 7 in gold; nothing without a tier, nothing for a tier gone.
    await _purchase(db, b, "silver", 25, utc(2025, 1, 15))
    await _purchase(db, b, "silver", 40, utc(2024, 11, 1))
    await _purchase(db, b, "gold", 100, utc(2025, 3, 5))
    await _purchase(db, d, "gold", 7, utc(2025, 3, 10))
    await _purchase(db, a, None, 0, utc(2025, 3, 10))
    await _purchase(db, a, "platinum", 50, utc(2025, 3, 10))
    await soft_delete(db, LoyaltyCard, [d.id], by="test")
    await db.commit()
    return m, p


def _members(figures: TierStats, day: date) -> tuple[int, ...]:
    (found,) = [d for d in figures.days if d.day == day]
    return found.members


async def test_members_per_tier_on_each_of_the_last_90_days(db: AsyncSession) -> None:
    m, p = await _shop(db)
    other, _ = await _shop(db, "other")  # another merchant's cards and changes stay out

    figures = await tier_stats(db, m.id, at=NOW)

    assert (figures.program_id, figures.today) == (p.id, date(2025, 3, 20))
    assert [d.day for d in figures.days] == [FIRST + timedelta(days=n) for n in range(90)]
    expected = {  # (bronze, silver, gold) at the end of the day
        FIRST: (2, 0, 0),
        date(2025, 1, 9): (2, 0, 0),
        date(2025, 1, 10): (1, 1, 0),
        date(2025, 1, 31): (1, 1, 0),
        date(2025, 2, 1): (1, 1, 1),
        date(2025, 3, 1): (1, 1, 1),
        date(2025, 3, 2): (1, 0, 2),
        date(2025, 3, 14): (1, 0, 2),
        date(2025, 3, 15): (1, 1, 1),
        date(2025, 3, 20): (1, 1, 1),
    }
    assert {day: _members(figures, day) for day in expected} == expected
    # Between those days nothing moves.
    changes = [
        d.day for prev, d in zip(figures.days, figures.days[1:], strict=False)
        if d.members != prev.members
    ]  # fmt: skip
    assert changes == [date(2025, 1, 10), date(2025, 2, 1), date(2025, 3, 2), date(2025, 3, 15)]
    assert figures.tiers == (
        TierLine("bronze", "Bronze", 1, 0, 0),
        TierLine("silver", "Silver", 1, 25, 65),
        TierLine("gold", "Gold", 1, 107, 107),
    )
    assert (await tier_stats(db, m.id, at=NOW, program_id=p.id)) == figures
    assert (await tier_stats(db, other.id, at=NOW)).tiers == figures.tiers


async def test_a_shorter_period_and_a_later_day(db: AsyncSession) -> None:
    m, _ = await _shop(db)

    three = await tier_stats(db, m.id, at=NOW, days=3)
    assert three.days == (
        TierDay(date(2025, 3, 18), (1, 1, 1)),
        TierDay(date(2025, 3, 19), (1, 1, 1)),
        TierDay(date(2025, 3, 20), (1, 1, 1)),
    )
    # The next day: a moved to silver, e is born in gold.
    tomorrow = await tier_stats(db, m.id, at=NOW + timedelta(days=1), days=1)
    assert tomorrow.days == (TierDay(date(2025, 3, 21), (0, 2, 2)),)
    assert [t.members for t in tomorrow.tiers] == [0, 2, 2]
    assert [t.points_added_period for t in tomorrow.tiers] == [0, 0, 0]  # none that day
    assert [t.points_added for t in tomorrow.tiers] == [0, 65, 107]
    # On 15 April the 90 days start on 16 January: b's 25 points of the 15th are out.
    april = await tier_stats(db, m.id, at=utc(2025, 4, 15))
    assert april.days[0].day == date(2025, 1, 16)
    assert [t.points_added_period for t in april.tiers] == [0, 0, 107]
    with pytest.raises(ValueError, match="days"):
        await tier_stats(db, m.id, at=NOW, days=0)


async def test_nothing_without_tiers_or_points(db: AsyncSession) -> None:
    plain = await f.merchant(db, "plain")
    await f.program(db, plain, type=ProgramType.POINTS)
    stamps = await f.merchant(db, "stamps")
    await f.program(db, stamps, type=ProgramType.STAMPS, tiers=TIERS)
    none = await f.merchant(db, "none")
    m, p = await _shop(db)

    for merchant in (plain, stamps, none):
        figures = await tier_stats(db, merchant.id, at=NOW)
        assert (figures.tiers, figures.days) == ((), ())
    # Another merchant's program is not this merchant's.
    assert (await tier_stats(db, plain.id, at=NOW, program_id=p.id)).tiers == ()
    with pytest.raises(StatsNotFound):
        await tier_stats(db, m.id + 1000, at=NOW)
