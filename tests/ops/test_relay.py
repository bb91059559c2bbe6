"""The relay's ops port: what it published, and how far behind the outbox is."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from prometheus_client import REGISTRY

from consumers.relay import Relay
from core.settings import Settings
from domain.engine.outputs import APPLIED, Result, result_message
from streams.topics import Topic
from tests.ops.scrape import labelled, ops_url, scrape, scrape_until, value, wait_ready
from tests.pipeline.stories import enrolment, send
from tests.support.db import fresh_database
from tests.support.outbox import insert_outbox
from tests.support.pipeline import Bus, PipelineProcesses

RESULTS = Topic.RESULTS.value


async def test_the_relay_is_ready_and_exports_what_it_published_and_the_backlog(
    stack: Settings, ops_processes: PipelineProcesses, ops_bus: Bus
) -> None:
    base = await ops_url(stack, "relay", ops_processes.procs["relay"].pid)
    assert await wait_ready(base) == {
        "status": "ready",
        "role": "relay",
        "database": True,
        "broker": True,
    }
    before = await scrape(base)

    # An enrolment at an unknown store: one result, relayed.
    message = enrolment(f"nowhere-{uuid.uuid4().hex[:8]}")
    await send(ops_bus, message)
    await ops_bus.wait_results([message["event_id"]])

    after = await scrape_until(
        base,
        lambda s: (
            value(s, "loyalty_relay_published_total", topic=RESULTS)
            > value(before, "loyalty_relay_published_total", topic=RESULTS)
            and ("loyalty_outbox_backlog_messages", frozenset()) in s
        ),
    )
    assert value(after, "loyalty_relay_publish_seconds_count") > value(
        before, "loyalty_relay_publish_seconds_count"
    )
    # Gauges of a backlog the relay keeps emptying: present, and never negative.
    assert value(after, "loyalty_outbox_backlog_messages") >= 0
    assert ("loyalty_outbox_oldest_unsent_age_seconds", frozenset()) in after
    assert value(after, "loyalty_outbox_oldest_unsent_age_seconds") >= 0
    assert not any(name.startswith("loyalty_events") for name, _ in after)
    # Each output topic's count exists from the start.
    assert {x["topic"] for x in labelled(after, "loyalty_relay_published_total")} >= {
        Topic.RESULTS.value,
        Topic.WALLET_UPDATES.value,
        Topic.DLQ.value,
        Topic.NOTIFICATIONS.value,
    }


@pytest.fixture
def quiet_database(stack: Settings) -> Iterator[str]:
    """A migrated database no relay process watches."""
    with fresh_database(stack.db_url, f"loyalty_test_{os.getpid()}_backlog") as url:
        yield url


@pytest.fixture
async def relay(stack: Settings, quiet_database: str) -> AsyncIterator[Relay]:
    """A relay connected to the quiet database, never run: only measured."""
    relay = Relay(Settings(database_url=quiet_database, kafka_bootstrap=stack.bootstrap))
    await relay.start()
    yield relay
    await relay.stop()


async def test_the_backlog_gauges_count_unsent_messages_and_age_the_oldest_row(
    relay: Relay, quiet_database: str
) -> None:
    assert await relay.measure_backlog() == (0, 0.0)
    assert REGISTRY.get_sample_value("loyalty_outbox_backlog_messages") == 0
    assert REGISTRY.get_sample_value("loyalty_outbox_oldest_unsent_age_seconds") == 0

    conn = await asyncpg.connect(quiet_database)
    try:
        now = datetime.now(UTC)
        old = [result_message(Result(uuid.uuid4(), RESULTS, APPLIED), now) for _ in range(3)]
        await insert_outbox(
            conn, [(m.topic, m.key, m.payload) for m in old], created_at=now - timedelta(hours=1)
        )
        new = [result_message(Result(uuid.uuid4(), RESULTS, APPLIED), now) for _ in range(2)]
        await insert_outbox(conn, [(m.topic, m.key, m.payload) for m in new])

        messages, oldest = await relay.measure_backlog()

        assert messages == 5
        assert 3600 <= oldest < 3600 + 300
        assert REGISTRY.get_sample_value("loyalty_outbox_backlog_messages") == 5
        assert REGISTRY.get_sample_value("loyalty_outbox_oldest_unsent_age_seconds") == oldest

        # Sent rows are no backlog, however old.
        await conn.execute("UPDATE outbox SET sent_at = now()")
        assert await relay.measure_backlog() == (0, 0.0)
    finally:
        await conn.close()


async def test_a_round_counts_its_messages_by_topic(relay: Relay, quiet_database: str) -> None:
    def published(topic: str) -> float:
        return REGISTRY.get_sample_value("loyalty_relay_published_total", {"topic": topic}) or 0.0

    rounds = REGISTRY.get_sample_value("loyalty_relay_publish_seconds_count") or 0.0
    before = {t: published(t) for t in (RESULTS, Topic.DLQ.value)}
    conn = await asyncpg.connect(quiet_database)
    try:
        now = datetime.now(UTC)
        results = [result_message(Result(uuid.uuid4(), RESULTS, APPLIED), now) for _ in range(4)]
        await insert_outbox(conn, [(m.topic, m.key, m.payload) for m in results])

        assert await relay.relay_once() == 4
    finally:
        await conn.close()

    assert published(RESULTS) - before[RESULTS] == 4
    assert published(Topic.DLQ.value) == before[Topic.DLQ.value]
    assert REGISTRY.get_sample_value("loyalty_relay_publish_seconds_count") == rounds + 1
