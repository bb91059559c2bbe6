"""Stories of line items and campaigns (CONTRACT.md 7.1) through the real pipeline.

``T0`` is a Monday, 10:00 on Luxembourg's clock: campaigns here run on Mondays 10:00-11:00.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.enums import CampaignStatus
from domain.models import Campaign, LoyaltyProgram, ProgramType, Store
from tests.pipeline.stories import (
    T0,
    check_result,
    enrol,
    outcome,
    outcomes,
    purchase,
    refund,
    send,
    summary,
)
from tests.support.pipeline import Bus, PipelineProcesses, handled_events, stop, wait_log
from tests.support.seed import seed_merchant

Sessions = async_sessionmaker[AsyncSession]

CROISSANTS = {"sku": "croissant", "category": "pastry", "quantity": 2, "amount_cents": 500}
COFFEE = {"sku": "coffee", "category": "drink", "quantity": 1, "amount_cents": 300}
GIFT_CARD = {"sku": "gift-50", "category": "gift-card", "quantity": 1, "amount_cents": 5000}


async def _program(sessions: Sessions, *campaigns: dict[str, Any], **terms: Any) -> str:
    """A points program (10 points per euro) with these campaigns, active; its first store."""
    async with sessions() as s:
        _, stores, program = await seed_merchant(
            s, type=ProgramType.POINTS, points_per_euro=10, **terms
        )
        for fields in campaigns:
            values: dict[str, Any] = {"status": CampaignStatus.ACTIVE, "name": fields["code"]}
            values.update(fields)
            s.add(Campaign(program_id=program.id, **values))
        await s.commit()
        return stores[0].code


def _double_pastry(**fields: Any) -> dict[str, Any]:
    return {
        "code": "double-pastry",
        "days": ["mon"],
        "hours": "10:00-11:00",
        "categories": ["pastry"],
        "multiplier": Decimal("2"),
        **fields,
    }


async def test_a_category_multiplier_doubles_its_lines_in_its_hours_only(
    bus: Bus, sessions: Sessions
) -> None:
    shop = await _program(sessions, _double_pastry())
    card = await enrol(bus, shop)
    lines = [CROISSANTS, COFFEE]

    inside, outside = await outcomes(
        bus,
        purchase(shop, card, 800, lines=lines),
        purchase(shop, card, 800, T0 + timedelta(hours=1), lines=lines),
    )

    assert summary(inside)[3] == 100 + 30
    assert inside["campaigns"] == [{"id": "double-pastry", "points": 50}]
    assert summary(outside)[3] == 80
    assert outside["campaigns"] == []


async def test_a_gift_card_line_earns_nothing_and_a_plain_purchase_is_unchanged(
    bus: Bus, sessions: Sessions
) -> None:
    shop = await _program(sessions, non_earning_categories=["gift-card"])
    card = await enrol(bus, shop)

    mixed, plain = await outcomes(
        bus,
        purchase(shop, card, 5500, lines=[CROISSANTS, GIFT_CARD]),
        purchase(shop, card, 1299),
    )

    assert summary(mixed) == ("applied", [], 0, 50)
    assert summary(plain) == ("applied", [], 0, 129)
    assert plain["campaigns"] == []


async def test_a_return_with_lines_voids_what_they_earned_even_after_the_rule_changed(
    bus: Bus, sessions: Sessions
) -> None:
    shop = await _program(sessions, _double_pastry())
    card = await enrol(bus, shop)
    bought = purchase(shop, card, 800, lines=[CROISSANTS, COFFEE])
    order = bought["order_reference"]
    earned = await outcome(bus, bought)
    assert summary(earned)[3] == 130
    async with sessions() as s:  # the campaign is ended and its multiplier changed
        await s.execute(
            update(Campaign)
            .where(Campaign.code == "double-pastry")
            .values(status=CampaignStatus.ENDED, multiplier=Decimal("5"))
        )
        await s.commit()

    one, other = await outcomes(
        bus,
        _with_lines(refund(shop, order, 250, T0 + timedelta(days=1), card=card), "croissant", 1),
        _with_lines(refund(shop, order, 550, T0 + timedelta(days=2), card=card), "croissant", 1),
    )

    # Each croissant earned 50 (its 2.50 EUR doubled), whatever the campaign says today.
    assert summary(one) == ("applied", [], 0, -50)
    assert summary(other) == ("applied", [], 0, -50)
    assert other["points_balance"] == 30


async def test_returning_more_units_than_bought_says_so(bus: Bus, sessions: Sessions) -> None:
    shop = await _program(sessions)
    card = await enrol(bus, shop)
    bought = purchase(shop, card, 800, lines=[CROISSANTS, COFFEE])
    await outcome(bus, bought)

    back = await outcome(
        bus, _with_lines(refund(shop, bought["order_reference"], 300, card=card), "coffee", 2)
    )

    assert summary(back) == ("applied", ["refund_exceeds_purchase"], 0, -30)


async def test_the_highest_multiplier_wins_and_a_bonus_needs_its_basket_once_per_card(
    bus: Bus, sessions: Sessions
) -> None:
    shop = await _program(
        sessions,
        _double_pastry(),
        {"code": "croissant-x3", "skus": ["croissant"], "multiplier": Decimal("3")},
        {"code": "big", "bonus_points": 40, "min_basket_cents": 1000, "max_awards_per_card": 1},
    )
    card = await enrol(bus, shop)

    small, big, again = await outcomes(
        bus,
        purchase(shop, card, 800, lines=[CROISSANTS, COFFEE]),
        purchase(shop, card, 1100, lines=[CROISSANTS, COFFEE]),
        purchase(shop, card, 1100, lines=[CROISSANTS, COFFEE]),
    )

    # Croissants earn x3 (not x2, not x6); 3 EUR uncovered in the big baskets earn x1.
    assert small["points_delta"] == 150 + 30
    assert small["campaigns"] == [{"id": "croissant-x3", "points": 100}]
    assert big["points_delta"] == 150 + 60 + 40
    assert big["campaigns"] == [
        {"id": "croissant-x3", "points": 100},
        {"id": "big", "points": 40},
    ]
    assert again["points_delta"] == 150 + 60  # the bonus rewards a card once


async def test_a_budget_awards_what_remains_then_stops(bus: Bus, sessions: Sessions) -> None:
    bonus = {"code": "bonus", "bonus_points": 50, "budget_points": 120}
    shop = await _program(sessions, bonus)
    card = await enrol(bus, shop)

    results = await outcomes(bus, *(purchase(shop, card, 1000) for _ in range(4)))

    assert [r["campaigns"] for r in results] == [
        [{"id": "bonus", "points": 50}],
        [{"id": "bonus", "points": 50}],
        [{"id": "bonus", "points": 20}],
        [],
    ]
    assert [r["points_delta"] for r in results] == [150, 150, 120, 100]
    assert await _awarded(sessions, "bonus", shop) == 120


async def test_two_workers_racing_for_the_last_points_never_exceed_the_budget(
    bus: Bus, sessions: Sessions, pipeline: PipelineProcesses
) -> None:
    pipeline.start_worker("worker-2")
    await wait_log(pipeline, "worker-2", "assigned to partitions")
    budget = 1_000
    shop = await _program(sessions, {"code": "race", "bonus_points": 7, "budget_points": budget})
    cards = await asyncio.gather(*(enrol(bus, shop) for _ in range(40)))
    # Cards are keys: their purchases spread over the partitions of both workers at once.
    sent = [purchase(shop, card, 500) for card in cards for _ in range(5)]
    for message in sent:
        await send(bus, message)
    results = await bus.wait_results([m["event_id"] for m in sent], timeout=120)

    found = [check_result(results[m["event_id"]][0]) for m in sent]
    awarded = sum(c["points"] for r in found for c in r["campaigns"])
    assert awarded == budget  # 200 purchases asked 1,400 points
    assert await _awarded(sessions, "race", shop) == budget
    assert await stop(pipeline, "worker-2") == 0
    assert handled_events(pipeline.log("worker-2")) > 0  # both workers took part


def _with_lines(message: dict[str, Any], sku: str, quantity: int) -> dict[str, Any]:
    return {**message, "lines": [{"sku": sku, "quantity": quantity}]}


async def _awarded(sessions: Sessions, code: str, store_code: str) -> int:
    async with sessions() as s:
        program_id = (
            select(LoyaltyProgram.id)
            .join(Store, Store.merchant_id == LoyaltyProgram.merchant_id)
            .where(Store.code == store_code)
            .scalar_subquery()
        )
        value = await s.scalar(
            select(Campaign.points_awarded).where(
                Campaign.code == code, Campaign.program_id == program_id
            )
        )
        assert value is not None
        return int(value)
