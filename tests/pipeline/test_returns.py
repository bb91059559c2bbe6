"""Stories of ``purchase.returned``: proportional voids, shortfalls, returns held for their order.

Returns name the card here (so they share the purchase's key and partition, and arrive after
it), except the held one, which is keyed by its order reference on purpose.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.pipeline.stories import (
    T0,
    check_result,
    enrol,
    outcome,
    outcomes,
    purchase,
    redeem,
    refund,
    send,
    summary,
)
from tests.support.pipeline import Bus
from tests.support.seed import seed_merchant

Sessions = async_sessionmaker[AsyncSession]


async def test_partial_refunds_void_in_proportion_to_everything_refunded(
    bus: Bus, sessions: Sessions
) -> None:
    async with sessions() as s:
        _, stores, _ = await seed_merchant(s, points_per_euro=10)
    shop = stores[0].code
    card = await enrol(bus, shop)
    bought = purchase(shop, card, 1000, stamps=4)
    order = bought["order_reference"]
    results = await outcomes(
        bus,
        bought,
        refund(shop, order, 300, T0 + timedelta(days=1), card=card),
        refund(shop, order, 450, T0 + timedelta(days=2), card=card),
    )
    # 4 stamps and 100 points; 300 of 1000 refunded voids floor(1.2) = 1 stamp and 30 points;
    # 750 of 1000 voids floor(3.0) = 3 stamps and 75 points in all, so 2 and 45 more.
    assert [summary(r) for r in results] == [
        ("applied", [], 4, 100),
        ("applied", [], -1, -30),
        ("applied", [], -2, -45),
    ]
    assert (results[-1]["stamp_count"], results[-1]["points_balance"]) == (1, 25)


async def test_a_refund_over_the_amount_is_capped_at_it(bus: Bus, sessions: Sessions) -> None:
    async with sessions() as s:
        _, stores, _ = await seed_merchant(s, points_per_euro=10)
    shop = stores[0].code
    card = await enrol(bus, shop)
    bought = purchase(shop, card, 1000, stamps=2)
    order = bought["order_reference"]
    _, too_much, more = await outcomes(
        bus,
        bought,
        refund(shop, order, 1200, card=card),
        refund(shop, order, 100, card=card),
    )
    assert summary(too_much) == ("applied", ["refund_exceeds_purchase"], -2, -100)
    assert summary(more) == ("rejected", ["refund_exceeds_purchase"], 0, 0)
    assert (more["stamp_count"], more["points_balance"]) == (0, 0)


async def test_what_was_already_spent_is_a_shortfall(bus: Bus, sessions: Sessions) -> None:
    async with sessions() as s:
        _, stores, _ = await seed_merchant(s, stamps_target=2, rewards={"coffee": 60})
    shop = stores[0].code
    card = await enrol(bus, shop)
    bought = purchase(shop, card, 1000, stamps=2)
    results = await outcomes(
        bus,
        bought,
        redeem(shop, card, {"kind": "stamps"}),
        redeem(shop, card, {"kind": "points", "reward_id": "coffee"}),
        refund(shop, bought["order_reference"], 1000, card=card),
    )
    spent_stamps, spent_points, returned = results[1:]
    assert summary(spent_stamps)[0] == summary(spent_points)[0] == "applied"
    # 2 stamps and 100 points to void, but the card holds 0 stamps and 40 points.
    status, reasons, stamps, points = summary(returned)
    assert (status, sorted(reasons), stamps, points) == (
        "applied",
        ["points_shortfall", "stamps_shortfall"],
        0,
        -40,
    )
    assert (returned["stamp_count"], returned["points_balance"]) == (0, 0)


async def test_a_return_before_its_purchase_is_held_then_applied(
    bus: Bus, sessions: Sessions
) -> None:
    async with sessions() as s:
        merchant, stores, _ = await seed_merchant(s, points_per_euro=10)
    shop = stores[0].code
    card = await enrol(bus, shop)
    bought = purchase(shop, card, 2000, T0 + timedelta(minutes=5), stamps=2)
    early = refund(shop, bought["order_reference"], 1000, T0 + timedelta(minutes=10))

    held = await outcome(bus, early)
    assert summary(held) == ("held", ["purchase_not_seen_yet"], 0, 0)
    assert (held["merchant_code"], held["card_number"]) == (merchant.code, None)

    await send(bus, bought)
    (paid,) = (await bus.wait_results([bought["event_id"]]))[bought["event_id"]]
    assert summary(check_result(paid)) == ("applied", [], 2, 200)
    first, applied = (await bus.wait_results([early["event_id"]], per_event=2))[early["event_id"]]
    assert first["event_id"] == held["event_id"]
    assert summary(check_result(applied)) == ("applied", [], -1, -100)
    assert (applied["card_number"], applied["points_balance"]) == (card, 100)
    await bus.read_to_end()
    assert len(bus.distinct_results(early["event_id"])) == 2
    assert len(bus.distinct_results(bought["event_id"])) == 1
