"""Helpers for stories through the real pipeline: build inputs, publish them keyed as the
contract says, wait for the engine's answers and check them against the contract."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.models import Merchant, Store
from streams.messages import CardBalanceChanged, EventProcessed
from streams.parsing import ParseError, key_for, parse_input, parse_output
from streams.topics import TYPE_OF_TOPIC, Topic
from tests.support.pipeline import Bus
from tests.support.seed import seed_merchant, unique_code

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
"""A Monday morning, in the winter time of Luxembourg (UTC+1)."""

TOPIC_OF_TYPE = {kind: Topic(topic) for topic, kind in TYPE_OF_TOPIC.items()}

RESULT_FIELDS = frozenset(
    {
        "event_id", "type", "occurred_at", "source_event_id", "source_topic", "status",
        "reasons", "merchant_code", "store_code",
    }
)  # fmt: skip
"""Every ``event.processed`` has these (CONTRACT.md section 4)..."""
CARD_FIELDS = frozenset(
    {"card_number", "stamps_delta", "points_delta", "stamp_count", "stamps_target",
     "points_balance"}
)  # fmt: skip
"""...and these, except an expiry run..."""
EXPIRY_FIELDS = frozenset(
    {"cards_expired", "points_expired", "points_released", "reminders_sent", "tiers_changed"}
)
"""...which has these instead (the last three since v1.1, 7.2 to 7.4)."""
TIER_FIELDS = frozenset({"tier", "points_to_next_tier"})
"""v1.1 (7.4): beside a card of a program with tiers."""
LOT_FIELDS = frozenset({"points_pending", "next_expiry"})
"""v1.1 (7.2, 7.3): beside a card, its pending points and its next expiry."""
WALLET_FIELDS = frozenset(
    {
        "event_id", "type", "occurred_at", "card_number", "merchant_code", "stamp_count",
        "stamps_target", "points_balance", "points_pending", "is_active", "version", "reason",
        "source_event_id",
    }
)  # fmt: skip


def event(kind: str, store: str | None, at: datetime = T0, **fields: Any) -> dict[str, Any]:
    """An input message of type ``kind`` with a fresh event id (no store on expiry runs)."""
    message: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "type": kind,
        "occurred_at": at.isoformat(),
    }
    if store is not None:
        message["store_code"] = store
    message.update(fields)
    return message


CardRef = str | dict[str, str]
"""A card number, or a card reference object (``{"email": ...}``)."""


def card_ref(card: CardRef) -> dict[str, str]:
    """The ``card`` object of a message."""
    return {"card_number": card} if isinstance(card, str) else card


def purchase(
    store: str, card: CardRef, amount_cents: int, at: datetime = T0, **fields: Any
) -> dict[str, Any]:
    """A ``purchase.completed``, with a unique order reference unless given."""
    fields.setdefault("order_reference", unique_code("order"))
    return event(
        "purchase.completed", store, at, card=card_ref(card), amount_cents=amount_cents, **fields
    )


def refund(
    store: str, order_reference: str, cents: int, at: datetime = T0, card: CardRef | None = None
) -> dict[str, Any]:
    """A ``purchase.returned``, without a card unless one is given."""
    fields: dict[str, Any] = {"card": card_ref(card)} if card is not None else {}
    return event(
        "purchase.returned",
        store,
        at,
        order_reference=order_reference,
        refund_amount_cents=cents,
        **fields,
    )


def redeem(store: str, card: CardRef, reward: dict[str, str], at: datetime = T0) -> dict[str, Any]:
    """A ``reward.redeem_requested``."""
    return event("reward.redeem_requested", store, at, card=card_ref(card), reward=reward)


def enrolment(
    store: str,
    customer: dict[str, str] | None = None,
    channel: str = "staff",
    at: datetime = T0,
) -> dict[str, Any]:
    """An ``enrollment.requested``; a fresh email unless ``customer`` says otherwise."""
    customer = customer or {"email": f"{uuid.uuid4().hex[:10]}@example.com"}
    return event("enrollment.requested", store, at, customer=customer, channel=channel)


def topic_of(message: dict[str, Any]) -> Topic:
    """The topic a message goes to, by its type."""
    return TOPIC_OF_TYPE[message["type"]]


def key_of(message: dict[str, Any]) -> str:
    """The message's key by CONTRACT.md section 1 (as the contract's own keying computes it)."""
    topic = topic_of(message)
    parsed = parse_input(topic, json.dumps(message).encode())
    assert not isinstance(parsed, ParseError), parsed.message
    return key_for(parsed)


async def send(bus: Bus, *messages: dict[str, Any]) -> None:
    """Publish messages in order, each on its topic with its contract key."""
    for message in messages:
        await bus.publish(topic_of(message), message, key_of(message))


async def outcomes(
    bus: Bus, *messages: dict[str, Any], timeout: float = 60.0
) -> list[dict[str, Any]]:
    """Publish messages one after the other, each once the previous one's result is in.

    Order holds per key within one topic only: a redemption published right after a purchase
    may be applied first (another topic), as it may be at a real till that does not wait.
    Returns each message's (first) result, checked against the contract.
    """
    found = []
    for message in messages:
        await send(bus, message)
        results = await bus.wait_results([message["event_id"]], timeout)
        found.append(check_result(results[message["event_id"]][0]))
    return found


async def outcome(bus: Bus, message: dict[str, Any]) -> dict[str, Any]:
    """Publish one message and return its result, checked."""
    (result,) = await outcomes(bus, message)
    return result


async def enrol(bus: Bus, store: str, customer: dict[str, str] | None = None) -> str:
    """A new card at ``store`` (for a fresh email unless ``customer`` says); its number."""
    result = await outcome(bus, enrolment(store, customer))
    assert result["status"] == "applied", result
    card: str = result["card_number"]
    return card


async def shop_with_cards(
    sessions: async_sessionmaker[AsyncSession], bus: Bus, cards: int, **program: Any
) -> tuple[str, list[str]]:
    """A new merchant's first store (its program as ``seed_merchant`` takes it) and
    ``cards`` cards enrolled there."""
    async with sessions() as session:
        _, stores, _ = await seed_merchant(session, **program)
    shop = stores[0].code
    return shop, [await enrol(bus, shop) for _ in range(cards)]


def check_result(payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` is an ``event.processed`` of the contract, with exactly its fields."""
    parsed = parse_output(Topic.RESULTS, json.dumps(payload).encode())
    assert isinstance(parsed, EventProcessed), parsed
    extra = EXPIRY_FIELDS if payload["source_topic"] == Topic.EXPIRY else CARD_FIELDS
    if payload["source_topic"] == Topic.PURCHASES:
        extra = extra | {"campaigns"}
    if payload.get("card_number") is not None:
        extra = extra | LOT_FIELDS
    if "tier" in payload:
        extra = extra | TIER_FIELDS
    assert set(payload) == RESULT_FIELDS | extra, sorted(set(payload) ^ (RESULT_FIELDS | extra))
    assert len(set(payload["reasons"])) == len(payload["reasons"])
    return payload


def check_wallet(payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` is a ``card.balance_changed`` of the contract, with exactly its fields."""
    parsed = parse_output(Topic.WALLET_UPDATES, json.dumps(payload).encode())
    assert isinstance(parsed, CardBalanceChanged), parsed
    assert set(payload) == WALLET_FIELDS, sorted(set(payload) ^ WALLET_FIELDS)
    return payload


def wallet_updates(bus: Bus, card: str) -> list[dict[str, Any]]:
    """A card's ``card.balance_changed`` messages read so far, each once, checked."""
    return [check_wallet(w) for w in {w["event_id"]: w for w in bus.wallet[card]}.values()]


def summary(result: dict[str, Any]) -> tuple[str, list[str], int, int]:
    """What a test usually asserts: status, reasons and the two deltas."""
    return result["status"], result["reasons"], result["stamps_delta"], result["points_delta"]


async def seed_merchant_without_program(session: AsyncSession) -> tuple[Merchant, Store]:
    """A merchant with one store and no loyalty program."""
    merchant = Merchant(code=unique_code("m"), name="No program")
    session.add(merchant)
    await session.flush()
    store = Store(merchant_id=merchant.id, code=unique_code(f"{merchant.code}-s"), name="Shop")
    session.add(store)
    await session.commit()
    return merchant, store
