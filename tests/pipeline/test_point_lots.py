"""Stories of pending points, point lots and expiry policies (CONTRACT.md 7.2, 7.3, 7.5)
against the real pipeline: Kafka in, worker, PostgreSQL, relay, Kafka out. Each ends with a
clean ``loyalty audit`` of its merchant, lots included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.enums import ExpiryPolicy
from domain.audit import run_audit
from domain.models import LoyaltyProgram, ProgramType
from tests.pipeline.stories import (
    T0,
    enrol,
    event,
    outcome,
    purchase,
    redeem,
    refund,
    summary,
    wallet_updates,
)
from tests.support.pipeline import Bus
from tests.support.seed import seed_merchant

Sessions = async_sessionmaker[AsyncSession]
COFFEE = {"kind": "points", "reward_id": "coffee"}


def daily_run(merchant_code: str, at: datetime) -> dict[str, Any]:
    """An ``expiry.run_requested`` for one merchant at ``at``."""
    return event("expiry.run_requested", None, at, merchant_code=merchant_code)


async def _clean(database_url: str, merchant_code: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        report = await run_audit(conn, merchant_code=merchant_code)
        assert report.clean, [str(d) for d in report.differences]
    finally:
        await conn.close()


def notices(bus: Bus, card: str, kind: str) -> list[dict[str, Any]]:
    """A card's notifications of one type read so far, each once."""
    seen = {n["event_id"]: n for n in bus.notifications[card] if n["type"] == kind}
    return list(seen.values())


async def test_pending_points_are_spendable_only_after_their_release_and_a_return_voids_them_first(
    bus: Bus, sessions: Sessions, database_url: str
) -> None:
    async with sessions() as s:
        merchant, stores, _ = await seed_merchant(
            s, type=ProgramType.POINTS, pending_days=14, rewards={"coffee": 100}
        )
    shop = stores[0].code
    card = await enrol(bus, shop)
    buy = purchase(shop, card, 2000, T0)
    bought = await outcome(bus, buy)
    # Earned and reported, but pending: not in the spendable balance.
    assert summary(bought) == ("applied", [], 0, 200)
    assert (bought["points_balance"], bought["points_pending"]) == (0, 200)

    early = await outcome(bus, redeem(shop, card, COFFEE, T0 + timedelta(days=1)))
    assert (early["status"], early["reasons"]) == ("rejected", ["insufficient_points"])

    # A return inside the window voids the purchase's own pending points: no shortfall.
    returned = await outcome(bus, refund(shop, buy["order_reference"], 500, T0 + timedelta(days=2)))
    assert summary(returned) == ("applied", [], 0, -50)
    assert (returned["points_balance"], returned["points_pending"]) == (0, 150)

    # After the release time, before any daily run: judged at the event's time, it may spend.
    late = await outcome(bus, redeem(shop, card, COFFEE, T0 + timedelta(days=15)))
    assert summary(late) == ("applied", [], 0, -100)
    assert (late["points_balance"], late["points_pending"]) == (50, 0)

    run = await outcome(bus, daily_run(merchant.code, T0 + timedelta(days=16)))
    assert run["points_released"] == 0  # released already, by the redemption
    await bus.read_to_end()
    reasons = [w["reason"] for w in wallet_updates(bus, card)]
    assert reasons[-2:] == ["points_released", "points_redeemed"]
    await _clean(database_url, merchant.code)


async def test_the_daily_run_releases_due_points_once_and_tells_of_an_affordable_reward(
    bus: Bus, sessions: Sessions, database_url: str
) -> None:
    async with sessions() as s:
        merchant, stores, _ = await seed_merchant(
            s, type=ProgramType.POINTS, pending_days=7, rewards={"coffee": 100}
        )
    shop = stores[0].code
    card = await enrol(bus, shop)
    await outcome(bus, purchase(shop, card, 1500, T0))
    before = await outcome(bus, daily_run(merchant.code, T0 + timedelta(days=6)))
    assert (before["status"], before["points_released"]) == ("rejected", 0)
    run = await outcome(bus, daily_run(merchant.code, T0 + timedelta(days=7)))
    assert (run["status"], run["points_released"]) == ("applied", 150)
    again = await outcome(bus, daily_run(merchant.code, T0 + timedelta(days=7)))
    assert (again["status"], again["points_released"]) == ("rejected", 0)
    await bus.read_to_end()
    released = [w for w in wallet_updates(bus, card) if w["reason"] == "points_released"]
    assert [(w["points_balance"], w["points_pending"]) for w in released] == [(150, 0)]
    assert [n["reward"] for n in notices(bus, card, "reward.available")] == ["coffee"]
    await _clean(database_url, merchant.code)


async def test_rolling_expiry_spends_the_oldest_lots_first_and_expires_only_what_is_due(
    bus: Bus, sessions: Sessions, database_url: str
) -> None:
    async with sessions() as s:
        merchant, stores, _ = await seed_merchant(
            s,
            type=ProgramType.POINTS,
            expiry_policy=ExpiryPolicy.ROLLING,
            points_expiration_days=30,
            expiry_reminder_days=7,
            rewards={"coffee": 100},
        )
    shop = stores[0].code
    card = await enrol(bus, shop)
    first = await outcome(bus, purchase(shop, card, 1000, T0))
    assert first["next_expiry"] == {"points": 100, "at": (T0 + timedelta(days=30)).isoformat()}
    await outcome(bus, purchase(shop, card, 500, T0 + timedelta(days=20)))
    spent = await outcome(bus, redeem(shop, card, COFFEE, T0 + timedelta(days=21)))
    # The first purchase's lot, due first, paid for the coffee; the second's is next.
    assert spent["next_expiry"] == {"points": 50, "at": (T0 + timedelta(days=50)).isoformat()}

    reminded = await outcome(bus, daily_run(merchant.code, T0 + timedelta(days=44)))
    assert reminded["reminders_sent"] == 1
    again = await outcome(bus, daily_run(merchant.code, T0 + timedelta(days=45)))
    assert again["reminders_sent"] == 0  # once per card and expiry date
    kept = await outcome(bus, daily_run(merchant.code, T0 + timedelta(days=49, hours=23)))
    assert (kept["cards_expired"], kept["points_expired"]) == (0, 0)
    gone = await outcome(bus, daily_run(merchant.code, T0 + timedelta(days=50)))
    assert (gone["cards_expired"], gone["points_expired"]) == (1, 50)
    await bus.read_to_end()
    (expiring,) = notices(bus, card, "points.expiring")
    assert (expiring["points"], expiring["merchant_code"]) == (50, merchant.code)
    assert datetime.fromisoformat(expiring["expires_at"]) == T0 + timedelta(days=50)
    expired = [w for w in wallet_updates(bus, card) if w["reason"] == "points_expired"]
    assert [w["points_balance"] for w in expired] == [0]
    await _clean(database_url, merchant.code)


async def test_calendar_year_points_expire_at_the_end_of_the_following_year_local_time(
    bus: Bus, sessions: Sessions, database_url: str
) -> None:
    async with sessions() as s:
        merchant, stores, _ = await seed_merchant(
            s,
            type=ProgramType.POINTS,
            expiry_policy=ExpiryPolicy.CALENDAR_YEAR,
            expiry_reminder_days=0,
        )
    shop = stores[0].code
    card = await enrol(bus, shop)
    bought = await outcome(bus, purchase(shop, card, 1000, T0))  # November 2026
    # The end of 2027 in Luxembourg: 2028-01-01 00:00 CET is 2027-12-31 23:00 UTC.
    year_end = datetime(2027, 12, 31, 23, 0, tzinfo=UTC)
    assert bought["next_expiry"]["points"] == 100
    assert datetime.fromisoformat(bought["next_expiry"]["at"]) == year_end
    kept = await outcome(bus, daily_run(merchant.code, year_end - timedelta(minutes=1)))
    assert kept["points_expired"] == 0
    gone = await outcome(bus, daily_run(merchant.code, year_end))
    assert (gone["cards_expired"], gone["points_expired"]) == (1, 100)
    await _clean(database_url, merchant.code)


async def test_a_change_of_policy_applies_to_points_earned_afterwards(
    bus: Bus, sessions: Sessions, database_url: str
) -> None:
    async with sessions() as s:
        merchant, stores, program = await seed_merchant(
            s, type=ProgramType.POINTS, points_expiration_days=30, expiry_reminder_days=0
        )
    shop = stores[0].code
    card = await enrol(bus, shop)
    await outcome(bus, purchase(shop, card, 1000, T0))  # kept by inactivity
    async with sessions() as s:
        await s.execute(
            update(LoyaltyProgram)
            .where(LoyaltyProgram.id == program.id)
            .values(expiry_policy=ExpiryPolicy.ROLLING)
        )
        await s.commit()
    await outcome(bus, purchase(shop, card, 500, T0 + timedelta(days=20)))  # rolling
    # Day 41: the rolling lot (day 20 + 30 = day 50) stays; the card is not idle (day 20).
    run = await outcome(bus, daily_run(merchant.code, T0 + timedelta(days=41)))
    assert run["points_expired"] == 0
    # Day 50: the rolling lot's date; the inactivity lot stays while the card is not idle.
    run = await outcome(bus, daily_run(merchant.code, T0 + timedelta(days=50)))
    assert run["points_expired"] == 50
    # Day 51: idle for 31 days now: the first purchase's points go too.
    run = await outcome(bus, daily_run(merchant.code, T0 + timedelta(days=51)))
    assert run["points_expired"] == 100
    await _clean(database_url, merchant.code)
