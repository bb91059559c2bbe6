"""Stories of bad input: each goes to ``loyalty.dlq.v1`` saying what is wrong, nothing stops.

Every case publishes its garbage under a key of its own, then a valid event on the same
topic and partition (same key): once the valid event is answered, the garbage was read
before it, and its dead letter was written in the same batch or an earlier one.
"""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from streams.messages import DeadLetter
from streams.parsing import parse_output
from streams.topics import Topic
from tests.pipeline.stories import enrolment, event, purchase
from tests.support.pipeline import Bus
from tests.support.seed import seed_merchant

Sessions = async_sessionmaker[AsyncSession]


def _purchase(store: str, **changes: Any) -> dict[str, Any]:
    message = purchase(store, "AAAA-BBBB-CCCC", 1000)
    for name, value in changes.items():
        if value is None:
            del message[name]
        else:
            message[name] = value
    return message


@dataclass(frozen=True)
class Garbage:
    """A bad value for a topic, and what the dead letter's ``error`` must say."""

    topic: Topic
    value: Callable[[str], bytes]
    """The bad value, given a live store code."""
    error: tuple[str, ...]
    """Fragments the error must contain (the field, and why)."""
    base64: bool = False


def _json(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode()


CASES = {
    "random bytes": Garbage(
        Topic.PURCHASES,
        lambda _: b"\xff\xfe" + os.urandom(64),
        ("not UTF-8", "payload is base64"),
        base64=True,
    ),
    "invalid JSON": Garbage(
        Topic.PURCHASES, lambda _: b'{"event_id": "1", "type": ', ("not valid JSON",)
    ),
    "a JSON array": Garbage(
        Topic.ENROLLMENTS, lambda _: b'[{"type": "enrollment.requested"}]', ("got an array",)
    ),
    "a missing field": Garbage(
        Topic.PURCHASES,
        lambda store: _json(_purchase(store, order_reference=None)),
        ("order_reference: is required",),
    ),
    "a string amount": Garbage(
        Topic.PURCHASES,
        lambda store: _json(_purchase(store, amount_cents="1000")),
        ("amount_cents: must be an integer", '"1000"'),
    ),
    "a 1 MB payload": Garbage(
        Topic.PURCHASES,
        lambda store: _json(_purchase(store, staff_ref="x" * 1024 * 1024)),
        ("staff_ref: must be a string of at most 1000 characters",),
    ),
    "a purchase on the returns topic": Garbage(
        Topic.RETURNS,
        lambda store: _json(_purchase(store)),
        ('type: must be "purchase.returned"', '"purchase.completed"'),
    ),
    "an unknown channel": Garbage(
        Topic.ENROLLMENTS,
        lambda store: _json(enrolment(store, channel="phone")),
        ("channel: must be one of",),
    ),
    "a card reference with two fields": Garbage(
        Topic.REDEMPTIONS,
        lambda store: _json(
            event(
                "reward.redeem_requested",
                store,
                card={"email": "a@b.lu", "customer_ref": "C1"},
                reward={"kind": "stamps"},
            )
        ),
        ("card: must hold exactly one of",),
    ),
}


def _follower(topic: Topic, store: str) -> dict[str, Any]:
    """A valid event for ``topic`` (any outcome will do: it only has to be answered)."""
    if topic == Topic.RETURNS:
        return event("purchase.returned", store, order_reference="R-1", refund_amount_cents=1)
    if topic == Topic.ENROLLMENTS:
        return enrolment(store)
    if topic == Topic.REDEMPTIONS:
        return event(
            "reward.redeem_requested",
            store,
            card={"card_number": "AAAA-BBBB-CCCC"},
            reward={"kind": "stamps"},
        )
    return _purchase(store)


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
async def test_bad_input_is_dead_lettered_and_the_pipeline_goes_on(
    bus: Bus, sessions: Sessions, case: str
) -> None:
    garbage = CASES[case]
    async with sessions() as s:
        _, stores, _ = await seed_merchant(s)
    shop = stores[0].code
    key = f"dlq-{uuid.uuid4().hex}"
    value = garbage.value(shop)
    await bus.publish(garbage.topic, value, key)
    after = _follower(garbage.topic, shop)
    await bus.publish(garbage.topic, after, key)

    await bus.wait_results([after["event_id"]])
    letter = await _dead_letter(bus, key)
    parsed = parse_output(Topic.DLQ, json.dumps(letter).encode())
    assert isinstance(parsed, DeadLetter), parsed
    assert (letter["source_topic"], letter["type"]) == (garbage.topic, "dead_letter")
    assert isinstance(letter["partition"], int) and isinstance(letter["offset"], int)
    original = base64.b64decode(letter["payload"]) if garbage.base64 else letter["payload"].encode()
    assert original == value
    for fragment in garbage.error:
        assert fragment in letter["error"], letter["error"]
    await bus.read_to_end()
    assert {d["event_id"] for d in bus.dead if d["key"] == key} == {letter["event_id"]}


async def _dead_letter(bus: Bus, key: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [d for d in bus.dead if d["key"] == key]
        if found:
            return found[0]
        await bus.drain()
    raise AssertionError(f"no dead letter with key {key}")
