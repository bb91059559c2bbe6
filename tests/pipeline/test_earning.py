"""Stories of ``purchase.completed``: what a purchase earns, and every rule that refuses it."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.models import LoyaltyCard, ProgramType
from tests.pipeline.stories import T0, enrol, outcome, outcomes, purchase, summary
from tests.support.pipeline import Bus
from tests.support.seed import seed_merchant

Sessions = async_sessionmaker[AsyncSession]


async def test_a_hybrid_purchase_earns_stamps_and_points(bus: Bus, sessions: Sessions) -> None:
    async with sessions() as s:
        merchant, stores, _ = await seed_merchant(s, points_per_euro=10, stamps_target=8)
    card = await enrol(bus, stores[0].code)
    result = await outcome(bus, purchase(stores[0].code, card, 1299, stamps=2))
    assert summary(result) == ("applied", [], 2, 129)
    assert (result["stamp_count"], result["stamps_target"], result["points_balance"]) == (2, 8, 129)
    assert (result["merchant_code"], result["card_number"]) == (merchant.code, card)


async def test_another_currency_is_unsupported_currency(bus: Bus, sessions: Sessions) -> None:
    async with sessions() as s:
        _, stores, _ = await seed_merchant(s, currency="EUR")
    card = await enrol(bus, stores[0].code)
    result = await outcome(bus, purchase(stores[0].code, card, 1000, currency="USD"))
    assert summary(result) == ("rejected", ["unsupported_currency"], 0, 0)
    assert (result["stamp_count"], result["points_balance"]) == (0, 0)


async def test_a_small_purchase_is_below_minimum_purchase(bus: Bus, sessions: Sessions) -> None:
    async with sessions() as s:
        _, stores, _ = await seed_merchant(s, minimum_purchase_cents=500)
    card = await enrol(bus, stores[0].code)
    small, enough = await outcomes(
        bus, purchase(stores[0].code, card, 499), purchase(stores[0].code, card, 500)
    )
    assert summary(small) == ("rejected", ["below_minimum_purchase"], 0, 0)
    assert summary(enough) == ("applied", [], 1, 50)


async def test_a_stamp_within_the_cooldown_is_refused_but_the_points_count(
    bus: Bus, sessions: Sessions
) -> None:
    async with sessions() as s:
        _, stores, _ = await seed_merchant(s, cooldown_minutes=15)
    shop = stores[0].code
    card = await enrol(bus, shop)
    first, soon, later = await outcomes(
        bus,
        purchase(shop, card, 1000, T0),
        purchase(shop, card, 1000, T0 + timedelta(minutes=14)),
        purchase(shop, card, 1000, T0 + timedelta(minutes=15)),
    )
    assert summary(first) == ("applied", [], 1, 100)
    assert summary(soon) == ("applied", ["stamp_cooldown"], 0, 100)
    assert summary(later) == ("applied", [], 1, 100)
    assert (later["stamp_count"], later["points_balance"]) == (2, 300)


async def test_in_a_stamps_program_a_cooldown_stamp_is_rejected(
    bus: Bus, sessions: Sessions
) -> None:
    async with sessions() as s:
        _, stores, _ = await seed_merchant(s, type=ProgramType.STAMPS, cooldown_minutes=30)
    shop = stores[0].code
    card = await enrol(bus, shop)
    _, soon = await outcomes(
        bus,
        purchase(shop, card, 1000, T0),
        purchase(shop, card, 1000, T0 + timedelta(minutes=1)),
    )
    assert summary(soon) == ("rejected", ["stamp_cooldown"], 0, 0)
    assert (soon["stamp_count"], soon["stamps_target"]) == (1, 10)


async def test_the_daily_stamp_limit_counts_the_merchants_calendar_day(
    bus: Bus, sessions: Sessions
) -> None:
    # Luxembourg is UTC+1 in November: 23:05 UTC on the 2nd is already the 3rd there.
    async with sessions() as s:
        _, stores, _ = await seed_merchant(
            s, type=ProgramType.STAMPS, max_daily_stamps=2, timezone="Europe/Luxembourg"
        )
    shop = stores[0].code
    card = await enrol(bus, shop)
    evening = T0.replace(hour=22, minute=0)  # 23:00 local, the 2nd
    results = await outcomes(
        bus,
        purchase(shop, card, 1000, evening),
        purchase(shop, card, 1000, evening + timedelta(minutes=10)),
        purchase(shop, card, 1000, evening + timedelta(minutes=20)),
        purchase(shop, card, 1000, evening + timedelta(minutes=65)),  # 00:05 local, the 3rd
    )
    assert [summary(r) for r in results] == [
        ("applied", [], 1, 0),
        ("applied", [], 1, 0),
        ("rejected", ["daily_stamp_limit"], 0, 0),
        ("applied", [], 1, 0),
    ]


async def test_stamps_beyond_the_daily_limit_are_cut_not_all_refused(
    bus: Bus, sessions: Sessions
) -> None:
    async with sessions() as s:
        _, stores, _ = await seed_merchant(s, max_daily_stamps=3)
    card = await enrol(bus, stores[0].code)
    result = await outcome(bus, purchase(stores[0].code, card, 1000, stamps=5))
    assert summary(result) == ("applied", ["daily_stamp_limit"], 3, 100)


async def test_a_second_purchase_with_the_same_order_is_duplicate_order(
    bus: Bus, sessions: Sessions
) -> None:
    async with sessions() as s:
        _, stores, _ = await seed_merchant(s)
    shop = stores[0].code
    card = await enrol(bus, shop)
    first, again = await outcomes(
        bus,
        purchase(shop, card, 1000, order_reference="ORD-1"),
        purchase(shop, card, 2000, T0 + timedelta(hours=1), order_reference="ORD-1"),
    )
    assert summary(first) == ("applied", [], 1, 100)
    assert summary(again) == ("rejected", ["duplicate_order"], 0, 0)
    assert again["points_balance"] == 100


async def test_an_order_reference_is_unique_per_merchant_only(bus: Bus, sessions: Sessions) -> None:
    async with sessions() as s:
        _, one, _ = await seed_merchant(s)
        _, other, _ = await seed_merchant(s)
    card_one, card_other = await enrol(bus, one[0].code), await enrol(bus, other[0].code)
    here, there = await outcomes(
        bus,
        purchase(one[0].code, card_one, 1000, order_reference="SHARED-1"),
        purchase(other[0].code, card_other, 1000, order_reference="SHARED-1"),
    )
    assert summary(here) == summary(there) == ("applied", [], 1, 100)


async def test_a_card_is_found_by_qr_code_email_and_customer_ref(
    bus: Bus, sessions: Sessions
) -> None:
    async with sessions() as s:
        _, stores, _ = await seed_merchant(s, type=ProgramType.POINTS, points_per_euro=1)
    shop = stores[0].code
    card = await enrol(bus, shop, {"email": "Nora@Example.lu", "customer_ref": "POS-77"})
    async with sessions() as s:
        qr = await s.scalar(select(LoyaltyCard.qr_token).where(LoyaltyCard.card_number == card))
    assert qr is not None
    refs = [{"qr_code": qr}, {"email": "NORA@example.LU"}, {"customer_ref": "POS-77"}]
    results = await outcomes(
        bus,
        *(
            purchase(shop, ref, 100 * (i + 1), T0 + timedelta(minutes=i))
            for i, ref in enumerate(refs)
        ),
    )
    assert [(r["card_number"], r["points_delta"]) for r in results] == [
        (card, 1),
        (card, 2),
        (card, 3),
    ]
    assert results[-1]["stamps_target"] is None  # a points program has no stamp card
