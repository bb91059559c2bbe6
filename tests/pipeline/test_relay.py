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
from aiokafka.errors import KafkaTimeoutError

from consumers.relay import Relay
from domain.engine.outputs import APPLIED, Result, result_message
from loyalty import migrate
from loyalty.settings import Settings, with_database
from streams.topics import Topic


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
        await conn.executemany(
            "INSERT INTO outbox (topic, key, payload) VALUES ($1, $2, $3::json)",
            [(e.topic, e.key, json.dumps(e.payload)) for e in entries],
        )
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
