"""Batches no test through Kafka can compose on purpose, handed to the pipeline's own entry.

``consumers.pipeline.apply_records`` is what the worker calls with each batch it polls; here
it gets records built by hand, so which events share a batch is chosen, not left to timing.
The session's database is the pipeline's: the audit must stay clean.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from consumers.pipeline import FailedAfterRules, apply_records, make_pool
from domain.audit import audit_database
from domain.engine.admin_actions import adjust_card
from domain.engine.batch import Flow
from domain.engine.overlap import BatchKeys, PreviousFailed
from tests.pipeline.stories import (
    T0,
    enrol,
    key_of,
    purchase,
    refund,
    shop_with_cards,
    topic_of,
)
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


async def test_a_batch_leaves_no_lock_setting_cursor_or_listener_on_its_connection(
    bus: Bus, sessions: Sessions, pool: asyncpg.Pool
) -> None:
    """The engine's pools keep a released connection's session as it is
    (``pipeline._session_kept``, no reset query): that holds only while a batch leaves
    nothing on it for the next one."""
    store, cards = await shop_with_cards(sessions, bus, 2, points_per_euro=10)
    bought = [purchase(store, card, 1000) for card in cards]
    returned = refund(store, bought[0]["order_reference"], 500, T0 + timedelta(minutes=1))
    async with pool.acquire() as conn:
        session = await conn.fetchval("SELECT pg_backend_pid()")
    counts = await apply_records(pool, [record(m) for m in [*bought, returned]])
    assert (counts.applied, counts.rejected) == (3, 0)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT pg_backend_pid()") == session  # the batch's session
        left = await conn.fetchrow(
            """
            SELECT (SELECT count(*) FROM pg_locks
                    WHERE pid = pg_backend_pid() AND locktype = 'advisory') AS advisory_locks,
                   (SELECT count(*) FROM pg_cursors WHERE is_holdable) AS cursors,
                   (SELECT count(*) FROM pg_listening_channels()) AS channels,
                   coalesce(current_setting('loyalty.ledger_rollups', true), '') AS ledger,
                   coalesce(current_setting('loyalty.card_rollups', true), '') AS cards
            """
        )
    assert left is not None
    assert dict(left) == {
        "advisory_locks": 0,
        "cursors": 0,
        "channels": 0,
        "ledger": "",
        "cards": "",
    }


class BatchInFlight:
    """The batch before, still in flight, as the pipeline sees it: a transaction holding one
    card with a change not yet committed, and a commit the test releases."""

    def __init__(self, keys: BatchKeys) -> None:
        self._keys = keys
        self.ended = asyncio.Event()
        self.waited = asyncio.Event()  # the batch after has reached its wait for the commit
        self.failed = False

    @property
    def keys(self) -> BatchKeys:
        return self._keys

    async def committed(self) -> None:
        self.waited.set()
        await self.ended.wait()
        if self.failed:
            raise PreviousFailed("the batch before failed")


async def _hold_card(database_url: str, number: str) -> tuple[asyncpg.Connection, int]:
    """A transaction that adds five stamps to a card by hand (an admin's adjustment: ledger
    rows and all) and keeps its lock, not committed."""
    conn = await asyncpg.connect(database_url)
    await conn.execute("BEGIN")
    card_id: int = await conn.fetchval(
        "SELECT id FROM loyalty_cards WHERE card_number = $1", number
    )
    await adjust_card(
        conn,
        action_id=uuid.uuid4(),
        card_id=card_id,
        stamps=5,
        points=0,
        reason="held by the batch before",
        actor="test",
        now=datetime.now(UTC),
    )
    return conn, card_id


async def _lock_waits(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        waits: int = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return waits
    finally:
        await conn.close()


@dataclass
class HeldAndFree:
    """Two cards, one held by the batch in flight, and a purchase on each."""

    conn: asyncpg.Connection
    before: BatchInFlight
    on_held: dict[str, Any]
    on_free: dict[str, Any]


async def _held_and_free(bus: Bus, sessions: Sessions, database_url: str) -> HeldAndFree:
    store, (held, free) = await shop_with_cards(sessions, bus, 2, points_per_euro=10)
    conn, held_id = await _hold_card(database_url, held)
    before = BatchInFlight(BatchKeys(names=frozenset({held}), card_ids=frozenset({held_id})))
    return HeldAndFree(conn, before, purchase(store, held, 1000), purchase(store, free, 2000))


async def test_a_batch_applies_what_shares_nothing_with_the_batch_in_flight_then_the_rest(
    bus: Bus, sessions: Sessions, pool: asyncpg.Pool, database_url: str
) -> None:
    world = await _held_and_free(bus, sessions, database_url)
    conn, before, on_held, on_free = world.conn, world.before, world.on_held, world.on_free
    decided: list[BatchKeys] = []
    applying = asyncio.ensure_future(
        apply_records(pool, [record(on_held), record(on_free)], flow=Flow(before, decided.append))
    )
    try:
        # The free card's purchase is applied meanwhile; the held card is not even read, so
        # nothing waits for its lock; the batch waits for the commit before.
        for _ in range(50):
            if await _lock_waits(database_url) or applying.done():
                break
            await asyncio.sleep(0.02)
        assert await _lock_waits(database_url) == 0
        assert not applying.done() and decided == []
        await conn.execute("COMMIT")
        before.ended.set()
        counts = await applying
    finally:
        await conn.close()
    assert counts.applied == 2
    assert len(decided) == 1
    # Read after the commit before: its five stamps, and this purchase's one.
    (first,) = await results_of(database_url, on_held["event_id"])
    assert (first["status"], first["stamp_count"], first["points_delta"]) == ("applied", 6, 100)
    (second,) = await results_of(database_url, on_free["event_id"])
    assert (second["status"], second["stamp_count"]) == ("applied", 1)


async def test_a_batch_rolls_back_when_the_batch_in_flight_before_it_fails(
    bus: Bus, sessions: Sessions, pool: asyncpg.Pool, database_url: str
) -> None:
    world = await _held_and_free(bus, sessions, database_url)
    conn, before, on_held, on_free = world.conn, world.before, world.on_held, world.on_free
    applying = asyncio.ensure_future(
        apply_records(pool, [record(on_held), record(on_free)], flow=Flow(before))
    )
    await asyncio.sleep(0.3)
    await conn.execute("ROLLBACK")
    await conn.close()
    before.failed = True
    before.ended.set()
    with pytest.raises(PreviousFailed):
        await applying
    # Nothing of it was committed, the free card's purchase included.
    assert await results_of(database_url, on_free["event_id"]) == []
    assert await results_of(database_url, on_held["event_id"]) == []


async def test_a_card_of_the_batch_in_flight_named_another_way_waits_for_its_commit(
    bus: Bus,
    sessions: Sessions,
    pool: asyncpg.Pool,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store, (held,) = await shop_with_cards(sessions, bus, 1, points_per_euro=10)
    conn, held_id = await _hold_card(database_url, held)
    # The batch before names the card by a value this batch does not use.
    before = BatchInFlight(BatchKeys(names=frozenset({"elsewhere"}), card_ids=frozenset({held_id})))
    on_held = purchase(store, held, 1000)
    applying = asyncio.ensure_future(apply_records(pool, [record(on_held)], flow=Flow(before)))
    try:
        await asyncio.sleep(0.3)
        assert not applying.done()
        await conn.execute("COMMIT")
        before.ended.set()
        counts = await applying
    finally:
        await conn.close()
    # Its load waited for the card's lock; seeing the card held, the batch rolled back and
    # was applied again after the commit.
    logged = capsys.readouterr()
    assert "batch_applied_after_previous" in logged.out + logged.err
    assert counts.applied == 1
    (result,) = await results_of(database_url, on_held["event_id"])
    assert (result["status"], result["stamp_count"]) == ("applied", 6)


async def _card_id(database_url: str, number: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        card_id: int = await conn.fetchval(
            "SELECT id FROM loyalty_cards WHERE card_number = $1", number
        )
        return card_id
    finally:
        await conn.close()


async def test_a_batch_aborted_by_a_deadlock_is_tried_again_whole_and_loses_nothing(
    bus: Bus,
    sessions: Sessions,
    pool: asyncpg.Pool,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store, (first, second) = await shop_with_cards(sessions, bus, 2, points_per_euro=10)
    first_id, second_id = await _card_id(database_url, first), await _card_id(database_url, second)
    assert first_id < second_id  # the batch locks its cards in id order
    # Another writer (another worker, an admin) holds the second card, and will want the
    # first: the batch holds the first and waits for the second. PostgreSQL aborts the batch,
    # whose wait began first (the other's deadlock check is put off).
    other = await asyncpg.connect(database_url)
    await other.execute("SET deadlock_timeout = '30s'")
    await other.execute("BEGIN")
    await other.execute("SELECT 1 FROM loyalty_cards WHERE id = $1 FOR UPDATE", second_id)
    bought = [purchase(store, first, 1000), purchase(store, second, 2000)]
    applying = asyncio.ensure_future(apply_records(pool, [record(m) for m in bought]))
    try:
        for _ in range(100):
            if await _lock_waits(database_url):
                break
            await asyncio.sleep(0.02)
        await other.execute("SELECT 1 FROM loyalty_cards WHERE id = $1 FOR UPDATE", first_id)
        await other.execute("COMMIT")
        counts = await asyncio.wait_for(applying, 30)
    finally:
        await other.close()
    logged = capsys.readouterr()
    assert "batch_contended_retrying" in logged.out + logged.err
    # Tried again as a batch: neither split into single events nor dead-lettered.
    assert (counts.applied, counts.retried_one_by_one, counts.dead_lettered) == (2, 0, 0)
    for message in bought:
        (result,) = await results_of(database_url, message["event_id"])
        assert (result["status"], result["stamp_count"]) == ("applied", 1)


async def test_a_batch_failing_after_the_next_may_have_started_is_not_tried_again_in_place(
    bus: Bus, sessions: Sessions, pool: asyncpg.Pool, database_url: str
) -> None:
    store, (card,) = await shop_with_cards(sessions, bus, 1, points_per_euro=10)
    bought = purchase(store, card, 1000)
    before = BatchInFlight(BatchKeys(names=frozenset({"elsewhere"})))
    decided: list[BatchKeys] = []
    applying = asyncio.ensure_future(
        apply_records(pool, [record(bought)], flow=Flow(before, decided.append))
    )
    # While it waits for the commit before, another worker commits the same event (a
    # rebalance): the batch's inbox row then fails, after it told the batch after that its
    # rules were done. A retry here could wait for locks that batch holds while it waits for
    # this one: it is left to the worker, which reads both again.
    await asyncio.wait_for(before.waited.wait(), 10)
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO processed_events (event_id, topic, status) VALUES ($1, $2, 'applied')",
            uuid.UUID(bought["event_id"]),
            topic_of(bought),
        )
    finally:
        await conn.close()
    before.ended.set()
    with pytest.raises(FailedAfterRules):
        await asyncio.wait_for(applying, 10)
    assert len(decided) == 1
    assert await results_of(database_url, bought["event_id"]) == []


async def test_an_event_the_database_refuses_is_dead_lettered_and_the_rest_of_its_batch_applied(
    bus: Bus,
    sessions: Sessions,
    pool: asyncpg.Pool,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store, (card,) = await shop_with_cards(sessions, bus, 1, points_per_euro=10)
    good = purchase(store, card, 1000)
    poison = purchase(store, card, 2000, order_reference=f"refused-{uuid.uuid4().hex[:8]}")
    # A rule the engine does not know, which only the database enforces: the batch fails,
    # then each event alone; the refused one is tried twice (it could have been another
    # worker's same event) and dead-lettered with the database's reason.
    conn = await asyncpg.connect(database_url)
    constraint = f"test_refused_{uuid.uuid4().hex[:8]}"
    await conn.execute(
        f"ALTER TABLE purchases ADD CONSTRAINT {constraint} "
        f"CHECK (order_reference <> '{poison['order_reference']}') NOT VALID"
    )
    refused = record(poison)
    try:
        counts = await apply_records(pool, [record(good), refused])
    finally:
        await conn.execute(f"ALTER TABLE purchases DROP CONSTRAINT {constraint}")
    try:
        # A dead letter has an id of its own; it is found by the record's position.
        error = await conn.fetchval(
            'SELECT error FROM dead_letters WHERE source_topic = $1 AND "offset" = $2',
            topic_of(poison),
            refused.offset,
        )
    finally:
        await conn.close()
    assert (counts.applied, counts.dead_lettered, counts.retried_one_by_one) == (1, 1, 2)
    assert error.startswith("could not be applied: CheckViolationError")
    logged = capsys.readouterr()
    assert "event_failed_reading_again" in logged.out + logged.err
    # The database's reason quotes the row ("Failing row contains (...)"): the dead letter
    # keeps it, the logs do not.
    assert poison["order_reference"] in error
    assert poison["order_reference"] not in logged.out + logged.err
    (result,) = await results_of(database_url, good["event_id"])
    assert result["status"] == "applied"
    assert await results_of(database_url, poison["event_id"]) == []
