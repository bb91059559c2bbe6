"""Stories of ``enrollment.requested``: one card per merchant, or per store, and who may ask."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.models import ProgramType
from tests.pipeline.stories import (
    enrolment,
    outcome,
    outcomes,
    purchase,
    summary,
    wallet_updates,
)
from tests.support.pipeline import Bus
from tests.support.seed import seed_merchant

Sessions = async_sessionmaker[AsyncSession]


async def test_a_new_card_gets_the_welcome_bonus_and_a_wallet_update(
    bus: Bus, sessions: Sessions
) -> None:
    async with sessions() as s:
        merchant, stores, _ = await seed_merchant(
            s, type=ProgramType.POINTS, welcome_bonus_points=50
        )
    result = await outcome(bus, enrolment(stores[0].code, {"email": "Lea@Example.lu"}))
    assert summary(result) == ("applied", [], 0, 50)
    assert (result["points_balance"], result["stamp_count"]) == (50, 0)
    card = result["card_number"]
    await bus.read_to_end()
    (update,) = wallet_updates(bus, card)
    assert (update["version"], update["reason"], update["points_balance"]) == (
        1,
        "welcome_bonus",
        50,
    )
    assert (update["merchant_code"], update["source_event_id"], update["is_active"]) == (
        merchant.code,
        result["source_event_id"],
        True,
    )


async def test_self_enrolment_is_refused_when_the_merchant_disabled_it(
    bus: Bus, sessions: Sessions
) -> None:
    async with sessions() as s:
        _, stores, _ = await seed_merchant(s, allow_self_enrollment=False)
    shop = stores[0].code
    customer = {"email": "self@example.lu"}
    by_self, by_staff = await outcomes(
        bus, enrolment(shop, customer, "self"), enrolment(shop, customer, "staff")
    )
    assert summary(by_self) == ("rejected", ["self_enrollment_disabled"], 0, 0)
    assert by_self["card_number"] is None
    assert summary(by_staff) == ("applied", [], 0, 0)


async def test_with_cross_location_a_customer_has_one_card_per_merchant(
    bus: Bus, sessions: Sessions
) -> None:
    async with sessions() as s:
        _, stores, _ = await seed_merchant(s, welcome_bonus_points=10)
    first, again = await outcomes(
        bus,
        enrolment(stores[0].code, {"email": "max@example.lu"}),
        enrolment(stores[1].code, {"email": "MAX@Example.LU"}, "self"),
    )
    assert summary(first) == ("applied", [], 0, 10)
    assert summary(again) == ("applied", ["already_enrolled"], 0, 0)
    assert again["card_number"] == first["card_number"]
    assert again["points_balance"] == 10


async def test_without_cross_location_a_customer_has_one_card_per_store(
    bus: Bus, sessions: Sessions
) -> None:
    async with sessions() as s:
        _, stores, _ = await seed_merchant(s, cross_location=False)
    one, two = stores[0].code, stores[1].code
    customer = {"customer_ref": "CUST-1"}
    at_one, at_two, again_at_two = await outcomes(
        bus, enrolment(one, customer), enrolment(two, customer), enrolment(two, customer)
    )
    assert summary(at_one) == summary(at_two) == ("applied", [], 0, 0)
    assert at_one["card_number"] != at_two["card_number"]
    assert summary(again_at_two) == ("applied", ["already_enrolled"], 0, 0)
    assert again_at_two["card_number"] == at_two["card_number"]
    # By customer reference, a purchase at each store lands on that store's card.
    here, there = await outcomes(
        bus,
        purchase(one, customer, 1000),
        purchase(two, customer, 2000),
    )
    assert (here["card_number"], here["points_delta"]) == (at_one["card_number"], 100)
    assert (there["card_number"], there["points_delta"]) == (at_two["card_number"], 200)
