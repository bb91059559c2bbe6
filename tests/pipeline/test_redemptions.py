"""Stories of ``reward.redeem_requested``: a full stamp card, a catalog reward, and refusals."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.models import ProgramType
from tests.pipeline.stories import enrol, outcome, outcomes, purchase, redeem, summary
from tests.support.pipeline import Bus
from tests.support.seed import seed_merchant

Sessions = async_sessionmaker[AsyncSession]

STAMPS = {"kind": "stamps"}
COFFEE = {"kind": "points", "reward_id": "coffee"}


async def test_a_full_stamp_card_is_redeemed_and_an_empty_one_refused(
    bus: Bus, sessions: Sessions
) -> None:
    async with sessions() as s:
        _, stores, _ = await seed_merchant(s, type=ProgramType.STAMPS, stamps_target=3)
    shop = stores[0].code
    card = await enrol(bus, shop)
    too_early, _, redeemed, again = await outcomes(
        bus,
        redeem(shop, card, STAMPS),
        purchase(shop, card, 500, stamps=3),
        redeem(shop, card, STAMPS),
        redeem(shop, card, STAMPS),
    )
    assert summary(too_early) == ("rejected", ["insufficient_stamps"], 0, 0)
    assert summary(redeemed) == ("applied", [], -3, 0)
    assert summary(again) == ("rejected", ["insufficient_stamps"], 0, 0)


async def test_stamps_in_a_points_program_are_stamps_not_enabled(
    bus: Bus, sessions: Sessions
) -> None:
    async with sessions() as s:
        _, stores, _ = await seed_merchant(s, type=ProgramType.POINTS)
    card = await enrol(bus, stores[0].code)
    result = await outcome(bus, redeem(stores[0].code, card, STAMPS))
    assert summary(result) == ("rejected", ["stamps_not_enabled"], 0, 0)


async def test_a_points_reward_in_a_stamps_program_is_points_not_enabled(
    bus: Bus, sessions: Sessions
) -> None:
    async with sessions() as s:
        _, stores, _ = await seed_merchant(s, type=ProgramType.STAMPS, rewards={"coffee": 1})
    card = await enrol(bus, stores[0].code)
    result = await outcome(bus, redeem(stores[0].code, card, COFFEE))
    assert summary(result) == ("rejected", ["points_not_enabled"], 0, 0)


async def test_a_reward_outside_the_catalog_is_unknown_reward(bus: Bus, sessions: Sessions) -> None:
    async with sessions() as s:
        _, stores, _ = await seed_merchant(s, welcome_bonus_points=500, rewards={"coffee": 100})
    card = await enrol(bus, stores[0].code)
    result = await outcome(
        bus, redeem(stores[0].code, card, {"kind": "points", "reward_id": "cake"})
    )
    assert summary(result) == ("rejected", ["unknown_reward"], 0, 0)
    assert result["points_balance"] == 500


async def test_too_few_points_is_insufficient_points(bus: Bus, sessions: Sessions) -> None:
    async with sessions() as s:
        _, stores, _ = await seed_merchant(s, welcome_bonus_points=50, rewards={"coffee": 100})
    shop = stores[0].code
    card = await enrol(bus, shop)
    short, _, enough = await outcomes(
        bus, redeem(shop, card, COFFEE), purchase(shop, card, 500), redeem(shop, card, COFFEE)
    )
    assert summary(short) == ("rejected", ["insufficient_points"], 0, 0)
    assert summary(enough) == ("applied", [], 0, -100)
    assert enough["points_balance"] == 0


async def test_under_the_program_minimum_is_below_minimum_redemption(
    bus: Bus, sessions: Sessions
) -> None:
    async with sessions() as s:
        _, stores, _ = await seed_merchant(
            s, welcome_bonus_points=50, minimum_redemption_points=200, rewards={"coffee": 100}
        )
    shop = stores[0].code
    card = await enrol(bus, shop)
    both, _, below = await outcomes(
        bus, redeem(shop, card, COFFEE), purchase(shop, card, 1000), redeem(shop, card, COFFEE)
    )
    # Every rule that refuses is reported: 50 points are under both the minimum and the price.
    assert summary(both) == ("rejected", ["below_minimum_redemption", "insufficient_points"], 0, 0)
    # 150 points pay for the coffee, but the program lets nobody redeem under 200.
    assert summary(below) == ("rejected", ["below_minimum_redemption"], 0, 0)
    assert below["points_balance"] == 150
