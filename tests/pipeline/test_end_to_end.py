"""Stories through the real pipeline: publish on Kafka, read the result topic."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from streams.parsing import ParseError, parse_output
from streams.topics import Topic
from tests.support.pipeline import Bus
from tests.support.seed import seed_merchant

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def event(kind: str, store: str, at: datetime = T0, **fields: Any) -> dict[str, Any]:
    """An input message with a fresh event id."""
    return {
        "event_id": str(uuid.uuid4()),
        "type": kind,
        "occurred_at": at.isoformat(),
        "store_code": store,
        **fields,
    }


async def test_a_customer_enrols_buys_and_redeems(
    bus: Bus, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with sessions() as s:
        merchant, stores, _ = await seed_merchant(
            s, welcome_bonus_points=50, rewards={"coffee": 100}
        )
    shop = stores[0].code
    enrol = event(
        "enrollment.requested", shop, customer={"email": "Ann@Example.com"}, channel="staff"
    )
    await bus.publish(Topic.ENROLLMENTS, enrol, "ann@example.com")
    (enrolled,) = (await bus.wait_results([enrol["event_id"]]))[enrol["event_id"]]
    assert enrolled["status"] == "applied"
    assert enrolled["points_balance"] == 50
    card = enrolled["card_number"]

    buy = event(
        "purchase.completed",
        shop,
        T0 + timedelta(minutes=5),
        order_reference="A-1",
        amount_cents=1250,
        card={"card_number": card.replace("-", " ")},
    )
    redeem = event(
        "reward.redeem_requested",
        shop,
        T0 + timedelta(minutes=6),
        card={"email": "ANN@example.com"},
        reward={"kind": "points", "reward_id": "coffee"},
    )
    await bus.publish(Topic.PURCHASES, buy, card)
    await bus.wait_results([buy["event_id"]])
    await bus.publish(Topic.REDEMPTIONS, redeem, "ann@example.com")
    results = await bus.wait_results([buy["event_id"], redeem["event_id"]])
    bought = results[buy["event_id"]][0]
    assert (bought["status"], bought["stamps_delta"], bought["points_delta"]) == ("applied", 1, 125)
    redeemed = results[redeem["event_id"]][0]
    assert (redeemed["status"], redeemed["points_delta"], redeemed["points_balance"]) == (
        "applied",
        -100,
        75,
    )
    for payload in (enrolled, bought, redeemed):
        assert not isinstance(parse_output(Topic.RESULTS, _json(payload)), ParseError)
    await bus.drain()
    versions = [w["version"] for w in bus.wallet[card]]
    assert versions == sorted(versions) and len(set(versions)) == len(versions) >= 3
    assert merchant.code == bought["merchant_code"]


async def test_a_duplicate_event_id_has_no_effect_and_no_output(
    bus: Bus, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with sessions() as s:
        _, stores, _ = await seed_merchant(s)
    shop = stores[0].code
    enrol = event("enrollment.requested", shop, customer={"customer_ref": "C-9"}, channel="online")
    await bus.publish(Topic.ENROLLMENTS, enrol, "C-9")
    await bus.publish(Topic.ENROLLMENTS, enrol, "C-9")
    marker = event(
        "enrollment.requested", shop, customer={"customer_ref": "C-10"}, channel="online"
    )
    await bus.publish(Topic.ENROLLMENTS, marker, "C-10")
    results = await bus.wait_results([enrol["event_id"], marker["event_id"]])
    await bus.drain(timeout_ms=1000)
    assert len(bus.results[enrol["event_id"]]) == 1
    assert results[marker["event_id"]][0]["status"] == "applied"


async def test_garbage_goes_to_the_dead_letter_topic_and_the_pipeline_goes_on(
    bus: Bus, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with sessions() as s:
        _, stores, _ = await seed_merchant(s)
    before = len(bus.dead)
    await bus.publish(Topic.PURCHASES, b"\xff\xfe not json", "k1")
    await bus.publish(Topic.PURCHASES, {"type": "purchase.completed"}, "k2")
    ok = event(
        "enrollment.requested", stores[0].code, customer={"email": "z@x.lu"}, channel="staff"
    )
    await bus.publish(Topic.ENROLLMENTS, ok, "z@x.lu")
    await bus.wait_results([ok["event_id"]])
    dead = (await bus.wait_dead(before + 2))[before:]
    assert {d["key"] for d in dead} == {"k1", "k2"}
    assert all(d["source_topic"] == Topic.PURCHASES for d in dead)
    missing = next(d for d in dead if d["key"] == "k2")
    assert "event_id" in missing["error"]


def _json(payload: dict[str, Any]) -> bytes:
    import json

    return json.dumps(payload).encode()
