"""Webhooks end to end: purchases through the real worker and relay, the real dispatcher
process, and HTTP endpoints on loopback that answer well, fail, or hang.

What each endpoint should get is read from the outbox: every output message of the test's
merchant of a type the endpoint chose, with the bytes the relay put on Kafka.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain import webhooks
from domain.engine.outbox import unpack
from domain.models import WebhookEndpoint
from domain.webhooks import EndpointSpec, verify
from tests.pipeline.stories import enrol, purchase, send
from tests.support.pipeline import Bus
from tests.support.seed import seed_merchant
from tests.webhooks.conftest import TIMEOUT_S, Dispatcher, StartReceiver
from tests.webhooks.receivers import Received, Receiver

Sessions = async_sessionmaker[AsyncSession]

OUTPUT_TOPICS = ["loyalty.results.v1", "loyalty.wallet-updates.v1", "loyalty.notifications.v1"]


async def test_a_good_endpoint_gets_every_message_once_signed_and_in_order_per_card(
    bus: Bus,
    sessions: Sessions,
    dispatcher: Dispatcher,
    start_receiver: StartReceiver,
    database_url: str,
) -> None:
    good = start_receiver("ok")
    code, shop, (endpoint,) = await _seed(sessions, good)
    cards = [await enrol(bus, shop) for _ in range(3)]
    purchases = [purchase(shop, card, 700 + 100 * i) for i in range(3) for card in cards]
    await send(bus, *purchases)
    await bus.wait_results([p["event_id"] for p in purchases])
    expected = await _expected(database_url, code)

    await _all_settled(database_url, endpoint.id, len(expected))

    received = good.delivered()
    assert sorted(r.key for r in received) == sorted(expected)  # each exactly once
    assert {r.message["type"] for r in received} >= {"event.processed", "card.balance_changed"}
    for r in received:
        assert r.body == expected[r.key]
        assert r.headers["content-type"] == "application/json"
        assert r.headers["user-agent"] == "loyalty-webhooks/1"
        assert r.headers["loyalty-event-type"] == r.message["type"]
        signature = r.headers["loyalty-signature"]
        assert verify(endpoint.secret, r.headers["loyalty-timestamp"], r.body, signature)
        assert not verify(
            "whsec_another-secret-entirely", r.headers["loyalty-timestamp"], r.body, signature
        )
    assert _versions_by_card(received) == {
        card: sorted(versions) for card, versions in _versions_by_card(received).items()
    }
    assert set(_versions_by_card(received)) == set(cards)


async def test_a_failing_endpoint_is_retried_then_parked_then_resent(
    bus: Bus,
    sessions: Sessions,
    dispatcher: Dispatcher,
    start_receiver: StartReceiver,
    database_url: str,
) -> None:
    failing = start_receiver("fail")
    code, shop, (endpoint,) = await _seed(sessions, failing)
    cards = [await enrol(bus, shop) for _ in range(2)]
    purchases = [purchase(shop, card, 1200) for card in cards]
    await send(bus, *purchases)
    await bus.wait_results([p["event_id"] for p in purchases])
    expected = await _expected(database_url, code)

    parked = await _wait_rows(
        database_url,
        endpoint.id,
        lambda rows: len(rows) == len(expected) and all(r["status"] == "parked" for r in rows),
        "every delivery parked",
    )
    attempts = [r["attempts"] for r in parked]
    assert max(attempts) > 1, attempts  # retried within the window, then parked
    assert min(attempts) >= 1
    assert len(failing.all()) == sum(attempts)
    assert {(r["last_status"], r["last_error"]) for r in parked} == {
        (500, "HTTP 500: database unavailable")
    }

    failing.mode = "ok"  # the merchant fixed the endpoint: re-send one, then all the others
    first = parked[0]["id"]
    async with sessions.begin() as s:
        assert await webhooks.resend(s, endpoint.id, [first]) == 1
    rows = await _wait_rows(
        database_url,
        endpoint.id,
        lambda rows: any(r["id"] == first and r["status"] == "delivered" for r in rows),
        "the first delivery re-sent",
    )
    assert sorted(r["status"] for r in rows) == ["delivered"] + ["parked"] * (len(expected) - 1)
    async with sessions.begin() as s:
        assert await webhooks.resend(s, endpoint.id, None) == len(expected) - 1
    await _all_settled(database_url, endpoint.id, len(expected))

    delivered = failing.delivered()
    assert sorted(r.key for r in delivered) == sorted(expected)
    assert _versions_by_card(delivered) == {
        card: sorted(versions) for card, versions in _versions_by_card(delivered).items()
    }
    _, metrics = await asyncio.to_thread(dispatcher.get, "/metrics")
    for outcome in ("delivered", "failed", "parked"):
        assert _sample(metrics, f'loyalty_webhook_attempts_total{{outcome="{outcome}"}}') > 0


async def test_a_slow_endpoint_does_not_hold_back_a_good_one(
    bus: Bus,
    sessions: Sessions,
    dispatcher: Dispatcher,
    start_receiver: StartReceiver,
    database_url: str,
) -> None:
    slow, good = start_receiver("hang"), start_receiver("ok")
    code, shop, (to_slow, to_good) = await _seed(sessions, slow, good)
    # A backlog queued all at once: the dispatcher is away while the pipeline answers, and
    # reads it all when it is back (from where its group left off).
    await dispatcher.stop()
    try:
        cards = [await enrol(bus, shop) for _ in range(4)]
        purchases = [purchase(shop, card, 900) for card in cards for _ in range(2)]
        await send(bus, *purchases)
        await bus.wait_results([p["event_id"] for p in purchases])
        await _outbox_sent(database_url)
        expected = await _expected(database_url, code)
    finally:
        await dispatcher.start()

    await _all_settled(database_url, to_good.id, len(expected))
    # Every delivery to the good endpoint went out while the slow one's first attempts were
    # still waiting for an answer: none of them had timed out yet.
    slow_rows = await _rows(database_url, to_slow.id)
    assert [r["last_error"] for r in slow_rows] == [None] * len(expected)
    assert sorted(r.key for r in good.delivered()) == sorted(expected)
    # It holds its own slots only (3 per endpoint), one attempt per card at a time.
    await _until(_async(lambda: len(slow.all()) >= 3), "three attempts at the slow endpoint")
    hanging = slow.all()
    assert len(hanging) == 3
    assert len({r.message["card_number"] for r in hanging}) == 3

    timed_out = await _wait_rows(
        database_url,
        to_slow.id,
        lambda rows: sum(r["last_error"] is not None for r in rows) >= 3,
        "the slow endpoint's first attempts timed out",
        timeout=TIMEOUT_S * 6,
    )
    errors = {r["last_error"] for r in timed_out if r["last_error"] is not None}
    assert errors == {f"timed out after {TIMEOUT_S:g} s"}
    async with sessions.begin() as s:  # leave no hanging backlog to later tests
        await webhooks.delete_endpoint(s, to_slow.id, by="test")


async def test_two_dispatchers_share_the_work_and_still_deliver_each_message_once_in_order(
    bus: Bus,
    sessions: Sessions,
    dispatcher: Dispatcher,
    start_receiver: StartReceiver,
    database_url: str,
) -> None:
    second = dispatcher.twin("webhooks-2")
    await second.start()
    try:
        await dispatcher.wait_ready()  # the group rebalanced: the partitions are shared
        good = start_receiver("ok")
        code, shop, (endpoint,) = await _seed(sessions, good)
        cards = [await enrol(bus, shop) for _ in range(4)]
        purchases = [purchase(shop, card, 500 + i) for i in range(3) for card in cards]
        await send(bus, *purchases)
        await bus.wait_results([p["event_id"] for p in purchases])
        expected = await _expected(database_url, code)

        await _all_settled(database_url, endpoint.id, len(expected))

        received = good.delivered()
        assert sorted(r.key for r in received) == sorted(expected)
        assert _versions_by_card(received) == {
            card: sorted(versions) for card, versions in _versions_by_card(received).items()
        }
        # Both read their share of the partitions (results are keyed by the input's id, so
        # they spread over every partition).
        for one in (dispatcher, second):
            _, metrics = await asyncio.to_thread(one.get, "/metrics")
            assert _sample(metrics, 'loyalty_webhook_queued_total{type="event.processed"}') > 0
    finally:
        await second.stop()


# --- helpers ---------------------------------------------------------------------------------


async def _seed(sessions: Sessions, *receivers: Receiver) -> tuple[str, str, list[WebhookEndpoint]]:
    """A merchant with a store, points and a reward (so notifications go out too), and an
    endpoint for every type per receiver."""
    async with sessions() as s:
        merchant, stores, _ = await seed_merchant(s, stores=1, rewards={"coffee": 100})
    endpoints = []
    async with sessions.begin() as s:
        for receiver in receivers:
            spec = EndpointSpec(receiver.url, webhooks.WEBHOOK_EVENT_TYPES)
            endpoints.append(
                await webhooks.create_endpoint(s, merchant.id, spec, allow_private=True)
            )
    return merchant.code, stores[0].code, endpoints


async def _expected(database_url: str, merchant_code: str) -> dict[str, bytes]:
    """The merchant's output messages of webhook types, by event id: their bytes."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT keys, payloads FROM outbox WHERE topic = ANY($1::text[]) ORDER BY id",
            OUTPUT_TOPICS,
        )
    finally:
        await conn.close()
    found = {}
    for row in rows:
        for _, value in unpack(row["keys"], row["payloads"]):
            message = orjson.loads(value)
            if (
                message.get("merchant_code") == merchant_code
                and message["type"] in webhooks.WEBHOOK_EVENT_TYPES
            ):
                found[message["event_id"]] = value
    assert found, f"no output of {merchant_code} in the outbox"
    return found


async def _rows(database_url: str, endpoint_id: int) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetch(
            "SELECT id, status, attempts, last_status, last_error FROM webhook_deliveries"
            " WHERE endpoint_id = $1 ORDER BY id",
            endpoint_id,
        )
    finally:
        await conn.close()


async def _wait_rows(
    database_url: str,
    endpoint_id: int,
    done: Callable[[list[asyncpg.Record]], bool],
    what: str,
    timeout: float = 60.0,
) -> list[asyncpg.Record]:
    """The endpoint's deliveries once ``done`` holds of them."""
    deadline = time.monotonic() + timeout
    while True:
        rows = await _rows(database_url, endpoint_id)
        if done(rows):
            return rows
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what}: {[dict(r) for r in rows]}")
        await asyncio.sleep(0.2)


async def _all_settled(database_url: str, endpoint_id: int, count: int) -> None:
    await _wait_rows(
        database_url,
        endpoint_id,
        lambda rows: len(rows) == count and all(r["status"] == "delivered" for r in rows),
        f"all {count} deliveries delivered",
    )


async def _outbox_sent(database_url: str) -> None:
    """Wait until the relay has published everything the engine wrote."""
    await _until(
        lambda: _scalar(database_url, "SELECT count(*) = 0 FROM outbox WHERE sent_at IS NULL"),
        "the outbox sent",
    )


async def _scalar(database_url: str, query: str) -> Any:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


async def _until(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what}")
        await asyncio.sleep(0.2)


def _async(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def checked() -> bool:
        return check()

    return checked


def _versions_by_card(received: list[Received]) -> dict[str, list[int]]:
    """Each card's ``card.balance_changed`` versions in the order they arrived."""
    found: dict[str, list[int]] = defaultdict(list)
    for r in received:
        if r.message["type"] == "card.balance_changed":
            found[r.message["card_number"]].append(r.message["version"])
    return dict(found)


def _sample(metrics: str, name: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not exported")
