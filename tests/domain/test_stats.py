"""Statistics on hand-built ledgers whose answers are worked out in the comments.

Long (about 500 lines) because each hand-built ledger's answer is worked out beside its test.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from domain.models import (
    CardDailyCount,
    LedgerDailyTotal,
    LedgerEntry,
    LedgerType,
    LoyaltyCard,
    LoyaltyProgram,
    Merchant,
    Store,
)
from domain.soft_delete import restore, soft_delete
from domain.stats import (
    Activity,
    Averages,
    Balances,
    CardCounts,
    StatsNotFound,
    balances_as_of,
    daily_series,
    merchant_stats,
    platform_stats,
    program_stats,
    rebuild_summaries,
)
from tests.domain import factories as f

T = LedgerType
# 13:00 in Luxembourg (UTC+1 until 30 March): "today" is 20 March 2025 for the merchant.
NOW = datetime(2025, 3, 20, 12, tzinfo=UTC)


def utc(month: int, day: int, hour: int = 10) -> datetime:
    return datetime(2025, month, day, hour, tzinfo=UTC)


@dataclass
class Cafe:
    merchant: Merchant
    program: LoyaltyProgram
    s1: Store
    s2: Store
    cards: dict[str, LoyaltyCard]


async def _cafe(db: AsyncSession, code: str = "cafe") -> Cafe:
    """Five cards; c4 is deleted. Balances (stamps, points): c1 (2, 150), c2 (4, 0),
    c3 (2, 15), c4 (2, 40, deleted), c5 (0, 50)."""
    m = await f.merchant(db, code, timezone="Europe/Luxembourg")
    p = await f.program(
        db, m, stamps_target=10, stamps_reward_value_cents=350, point_value_cents=Decimal("0.5")
    )
    s1 = await f.store(db, m, f"{code}-S1")
    s2 = await f.store(db, m, f"{code}-S2")
    cards = {
        "c1": await f.card(
            db, m, p, at=s1, created_at=utc(3, 5), last_activity_at=utc(3, 19),
            stamp_count=2, points_balance=150,
        ),
        "c2": await f.card(
            db, m, p, at=s2, created_at=utc(1, 10), last_activity_at=utc(1, 15),
            stamp_count=4, points_balance=0,
        ),
        "c3": await f.card(
            db, m, p, at=s1, created_at=utc(2, 25), last_activity_at=utc(3, 1),
            stamp_count=2, points_balance=15, is_active=False,
        ),
        "c4": await f.card(
            db, m, p, at=s2, created_at=utc(1, 20), last_activity_at=utc(2, 1),
            stamp_count=2, points_balance=40,
        ),
        "c5": await f.card(db, m, p, created_at=utc(3, 20, 8), points_balance=50),
    }  # fmt: skip
    c1, c2, c3, c4, c5 = cards.values()
    for card, kind, when, stamps, points, store in [
        (c1, T.WELCOME_BONUS, utc(3, 5), 0, 50, s1),
        (c1, T.STAMP_EARNED, utc(3, 10), 3, 0, s1),
        (c1, T.POINTS_EARNED, utc(3, 10), 0, 200, s1),
        (c1, T.STAMP_EARNED, utc(3, 12), 7, 0, s2),
        (c1, T.STAMP_REDEEMED, utc(3, 15, 9), -10, 0, s1),
        (c1, T.POINTS_REDEEMED, utc(3, 15, 15), 0, -100, s2),
        (c1, T.STAMP_EARNED, utc(3, 19), 2, 0, s1),
        (c2, T.STAMP_EARNED, utc(1, 15), 4, 0, s2),
        (c2, T.POINTS_EARNED, utc(1, 15), 0, 80, s2),
        (c2, T.POINTS_EXPIRED, utc(2, 20), 0, -80, None),
        (c3, T.STAMP_EARNED, utc(3, 1), 1, 0, s1),
        (c3, T.POINTS_EARNED, utc(3, 1), 0, 30, s1),
        (c3, T.POINTS_VOIDED, utc(3, 2), 0, -10, s1),
        (c3, T.STAMP_ADJUSTED, utc(3, 2), 1, 0, None),
        (c3, T.POINTS_ADJUSTED, utc(3, 2), 0, -5, None),
        (c4, T.STAMP_EARNED, utc(2, 1), 2, 0, s2),
        (c4, T.POINTS_EARNED, utc(2, 1), 0, 40, s2),
        (c5, T.WELCOME_BONUS, utc(3, 20, 10), 0, 50, None),
    ]:
        await f.entry(db, card, kind, when, stamps=stamps, points=points, at=store)
    await soft_delete(db, LoyaltyCard, [c4.id], by="test")
    await db.commit()
    return Cafe(m, p, s1, s2, cards)


async def test_merchant_stats_of_a_hand_built_ledger(db: AsyncSession) -> None:
    cafe = await _cafe(db)

    stats = await merchant_stats(db, cafe.merchant.id, at=NOW)

    assert stats.today == date(2025, 3, 20)
    # live c1, c2, c3, c5; c3 inactive; new in March: c1, c5; last activity after 18 Feb: c1, c3
    assert stats.cards == CardCounts(total=4, active=3, new_this_month=2, active_last_30_days=2)
    assert stats.activity == Activity(
        ledger_events_last_30_days=14,  # c1: 7, c2: 1 (the expiry), c3: 5, c5: 1
        stamps_issued=19,  # 3 + 7 + 2 + 4 + 1 + 2 (c4's, history is kept)
        stamps_redeemed=10,
        stamps_voided=0,
        stamps_adjusted=1,
        points_earned=350,  # 200 + 80 + 30 + 40
        points_welcome=100,
        points_issued=450,
        points_redeemed=100,
        points_voided=10,
        points_expired=80,
        points_adjusted=-5,
    )
    # 8 stamps at 35 cents each, 215 points at half a cent each: 280 + 107.5
    assert stats.balances == Balances(8, 215, Decimal(280), Decimal("107.5"))
    assert stats.balances.liability_cents == 388
    assert stats.averages == Averages(2.0, 53.75, 4.75, 112.5)


async def test_the_per_store_breakdown(db: AsyncSession) -> None:
    cafe = await _cafe(db)

    stores = {s.code: s for s in (await merchant_stats(db, cafe.merchant.id, at=NOW)).stores}

    assert list(stores) == ["cafe-S1", "cafe-S2", None]
    s1, s2, none = stores["cafe-S1"], stores["cafe-S2"], stores[None]
    assert (s1.store_id, s1.name, s1.deleted) == (cafe.s1.id, "cafe-S1", False)
    assert s1.cards == CardCounts(total=2, active=1, new_this_month=1, active_last_30_days=2)
    assert s2.cards == CardCounts(total=1, active=1, new_this_month=0, active_last_30_days=0)
    assert none.cards == CardCounts(total=1, active=1, new_this_month=1, active_last_30_days=0)
    assert (s1.activity.stamps_issued, s1.activity.stamps_redeemed) == (6, 10)
    assert (s1.activity.points_earned, s1.activity.points_welcome) == (230, 50)
    assert (s1.activity.points_voided, s1.activity.ledger_events_last_30_days) == (10, 8)
    assert (s2.activity.stamps_issued, s2.activity.points_earned) == (13, 120)
    assert (s2.activity.points_redeemed, s2.activity.ledger_events_last_30_days) == (100, 2)
    assert none.store_id is None
    assert (none.activity.points_expired, none.activity.points_adjusted) == (80, -5)
    assert (none.activity.stamps_adjusted, none.activity.ledger_events_last_30_days) == (1, 4)


async def test_a_deleted_store_with_no_data_is_left_out_and_one_with_data_is_marked(
    db: AsyncSession,
) -> None:
    cafe = await _cafe(db)
    empty = await f.store(db, cafe.merchant, "cafe-S3")
    await soft_delete(db, Store, [empty.id, cafe.s2.id], by="test")
    await db.commit()

    stores = (await merchant_stats(db, cafe.merchant.id, at=NOW)).stores

    assert [(s.code, s.deleted) for s in stores] == [
        ("cafe-S1", False),
        ("cafe-S2", True),
        (None, False),
    ]


async def test_balances_as_of_a_past_date_or_instant(db: AsyncSession) -> None:
    cafe = await _cafe(db)
    m = cafe.merchant.id

    # End of 14 March: c1 (10, 250), c2 (4, 0), c3 (2, 15); c4 deleted, c5 not yet.
    day = await balances_as_of(db, m, date(2025, 3, 14))
    assert (day.balances.stamps, day.balances.points) == (16, 265)
    assert day.as_of == datetime(2025, 3, 14, 22, 59, 59, 999999, tzinfo=UTC)
    # 15 March at noon UTC: the stamp reward (09:00) is in, the points reward (15:00) not yet.
    noon = await balances_as_of(db, m, utc(3, 15, 12))
    assert (noon.balances.stamps, noon.balances.points) == (6, 265)
    end = await balances_as_of(db, m, date(2025, 3, 15))
    assert (end.balances.stamps, end.balances.points) == (6, 165)
    # Now: the same as today's figures.
    now = await balances_as_of(db, m, NOW)
    assert now.balances == (await merchant_stats(db, m, at=NOW)).balances
    before = await balances_as_of(db, m, date(2024, 12, 31))
    assert before.balances == Balances()
    of_program = await balances_as_of(db, m, date(2025, 3, 14), program_id=cafe.program.id)
    assert (of_program.program_id, of_program.balances) == (cafe.program.id, day.balances)


async def test_a_local_day_is_the_merchants(db: AsyncSession) -> None:
    m = await f.merchant(db, "late", timezone="Europe/Luxembourg")
    p = await f.program(db, m, stamps_target=10, stamps_reward_value_cents=100)
    card = await f.card(db, m, p, stamp_count=1)
    # 23:30 UTC on 31 March is 01:30 on 1 April in Luxembourg (summer time since 30 March).
    await f.entry(db, card, T.STAMP_EARNED, datetime(2025, 3, 31, 23, 30, tzinfo=UTC), stamps=1)
    await db.commit()

    march = await balances_as_of(db, m.id, date(2025, 3, 31))
    april = await balances_as_of(db, m.id, date(2025, 4, 1))
    assert (march.balances.stamps, april.balances.stamps) == (0, 1)
    series = await daily_series(db, m.id, 3, at=datetime(2025, 4, 2, 9, tzinfo=UTC))
    assert [(p.day.day, p.stamps_issued, p.balances.stamps) for p in series] == [
        (31, 0, 0),
        (1, 1, 1),
        (2, 0, 1),
    ]


async def test_the_daily_series_agrees_with_the_ledger_day_by_day(db: AsyncSession) -> None:
    cafe = await _cafe(db)
    m = cafe.merchant.id

    series = await daily_series(db, m, 10, at=NOW)

    assert [p.day for p in series] == [date(2025, 3, 11) + timedelta(days=i) for i in range(10)]
    by_day = {p.day: p for p in series}
    assert (by_day[date(2025, 3, 12)].stamps_issued, by_day[date(2025, 3, 12)].ledger_events) == (
        7,
        1,
    )
    mid = by_day[date(2025, 3, 15)]
    assert (mid.stamps_redeemed, mid.points_redeemed, mid.stamps_issued) == (10, 100, 0)
    assert by_day[date(2025, 3, 20)].points_issued == 50  # c5's welcome bonus
    for point in series:
        assert point.balances == (await balances_as_of(db, m, point.day)).balances
    assert series[-1].balances == (await merchant_stats(db, m, at=NOW)).balances
    assert series[-1].balances.liability_cents == 388


async def test_program_stats_cover_the_programs_cards_only(db: AsyncSession) -> None:
    cafe = await _cafe(db)
    other = await _cafe(db, "other")
    await soft_delete(db, LoyaltyCard, [other.cards["c1"].id], by="test")
    await db.commit()

    stats = await program_stats(db, cafe.program.id, at=NOW)
    whole = await merchant_stats(db, cafe.merchant.id, at=NOW)

    assert (stats.program_id, stats.merchant_id, stats.today) == (
        cafe.program.id,
        cafe.merchant.id,
        date(2025, 3, 20),
    )
    assert (stats.cards, stats.activity, stats.balances) == (
        whole.cards,
        whole.activity,
        whole.balances,
    )
    with pytest.raises(StatsNotFound):
        await program_stats(db, 10_000, at=NOW)


async def test_platform_stats_add_up_the_live_merchants(db: AsyncSession) -> None:
    cafe = await _cafe(db)
    other = await _cafe(db, "other")
    gone = await _cafe(db, "gone")
    await soft_delete(db, Merchant, [gone.merchant.id], by="test")
    await db.commit()

    stats = await platform_stats(db, at=NOW)

    one = await merchant_stats(db, cafe.merchant.id, at=NOW)
    assert (stats.merchants, stats.stores) == (2, 4)
    assert [line.merchant_code for line in stats.by_merchant] == ["cafe", "other"]
    assert stats.by_merchant[1].merchant_id == other.merchant.id
    assert stats.cards == CardCounts(*(2 * v for v in (4, 3, 2, 2)))
    assert stats.activity.stamps_issued == 2 * one.activity.stamps_issued
    assert stats.activity.ledger_events_last_30_days == 28
    assert stats.balances.liability_cents == 2 * 388 - 1  # 775: 2 x 387.5, rounded once
    assert stats.averages == one.averages


async def test_an_unknown_or_deleted_merchant_has_no_stats(db: AsyncSession) -> None:
    cafe = await _cafe(db)
    await soft_delete(db, Merchant, [cafe.merchant.id], by="test")
    await db.commit()
    for call in (
        merchant_stats(db, cafe.merchant.id, at=NOW),
        daily_series(db, cafe.merchant.id, 7, at=NOW),
        balances_as_of(db, cafe.merchant.id, NOW),
        merchant_stats(db, 10_000, at=NOW),
    ):
        with pytest.raises(StatsNotFound):
            await call


async def test_a_restored_card_counts_again(db: AsyncSession) -> None:
    cafe = await _cafe(db)
    await restore(db, LoyaltyCard, [cafe.cards["c4"].id])
    await db.commit()

    stats = await merchant_stats(db, cafe.merchant.id, at=NOW)

    assert (stats.cards.total, stats.balances.stamps, stats.balances.points) == (5, 10, 255)


async def test_the_number_of_queries_does_not_grow_with_the_stores(
    db: AsyncSession, db_engine: AsyncEngine
) -> None:
    few = await _cafe(db, "few")
    many = await _cafe(db, "many")
    for n in range(30):
        extra = await f.store(db, many.merchant, f"many-X{n}")
        card = await f.card(db, many.merchant, many.program, at=extra)
        await f.entry(db, card, T.STAMP_EARNED, utc(3, 3), stamps=1, at=extra)
    await db.commit()
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(db_engine.sync_engine, "before_cursor_execute", count)
    try:
        await merchant_stats(db, few.merchant.id, at=NOW)
        for_few = len(statements)
        statements.clear()
        stats = await merchant_stats(db, many.merchant.id, at=NOW)
    finally:
        event.remove(db_engine.sync_engine, "before_cursor_execute", count)

    assert len(stats.stores) == 33
    assert len(statements) == for_few == 5


# -- the summary tables ----------------------------------------------------------------------


async def _summaries(db: AsyncSession, until: date) -> tuple[list[Any], list[Any], list[Any]]:
    """The ledger totals; the card counts by day of creation; and, per key, the cards whose last
    activity falls in the 30 days up to ``until`` (the one window the statistics read)."""
    ledger = (
        await db.execute(
            select(LedgerDailyTotal.__table__).order_by(*LedgerDailyTotal.__table__.primary_key)
        )
    ).all()
    c = CardDailyCount
    created = (
        await db.execute(
            select(c.merchant_id, c.program_id, c.store_id, c.day, c.cards_created,
                   c.active_cards_created)
            .where((c.cards_created != 0) | (c.active_cards_created != 0))
            .order_by(c.merchant_id, c.program_id, c.store_id, c.day)
        )
    ).all()  # fmt: skip
    recent = (
        await db.execute(
            select(c.merchant_id, c.program_id, c.store_id, func.sum(c.last_active_cards))
            .where(c.day > until - timedelta(days=30), c.day <= until)
            .group_by(c.merchant_id, c.program_id, c.store_id)
            .having(func.sum(c.last_active_cards) != 0)
            .order_by(c.merchant_id, c.program_id, c.store_id)
        )
    ).all()
    return list(ledger), list(created), list(recent)


async def _assert_summaries_match_a_rebuild(db: AsyncSession, *windows: date) -> None:
    kept = [await _summaries(db, until) for until in windows]
    await rebuild_summaries(db)
    rebuilt = [await _summaries(db, until) for until in windows]
    assert kept == rebuilt
    assert [len(part) > 0 for part in rebuilt[0]] == [True, True, True]


async def test_the_triggers_keep_the_summaries_equal_to_a_rebuild(db: AsyncSession) -> None:
    await _cafe(db)
    await _cafe(db, "other")
    await _assert_summaries_match_a_rebuild(db, date(2025, 3, 20), date(2025, 4, 15))


async def test_an_old_last_activity_day_is_left_for_a_new_one_without_an_update(
    db: AsyncSession,
) -> None:
    """The count moves off an old day only when it is within 30 days of the new one."""
    m = await f.merchant(db, "back", timezone="UTC")
    p = await f.program(db, m)
    recent = await f.card(db, m, p, last_activity_at=utc(3, 1))
    returning = await f.card(db, m, p, last_activity_at=utc(1, 2))
    await db.execute(
        update(LoyaltyCard)
        .where(LoyaltyCard.id.in_([recent.id, returning.id]))
        .values(last_activity_at=utc(3, 20))
        .execution_options(synchronize_session=False)
    )
    counts = dict(
        (await db.execute(
            select(CardDailyCount.day, CardDailyCount.last_active_cards)
            .where(CardDailyCount.merchant_id == m.id, CardDailyCount.last_active_cards != 0)
        )).all()
    )  # fmt: skip

    assert counts == {date(2025, 1, 2): 1, date(2025, 3, 20): 2}
    stats = await merchant_stats(db, m.id, at=utc(3, 20, 12))
    assert stats.cards.active_last_30_days == 2


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_writes_keep_the_summaries_equal_to_a_rebuild(
    db: AsyncSession, seed: int
) -> None:
    rng = random.Random(seed)
    merchants = [await f.merchant(db, f"m{i}", timezone=tz) for i, tz in
                 enumerate(["Europe/Luxembourg", "America/New_York", "Asia/Tokyo"])]  # fmt: skip
    programs = {m.id: await f.program(db, m) for m in merchants}
    stores = {m.id: [await f.store(db, m, f"{m.code}-{k}") for k in range(2)] for m in merchants}
    cards: list[LoyaltyCard] = []
    clock = datetime(2025, 1, 1, tzinfo=UTC)

    def moment() -> datetime:
        # Mostly now, sometimes a little or a long while ago (late events, replays).
        back = rng.choice([0, 0, 0, 90, 600, 60 * 24 * 45])
        return clock - timedelta(minutes=rng.randrange(0, back + 1))

    for _ in range(80):
        clock += timedelta(minutes=rng.randrange(0, 36 * 60))
        op = rng.choice(["card", "card", "ledger", "ledger", "touch", "flip", "delete", "restore"])
        if op == "card" or not cards:
            m = rng.choice(merchants)
            cards.append(
                await f.card(
                    db, m, programs[m.id], at=rng.choice([*stores[m.id], None]),
                    created_at=moment(), last_activity_at=rng.choice([None, moment()]),
                    is_active=rng.random() < 0.8,
                )
            )  # fmt: skip
        elif op == "ledger":
            # One multi-row INSERT statement, as the engine's COPY of a batch.
            picked = rng.sample(cards, min(len(cards), 5))
            await db.execute(
                insert(LedgerEntry),
                [
                    {
                        "card_id": c.id,
                        "merchant_id": c.merchant_id,
                        "store_id": rng.choice([c.store_id, None]),
                        "entry_type": rng.choice(list(T)),
                        "stamps_delta": rng.randint(-3, 5),
                        "points_delta": rng.randint(-50, 200),
                        "stamp_count_after": 0,
                        "points_balance_after": 0,
                        "occurred_at": moment(),
                    }
                    for c in picked
                ],
            )
        elif op == "touch":
            ids = [c.id for c in rng.sample(cards, min(len(cards), 4))]
            await db.execute(
                update(LoyaltyCard)
                .where(LoyaltyCard.id.in_(ids))
                .values(last_activity_at=moment(), stamp_count=LoyaltyCard.stamp_count + 1)
                .execution_options(include_deleted=True, synchronize_session=False)
            )
        elif op == "flip":
            card = rng.choice(cards)
            await db.execute(
                update(LoyaltyCard)
                .where(LoyaltyCard.id == card.id)
                .values(is_active=~LoyaltyCard.is_active)
                .execution_options(include_deleted=True, synchronize_session=False)
            )
        elif op == "delete":
            await soft_delete(db, LoyaltyCard, [rng.choice(cards).id], by="test")
        else:
            await restore(db, LoyaltyCard, [rng.choice(cards).id])
    # A merchant replacing its program: history spans two programs, each entry keeps its own.
    third = merchants[2]
    await soft_delete(db, LoyaltyProgram, [programs[third.id].id], by="test")
    renewed = await f.program(db, third)
    fresh = await f.card(db, third, renewed, created_at=clock, last_activity_at=clock)
    await f.entry(db, fresh, T.STAMP_EARNED, clock, stamps=1)
    # Windows ending after the last activity written (in any time zone): the ones read.
    after = (clock + timedelta(days=1)).date()
    # A merchant moving to another time zone moves its days (a trigger rebuilds its rows).
    await db.execute(
        update(Merchant).where(Merchant.id == merchants[0].id).values(timezone="Pacific/Auckland")
    )
    await soft_delete(db, Merchant, [merchants[1].id], by="test")

    await _assert_summaries_match_a_rebuild(
        db, after, after + timedelta(days=10), after + timedelta(days=29)
    )


async def test_a_new_time_zone_moves_the_merchants_days(db: AsyncSession) -> None:
    m = await f.merchant(db, "mover", timezone="UTC")
    p = await f.program(db, m)
    card = await f.card(db, m, p)
    await f.entry(db, card, T.STAMP_EARNED, datetime(2025, 3, 1, 23, tzinfo=UTC), stamps=1)
    days = select(LedgerDailyTotal.day).where(LedgerDailyTotal.merchant_id == m.id)
    assert (await db.scalars(days)).all() == [date(2025, 3, 1)]

    m.timezone = "Europe/Luxembourg"
    await db.flush()

    assert (await db.scalars(days)).all() == [date(2025, 3, 2)]
