"""The story of ``expiry.run_requested``: idle points expire once, whatever the redeliveries."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.models import ProgramType
from tests.pipeline.stories import T0, enrol, event, outcome, outcomes, purchase, wallet_updates
from tests.support.pipeline import Bus
from tests.support.seed import seed_merchant

Sessions = async_sessionmaker[AsyncSession]


def expiry_run(merchant_code: str, as_of: timedelta) -> dict[str, Any]:
    """A run for one merchant as of ``T0 + as_of``."""
    return event("expiry.run_requested", None, T0 + as_of, merchant_code=merchant_code)


async def test_idle_points_expire_once_and_a_replayed_run_changes_nothing(
    bus: Bus, sessions: Sessions, database_url: str
) -> None:
    async with sessions() as s:
        merchant, stores, _ = await seed_merchant(
            s, type=ProgramType.POINTS, points_per_euro=10, points_expiration_days=30
        )
    shop = stores[0].code
    idle, busy = await enrol(bus, shop), await enrol(bus, shop)
    await outcomes(
        bus,
        purchase(shop, idle, 1000, T0),
        purchase(shop, busy, 500, T0 + timedelta(days=20)),
    )

    run = expiry_run(merchant.code, timedelta(days=40))
    result = await outcome(bus, run)
    assert (result["status"], result["reasons"]) == ("applied", [])
    assert (result["cards_expired"], result["points_expired"]) == (1, 100)
    assert (result["merchant_code"], result["store_code"]) == (merchant.code, None)

    # The same run again (a redelivery, an operator's second click): the same event id.
    await bus.publish("loyalty.expiry.v1", run, merchant.code)
    # A later run on the same key comes after it on the same partition: once it is answered,
    # the replay has been seen too. 50 days after the last purchase, the second card goes.
    later = await outcome(bus, expiry_run(merchant.code, timedelta(days=71)))
    assert (later["cards_expired"], later["points_expired"]) == (1, 50)
    await bus.read_to_end()
    assert len(bus.distinct_results(run["event_id"])) == 1

    updates = wallet_updates(bus, idle)
    expired = [w for w in updates if w["reason"] == "points_expired"]
    assert [(w["points_balance"], w["source_event_id"]) for w in expired] == [(0, run["event_id"])]
    assert [w["version"] for w in updates] == sorted({w["version"] for w in updates})
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT l.points_delta FROM ledger_entries l JOIN loyalty_cards c ON c.id = l.card_id"
            " WHERE c.card_number = $1 AND l.entry_type = 'points_expired'",
            idle,
        )
        balance = await conn.fetchval(
            "SELECT points_balance FROM loyalty_cards WHERE card_number = $1", idle
        )
    finally:
        await conn.close()
    assert [r["points_delta"] for r in rows] == [-100]
    assert balance == 0


async def test_a_run_with_nothing_idle_changes_nothing(bus: Bus, sessions: Sessions) -> None:
    async with sessions() as s:
        merchant, stores, _ = await seed_merchant(s, points_expiration_days=30)
    card = await enrol(bus, stores[0].code)
    await outcome(bus, purchase(stores[0].code, card, 1000))
    result = await outcome(bus, expiry_run(merchant.code, timedelta(days=29)))
    assert (result["status"], result["cards_expired"], result["points_expired"]) == (
        "rejected",
        0,
        0,
    )
