"""Tiers over random histories of two years (CONTRACT.md 7.4), against the in-memory unit of
work: purchases, returns and daily runs, in either window, with and without grace days.

- a card's qualifying points are always its purchases' net points since its window's start,
  and that start is the window of its last event;
- it moves up as soon as its points reach a tier, never holds a tier its points do not give
  beyond the grace days (judged at the daily runs), and earns with its tier's multiplier;
- replaying the same events into an empty world gives the same tiers and the same history.

The same against PostgreSQL and Kafka: ``tests/pipeline/test_tiers.py``.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from core.commands import (
    CardRef,
    Command,
    CustomerDetails,
    Enrol,
    ExpiryRun,
    Line,
    Purchase,
    Return,
    ReturnedLine,
)
from core.enums import CardRefKind, EnrollmentChannel, ProgramType
from domain.engine.batch import Inbound, apply_batch
from domain.engine.state import StoreInfo
from domain.rules.tiers import TierPlan, TierTerms, rank, tier_for, window_start
from domain.rules.values import ProgramTerms
from tests.unit.engine.fakes import FakeUnitOfWork
from tests.unit.engine.test_engine_in_memory import TOPIC

T0 = datetime(2025, 12, 1, 9, 0, tzinfo=UTC)
TIERS = (
    TierTerms("member", "Member", 0),
    TierTerms("silver", "Silver", 300, 1500),
    TierTerms("gold", "Gold", 1000, 2000),
)

step = st.one_of(
    st.tuples(st.just("buy"), st.integers(100, 8000)),
    st.tuples(st.just("return"), st.integers(0, 20), st.integers(1, 8000)),
    st.tuples(st.just("run"), st.just(0)),
)
# Gaps of minutes to 40 days, and now and then exactly a year: a purchase then leaves the
# rolling window at the very event.
gap = st.one_of(st.integers(0, 60 * 24 * 40), st.just(60 * 24 * 365))
history = st.lists(st.tuples(step, gap), min_size=1, max_size=40)
plan = st.builds(
    TierPlan,
    tiers=st.just(TIERS),
    window=st.sampled_from(["rolling_12_months", "calendar_year"]),
    grace_days=st.sampled_from([0, 10, 30]),
)


def _world(tiers: TierPlan) -> FakeUnitOfWork:
    uow = FakeUnitOfWork()
    base = ProgramTerms(
        program_id=1, merchant_id=1, type=ProgramType.POINTS, points_per_euro=10, tiers=tiers
    )
    uow.stores["S1"] = StoreInfo(1, "S1", 1, "m1", True, True, replace(base))
    return uow


async def _apply(uow: FakeUnitOfWork, command: Command) -> Any:
    topic = TOPIC[type(command)]
    return await apply_batch(uow, [Inbound(topic.value, command)], T0)


def _commands(steps: list[tuple[Any, int]], ref: CardRef) -> list[Command]:
    at = T0
    orders: list[tuple[str, int]] = []
    commands: list[Command] = []
    for (kind, *args), gap in steps:
        at += timedelta(minutes=gap)
        if kind == "buy":
            orders.append((f"o-{len(orders)}", args[0]))
            commands.append(Purchase(uuid.uuid4(), at, "S1", orders[-1][0], args[0], "EUR", ref))
        elif kind == "return" and orders:
            order, amount = orders[args[0] % len(orders)]
            commands.append(Return(uuid.uuid4(), at, "S1", order, min(args[1], amount)))
        elif kind == "run":
            commands.append(ExpiryRun(uuid.uuid4(), at))
    return commands


@settings(max_examples=200, deadline=None)
@given(tiers=plan, steps=history)
async def test_a_cards_tier_always_follows_its_qualifying_points_and_replays_the_same(
    tiers: TierPlan, steps: list[tuple[Any, int]]
) -> None:
    first = await _replayable(tiers, steps)
    again = await _replayable(tiers, steps)
    assert first == again


async def _replayable(tiers: TierPlan, steps: list[tuple[Any, int]]) -> Any:
    uow = _world(tiers)
    await _apply(
        uow,
        Enrol(uuid.uuid4(), T0, "S1", CustomerDetails(email="a@example.com"),
              EnrollmentChannel.STAFF),
    )  # fmt: skip
    (card,) = uow.cards.values()
    commands = _commands(steps, CardRef(CardRefKind.CARD_NUMBER, card.card_number))
    return await _story_on(uow, tiers, card.card_id, commands)


async def _story_on(
    uow: FakeUnitOfWork, tiers: TierPlan, card_id: int, commands: list[Command]
) -> Any:
    zone = uow.stores["S1"].terms.timezone  # type: ignore[union-attr]
    for command in commands:
        before = uow.cards[card_id].balance.tier
        outcome = await _apply(uow, command)
        b = uow.cards[card_id].balance
        at = command.occurred_at
        if isinstance(command, Purchase | Return):
            # Its window is the event's, and its points are its purchases' since it opened.
            assert b.qualifying_from == window_start(tiers, at, zone)
        assert b.qualifying_from is not None
        net = sum(
            p.record.points_earned - p.record.points_voided
            for p in uow.purchases.values()
            if p.occurred_at >= b.qualifying_from
        )
        assert b.qualifying_points == net
        due = tier_for(tiers, net)
        assert due is not None
        # Never below the tier its points give: up at once.
        assert rank(tiers, b.tier) >= rank(tiers, due.code)
        if isinstance(command, Purchase) and outcome.results[0].points_delta:
            held = tiers.tier(before)
            factor = held.multiplier_milli if held else 1000
            expected = command.amount_cents * 10 // 100 * factor // 1000
            assert outcome.results[0].points_delta == expected
        if isinstance(command, ExpiryRun) and rank(tiers, b.tier) > rank(tiers, due.code):
            # Above what its points give only within the grace days.
            assert b.tier_below_since is not None
            assert at - b.tier_below_since < timedelta(days=tiers.grace_days)
    final = uow.cards[card_id].balance
    return final.tier, [change[2:5] for change in uow.tier_changes]


async def test_a_return_with_lines_voids_them_with_the_tier_multiplier_they_earned_with() -> None:
    uow = _world(TierPlan(TIERS))
    await _apply(
        uow,
        Enrol(uuid.uuid4(), T0, "S1", CustomerDetails(email="a@example.com"),
              EnrollmentChannel.STAFF),
    )  # fmt: skip
    (card,) = uow.cards.values()
    ref = CardRef(CardRefKind.CARD_NUMBER, card.card_number)
    await _apply(uow, Purchase(uuid.uuid4(), T0, "S1", "big", 3000, "EUR", ref))  # to Silver
    lines = (Line("mug", 2, 1000),)
    bought = await _apply(
        uow, Purchase(uuid.uuid4(), T0, "S1", "mugs", 1000, "EUR", ref, lines=lines)
    )
    assert bought.results[0].points_delta == 150  # 100 points x 1.5
    back = await _apply(
        uow,
        Return(uuid.uuid4(), T0, "S1", "mugs", 500, lines=(ReturnedLine("mug", 1),)),
    )
    assert back.results[0].points_delta == -75  # one mug's 50 points x 1.5
