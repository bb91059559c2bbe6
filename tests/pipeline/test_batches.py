"""Batches no test through Kafka can compose on purpose, handed to the pipeline's own entry.

``consumers.pipeline.apply_records`` is what the worker calls with each batch it polls; here
it gets records built by hand, so which events share a batch is chosen, not left to timing.
The session's database is the pipeline's: the audit must stay clean.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from itertools import count
from typing import Any

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from consumers.pipeline import apply_records, make_pool
from domain.audit import audit_database
from tests.pipeline.stories import T0, enrol, key_of, purchase, refund, topic_of
from tests.support.outbox import outbox_messages
from tests.support.pipeline import Bus
from tests.support.seed import seed_merchant

Sessions = async_sessionmaker[AsyncSession]
_offsets = count(10**12)  # far from any real offset, so no dead letter position collides


@dataclass
class Record:
    """A Kafka record as the pipeline reads it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def record(message: dict[str, Any]) -> Record:
    return Record(
        topic_of(message), 0, next(_offsets), key_of(message).encode(), json.dumps(message).encode()
    )


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await make_pool(database_url, size=1)
    yield pool
    await pool.close()


async def results_of(database_url: str, event_id: str) -> list[dict[str, Any]]:
    """The results the engine wrote for an input, from the outbox."""
    conn = await asyncpg.connect(database_url)
    try:
        messages = await outbox_messages(conn, "loyalty.results.v1")
    finally:
        await conn.close()
    return [p for _, _, p in messages if p["source_event_id"] == event_id]


async def test_a_held_return_is_applied_once_when_two_stores_name_its_order_in_a_batch(
    bus: Bus, sessions: Sessions, pool: asyncpg.Pool, database_url: str
) -> None:
    async with sessions() as s:
        merchant, stores, _ = await seed_merchant(s, points_per_euro=10)
    one, two = stores[0].code, stores[1].code
    card = await enrol(bus, one)
    bought = purchase(one, card, 1000, T0 + timedelta(minutes=1))
    order = bought["order_reference"]
    early = refund(one, order, 400, T0 + timedelta(minutes=2))
    later = refund(two, order, 100, T0 + timedelta(minutes=3), card=card)

    held = await apply_records(pool, [record(early)])
    assert held.held == 1
    # The purchase, and a return of the same order at the other store, in one batch.
    counts = await apply_records(pool, [record(bought), record(later)])
    assert (counts.applied, counts.rejected, counts.held) == (3, 0, 0)

    applied = await results_of(database_url, early["event_id"])
    assert [(r["status"], r["points_delta"]) for r in applied] == [("held", 0), ("applied", -40)]
    (last,) = await results_of(database_url, later["event_id"])
    assert (last["status"], last["points_delta"], last["points_balance"]) == ("applied", -10, 50)
    report = await audit_database(database_url, merchant_code=merchant.code, unsent_grace_s=60)
    assert report.clean, [str(d) for d in report.differences]
