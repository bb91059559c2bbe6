"""A load of a few thousand mixed events, and the checks that no fault lost or doubled one.

"Exactly one result per input": every distinct input ``event_id`` has exactly one
``event.processed``, except a return held for its purchase, which has two (``held``, then its
outcome). The relay may publish a result twice (at least once, after a crash): such copies
share the result's ``event_id`` and are counted once; two results with different ids for one
input are a bug.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.audit import audit_database
from tests.pipeline.stories import (
    T0,
    check_result,
    enrolment,
    key_of,
    purchase,
    redeem,
    refund,
    send,
    topic_of,
    wallet_updates,
)
from tests.support.pipeline import Bus
from tests.support.seed import seed_merchant, unique_code


@dataclass
class Load:
    """A merchant, its cards, and the messages to publish (duplicates included) in order."""

    merchant: str
    cards: list[str]
    messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def event_ids(self) -> set[str]:
        """Every distinct input."""
        return {m["event_id"] for m in self.messages}

    def chunks(self, count: int) -> list[list[dict[str, Any]]]:
        """The messages in ``count`` consecutive parts."""
        size = -(-len(self.messages) // count)
        return [self.messages[i : i + size] for i in range(0, len(self.messages), size)]


async def prepare_load(
    bus: Bus, sessions: async_sessionmaker[AsyncSession], events: int = 3000, cards: int = 40
) -> Load:
    """A hybrid merchant with ``cards`` cards and ``events`` events of every kind for them.

    Returns without a card are keyed by their order, so they travel on another partition than
    their purchase: some are applied at once, some are held until the purchase is seen. About
    one message in fifty is published a second time with the same event id.
    """
    async with sessions() as s:
        merchant, stores, _ = await seed_merchant(
            s, points_per_euro=10, stamps_target=5, rewards={"coffee": 100}
        )
    enrolments = [enrolment(stores[i % 2].code) for i in range(cards)]
    await send(bus, *enrolments)
    answered = await bus.wait_results([e["event_id"] for e in enrolments], timeout=120)
    load = Load(merchant.code, [answered[e["event_id"]][0]["card_number"] for e in enrolments])
    rng = random.Random(events)  # the same load every run
    orders: list[tuple[str, str]] = []  # (order reference, card) of purchases so far
    for i in range(events):
        at = T0 + timedelta(minutes=i)
        shop = stores[rng.randrange(2)].code
        card = rng.choice(load.cards)
        roll = rng.random()
        if roll < 0.55 or not orders:
            message = purchase(shop, card, rng.randint(50, 5000), at, stamps=rng.randint(0, 2))
            orders.append((message["order_reference"], card))
        elif roll < 0.65:
            order, owner = rng.choice(orders)
            message = refund(shop, order, rng.randint(1, 3000), at, card=owner)
        elif roll < 0.75:
            # A return first, its purchase a little later (it may overtake the return).
            order = unique_code("order")
            message = refund(shop, order, rng.randint(1, 1000), at)
            load.messages.append(message)
            message = purchase(shop, card, 1000, at, order_reference=order)
            orders.append((order, card))
        elif roll < 0.85:
            message = redeem(shop, card, {"kind": "points", "reward_id": "coffee"}, at)
        elif roll < 0.9:
            message = redeem(shop, card, {"kind": "stamps"}, at)
        else:
            message = enrolment(shop, at=at)
        load.messages.append(message)
        if rng.random() < 0.02:
            load.messages.append(rng.choice(load.messages))
    return load


async def publish(bus: Bus, messages: list[dict[str, Any]]) -> None:
    """Publish without waiting for answers (acknowledged by the broker at the end)."""
    await bus.publish_many((topic_of(m), m, key_of(m)) for m in messages)


def answered(bus: Bus, event_ids: set[str]) -> int:
    """How many of these inputs have at least one result so far."""
    return sum(1 for e in event_ids if bus.results.get(e))


async def wait_answered(bus: Bus, event_ids: set[str], at_least: int, timeout: float) -> None:
    """Wait until ``at_least`` of these inputs have a result."""
    deadline = time.monotonic() + timeout
    while answered(bus, event_ids) < at_least:
        if time.monotonic() > deadline:
            raise AssertionError(f"{answered(bus, event_ids)} of {at_least} inputs answered")
        await bus.drain()


def _incomplete(bus: Bus, event_ids: set[str]) -> list[str]:
    missing = []
    for event_id in event_ids:
        results = bus.distinct_results(event_id)
        held = bool(results) and results[0]["status"] == "held"
        if len(results) < (2 if held else 1):
            missing.append(event_id)
    return missing


async def wait_complete(bus: Bus, load: Load, database_url: str, timeout: float = 300) -> None:
    """Wait until every input has all its results, then read every output written so far.

    Once all are answered, the outbox rows written up to now are waited out (sent), and the
    output topics are read to their end: a second, different result would be there.
    """
    deadline = time.monotonic() + timeout
    while missing := _incomplete(bus, load.event_ids):
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(missing)} of {len(load.event_ids)} inputs unanswered")
        await bus.drain()
    conn = await asyncpg.connect(database_url)
    try:
        last = await conn.fetchval("SELECT max(id) FROM outbox")
        while await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND id <= $1", last
        ):
            if time.monotonic() > deadline:
                raise AssertionError("the outbox is not drained")
            await bus.drain()
    finally:
        await conn.close()
    await bus.read_to_end()


async def check_exactly_once(bus: Bus, load: Load, database_url: str) -> None:
    """Every input answered exactly once (held returns: twice), wallets in order, audit clean."""
    counts: Counter[str] = Counter()
    for event_id in load.event_ids:
        results = [check_result(r) for r in bus.distinct_results(event_id)]
        statuses = [r["status"] for r in results]
        if statuses[:1] == ["held"]:
            assert len(statuses) == 2 and statuses[1] != "held", (event_id, results)
        else:
            assert len(statuses) == 1, (event_id, results)
        counts[statuses[-1]] += 1
    assert counts["applied"] > len(load.event_ids) // 2, counts

    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT c.card_number, c.version FROM loyalty_cards c"
            " JOIN merchants m ON m.id = c.merchant_id WHERE m.code = $1",
            load.merchant,
        )
        versions: dict[str, int] = {r["card_number"]: r["version"] for r in rows}
    finally:
        await conn.close()
    for card in load.cards:
        seen = [w["version"] for w in wallet_updates(bus, card)]
        assert seen == sorted(set(seen)), (card, seen)
        assert seen[-1] == versions[card], (card, seen[-1], versions[card])

    report = await audit_database(database_url, unsent_grace_s=60)
    assert report.clean, [str(d) for d in report.differences]
    assert report.events >= len(load.event_ids)
