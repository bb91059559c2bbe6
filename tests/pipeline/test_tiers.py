"""The story of tiers (CONTRACT.md 7.4, 7.5) against the real pipeline: up as soon as the
qualifying points reach a tier, earning with its multiplier from then on, returns taking
their points back, and down only at the daily run after the grace days."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.audit import run_audit
from domain.models import ProgramType
from tests.pipeline.stories import T0, enrolment, event, outcome, purchase, refund
from tests.support.pipeline import Bus
from tests.support.seed import seed_merchant

Sessions = async_sessionmaker[AsyncSession]
TIERS = [
    {"id": "member", "name": "Member", "threshold_points": 0, "multiplier": 1},
    {"id": "silver", "name": "Silver", "threshold_points": 300, "multiplier": 1.5},
    {"id": "gold", "name": "Gold", "threshold_points": 1000, "multiplier": 2},
]


def tier_of(result: dict[str, Any]) -> tuple[str, int | None]:
    """A result's tier and points to the next one."""
    return result["tier"], result["points_to_next_tier"]


async def test_a_card_moves_up_at_once_earns_with_its_tier_and_down_after_the_grace_days(
    bus: Bus, sessions: Sessions, database_url: str
) -> None:
    async with sessions() as s:
        merchant, stores, _ = await seed_merchant(
            s, type=ProgramType.POINTS, tiers=TIERS, tier_grace_days=10
        )
    shop = stores[0].code
    enrolled = await outcome(bus, enrolment(shop))
    card = enrolled["card_number"]
    assert tier_of(enrolled) == ("member", 300)

    first = purchase(shop, card, 2000, T0)
    assert tier_of(await outcome(bus, first)) == ("member", 100)
    up = await outcome(bus, purchase(shop, card, 1500, T0 + timedelta(hours=1)))
    assert (up["points_delta"], *tier_of(up)) == (150, "silver", 650)
    # From then on it earns with Silver's multiplier: 100 points x 1.5.
    silver = await outcome(bus, purchase(shop, card, 1000, T0 + timedelta(hours=2)))
    assert (silver["points_delta"], *tier_of(silver)) == (150, "silver", 500)
    # The first purchase returned: its 200 points no longer qualify (300 left: still Silver).
    back = await outcome(bus, refund(shop, first["order_reference"], 2000, T0 + timedelta(hours=3)))
    assert (back["points_delta"], *tier_of(back)) == (-200, "silver", 700)

    year_later = T0 + timedelta(days=366)
    run = await outcome(bus, _run(merchant.code, year_later))
    assert run["tiers_changed"] == 0  # below Silver now, but within its 10 grace days
    run = await outcome(bus, _run(merchant.code, year_later + timedelta(days=9)))
    assert run["tiers_changed"] == 0
    run = await outcome(bus, _run(merchant.code, year_later + timedelta(days=10)))
    assert run["tiers_changed"] == 1

    await bus.read_to_end()
    moves = [
        (n["from_tier"], n["to_tier"])
        for n in {n["event_id"]: n for n in bus.notifications[card]}.values()
        if n["type"] == "tier.changed"
    ]
    assert moves == [("member", "silver"), ("silver", "member")]
    conn = await asyncpg.connect(database_url)
    try:
        history = await conn.fetch(
            "SELECT from_tier, to_tier FROM tier_changes t JOIN loyalty_cards c"
            " ON c.id = t.card_id WHERE c.card_number = $1 ORDER BY t.id",
            card,
        )
        assert [tuple(r) for r in history] == [
            (None, "member"),
            ("member", "silver"),
            ("silver", "member"),
        ]
        tier = await conn.fetchval("SELECT tier FROM loyalty_cards WHERE card_number = $1", card)
        assert tier == "member"
        report = await run_audit(conn, merchant_code=merchant.code)
        assert report.clean, [str(d) for d in report.differences]
    finally:
        await conn.close()


def _run(merchant_code: str, at: Any) -> dict[str, Any]:
    return event("expiry.run_requested", None, at, merchant_code=merchant_code)


async def test_a_program_without_tiers_reports_none(bus: Bus, sessions: Sessions) -> None:
    async with sessions() as s:
        _, stores, _ = await seed_merchant(s, type=ProgramType.POINTS)
    shop = stores[0].code
    enrolled = await outcome(bus, enrolment(shop))
    bought = await outcome(bus, purchase(shop, enrolled["card_number"], 1000, T0))
    assert "tier" not in bought and "points_to_next_tier" not in bought
