"""The outbox relay keeps going through failures that used to stop its process.

A producer raises ``KafkaTimeoutError`` when the broker has been unreachable for its whole
``request_timeout_ms`` (40 s by default): waiting that long on the shared test broker is not
an option, so the relay here gets a real producer whose first sends fail that way. Likewise a
connection cut mid-operation is injected rather than timed. The relay runs against a database
of its own, so the session's relay cannot take its rows.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaTimeoutError

from consumers.relay import Relay
from core.settings import Settings, with_database
from domain.engine.outputs import APPLIED, Result, result_message, wallet_message
from loyalty import migrate
from streams.topics import Topic
from tests.support.outbox import insert_outbox


class BrokerAwayAtFirst:
    """A real producer whose first ``failures`` batch sends time out, as when the broker is away."""

    def __init__(self, real: Any, failures: int) -> None:
        self.real = real
        self.failures = failures

    async def partitions_for(self, topic: str) -> Any:
        return await self.real.partitions_for(topic)

    def create_batch(self) -> Any:
        return self.real.create_batch()

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Any:
        if self.failures > 0:
            self.failures -= 1
            raise KafkaTimeoutError("metadata not available in time")
        return await self.real.send_batch(batch, topic, partition=partition)

    async def stop(self) -> None:
        await self.real.stop()


def _fails_once(relay_once: Callable[[], Awaitable[int]]) -> Callable[[], Awaitable[int]]:
    failed = False

    async def flaky() -> int:
        nonlocal failed
        if not failed:
            failed = True
            raise asyncpg.InternalClientError(
                "cannot switch to state 15; another operation (2) is in progress"
            )
        return await relay_once()

    return flaky


@pytest.fixture
async def own_database(stack: Settings, database_url: str) -> AsyncIterator[str]:
    """A migrated database for one test."""
    name = f"{database_url.rsplit('/', 1)[1]}_relay"
    admin = await asyncpg.connect(with_database(stack.db_url, "postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = with_database(stack.db_url, name)
        await asyncio.to_thread(migrate.upgrade, url)
        yield url
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def test_the_relay_outlasts_a_broker_away_longer_than_its_request_timeout(
    stack: Settings, own_database: str
) -> None:
    await _relay_all(stack, own_database, BrokerAwayAtFirst)


async def test_the_relay_outlasts_a_connection_cut_in_the_middle_of_an_operation(
    stack: Settings, own_database: str
) -> None:
    # What asyncpg raises on a pooled connection PostgreSQL closed mid-query (seen when the
    # database restarts under load): the relay process used to exit on it.
    await _relay_all(stack, own_database, cut_connection=True)


async def _relay_all(
    stack: Settings,
    own_database: str,
    producer: Callable[[Any, int], Any] | None = None,
    cut_connection: bool = False,
) -> None:
    """Queue 20 outputs in ``own_database`` and relay them through the fault."""
    conn = await asyncpg.connect(own_database)
    try:
        now = datetime.now(UTC)
        entries = [
            result_message(Result(uuid.uuid4(), Topic.PURCHASES.value, APPLIED), now)
            for _ in range(20)
        ]
        await insert_outbox(conn, [(e.topic, e.key, e.payload) for e in entries])
        relay = Relay(
            Settings(database_url=own_database, kafka_bootstrap=stack.bootstrap),
            poll_interval_s=0.1,
        )
        await relay.start()
        if producer is not None:
            relay.producer = producer(relay.producer, 3)
        if cut_connection:
            relay.relay_once = _fails_once(relay.relay_once)  # type: ignore[method-assign,assignment]
        running = asyncio.create_task(relay.run())
        try:
            deadline = time.monotonic() + 60
            while await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL"):
                if running.done():
                    running.result()  # re-raises what stopped the relay
                    raise AssertionError("the relay stopped with rows unsent")
                assert time.monotonic() < deadline, "the rows were never sent"
                await asyncio.sleep(0.1)
            assert not running.done()
        finally:
            await relay.stop()
            await asyncio.wait_for(running, 30)
    finally:
        await conn.close()


async def test_two_relays_send_every_row_once_and_in_order_per_key(
    stack: Settings, own_database: str
) -> None:
    # Small rounds, so the two relays take turns many times while the rows go out.
    cards = [f"TEST-{uuid.uuid4().hex[:12]}" for _ in range(5)]
    versions = 120
    conn = await asyncpg.connect(own_database)
    reader = AIOKafkaConsumer(bootstrap_servers=stack.bootstrap, enable_auto_commit=False)
    await reader.start()
    relays = [
        Relay(Settings(database_url=own_database, kafka_bootstrap=stack.bootstrap), batch_size=37)
        for _ in range(2)
    ]
    try:
        parts = [TopicPartition(Topic.WALLET_UPDATES.value, p) for p in range(6)]
        reader.assign(parts)
        for tp, end in (await reader.end_offsets(parts)).items():
            reader.seek(tp, end)
        now = datetime.now(UTC)
        rows = [
            wallet_message(
                card_number=card,
                merchant_code="m",
                stamp_count=v,
                stamps_target=10,
                points_balance=0,
                is_active=True,
                version=v,
                reason="stamp_earned",
                source_event_id=None,
                now=now,
            )
            for v in range(1, versions + 1)
            for card in cards
        ]
        # One transaction per version, as the engine would write them: many rows per shard.
        for v in range(versions):
            await insert_outbox(
                conn,
                [(e.topic, e.key, e.payload) for e in rows[v * len(cards) : (v + 1) * len(cards)]],
            )
        for relay in relays:
            await relay.start()
        sent = await asyncio.gather(*(_relay_until_empty(r, own_database) for r in relays))
        assert sum(sent) == len(rows), "a row was published twice (or never)"
        assert all(sent), f"one relay did all the work ({sent}): the test proves nothing"
        seen: dict[str, list[int]] = {card: [] for card in cards}
        deadline = time.monotonic() + 60
        while sum(map(len, seen.values())) < len(rows) and time.monotonic() < deadline:
            for records in (await reader.getmany(timeout_ms=200)).values():
                for rec in records:
                    key = rec.key.decode() if rec.key else ""
                    if key in seen:
                        seen[key].append(json.loads(rec.value or b"{}")["version"])
        for card in cards:
            assert seen[card] == list(range(1, versions + 1)), card
    finally:
        for relay in relays:
            await relay.stop()
        await reader.stop()
        await conn.close()


async def _relay_until_empty(relay: Relay, database_url: str) -> int:
    """Run rounds until the outbox has nothing unsent; how many messages this relay sent."""
    sent = 0
    deadline = time.monotonic() + 60
    conn = await asyncpg.connect(database_url)
    try:
        while await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL"):
            assert time.monotonic() < deadline, "the rows were never sent"
            sent += await relay.relay_once()
            await asyncio.sleep(0)
    finally:
        await conn.close()
    return sent


async def test_the_relay_prunes_old_sent_rows_beside_its_rounds(
    stack: Settings, own_database: str
) -> None:
    """Rows sent longer ago than ``keep_sent_s`` go, from the task the relay starts beside its
    rounds; rows it sends now stay. (That the rounds go on during a slow delete is not timed
    here.)"""
    conn = await asyncpg.connect(own_database)
    try:
        now = datetime.now(UTC)
        old = result_message(Result(uuid.uuid4(), Topic.PURCHASES.value, APPLIED), now)
        await insert_outbox(conn, [(old.topic, old.key, old.payload)])
        old_ids = {r["id"] for r in await conn.fetch("SELECT id FROM outbox")}
        await conn.execute("UPDATE outbox SET sent_at = now() - interval '2 hours'")
        fresh = [
            result_message(Result(uuid.uuid4(), Topic.PURCHASES.value, APPLIED), now)
            for _ in range(5)
        ]
        await insert_outbox(conn, [(e.topic, e.key, e.payload) for e in fresh])
        fresh_ids = {r["id"] for r in await conn.fetch("SELECT id FROM outbox")} - old_ids
        relay = Relay(
            Settings(database_url=own_database, kafka_bootstrap=stack.bootstrap),
            poll_interval_s=0.1,
            keep_sent_s=3600.0,
        )
        await relay.start()
        running = asyncio.create_task(relay.run())
        try:
            deadline = time.monotonic() + 60
            while True:
                rows = {r["id"]: r["sent_at"] for r in await conn.fetch("SELECT * FROM outbox")}
                if not old_ids & set(rows) and all(rows.values()):
                    break
                assert not running.done(), "the relay stopped"
                assert time.monotonic() < deadline, f"outbox left as {rows}"
                await asyncio.sleep(0.1)
            assert set(rows) == fresh_ids
        finally:
            await relay.stop()
            await asyncio.wait_for(running, 30)
    finally:
        await conn.close()
