"""The outbox relay: publishes what the engine committed, at least once, in order per key.

The outbox is split into shards by key, and each row holds one transaction's messages of a
shard and topic (``domain.engine.outbox``). In each round a relay takes every shard no other
relay holds (transaction-scoped advisory locks), publishes their unsent rows' messages in
order, waits for the broker's acknowledgements, marks the rows sent and commits; any
number of relays can run, and a key's messages never overtake each other because one shard
is in one relay's hands at a time. Relays wake on ``NOTIFY loyalty_outbox`` (sent by the
outbox's insert trigger, delivered at commit) and poll as a fallback.

Each relay serves ``/metrics``, ``/healthz`` and ``/readyz`` on its ops port (``core.health``):
messages published by topic and the time of each round's publish, and every few seconds the
outbox's backlog and the age of its oldest unsent row (one query).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from consumers.pipeline import TRANSIENT, make_pool
from core.health import Health, keep_probing, start_ops_server
from core.logs import get_logger
from core.metrics import (
    OUTBOX_BACKLOG,
    OUTBOX_OLDEST_AGE,
    RELAY_PUBLISH_SECONDS,
    RELAY_PUBLISHED,
)
from core.settings import Settings
from domain.engine.outbox import OUTBOX_SHARDS, unpack
from streams.broker import key_partition, producer_config
from streams.topics import TOPICS

log = get_logger(__name__)

RELAY_LOCK_CLASS = 0x10C4  # first key of pg_try_advisory_xact_lock(int, int): "the relay"

# Every shard no other relay holds, in one statement. Taking them all at once lets a cycle
# send a few large record batches per partition instead of many small ones: the broker's cost
# is per batch (measured: ~500 us of broker CPU for a batch of 5 records, ~1 us per record in
# batches of 1,000).
_TAKE_SHARDS = """
SELECT coalesce(array_agg(s), '{}') FROM generate_series(0, $2::int - 1) AS s
WHERE pg_try_advisory_xact_lock($1, s)
"""
_UNSENT = """
SELECT id, topic, count, keys, payloads FROM outbox
WHERE sent_at IS NULL AND shard = ANY($1::smallint[])
ORDER BY id
LIMIT $2
"""
_MARK_SENT = "UPDATE outbox SET sent_at = now() WHERE id = ANY($1::bigint[])"
_PRUNE = "DELETE FROM outbox WHERE sent_at < now() - make_interval(secs => $1)"
# Over the partial index of unsent rows: as cheap as the rounds' own reads.
_BACKLOG = """
SELECT coalesce(sum(count), 0)::bigint AS messages,
       coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS oldest_s
FROM outbox WHERE sent_at IS NULL
"""
BACKLOG_EVERY_S = 5.0

# Marking a row sent leaves a dead entry in the index of unsent rows until a vacuum; the
# relay's reads scan those entries (measured: 23 ms for an empty read over 120,000 of them,
# and autovacuum may wait a minute or more). So the relay vacuums the outbox itself once it
# has marked this many rows since its last vacuum (a row holds a transaction's messages of
# one shard and topic: a few dozen per batch of 1,000 events).
VACUUM_EVERY_ROWS = 2_000

# What a relay waits out and tries again: the database away, or the broker away for longer
# than a send may wait (KafkaTimeoutError). The shard's transaction rolls back, its rows stay
# unsent and go out on a later try (at least once).
_RETRIED: tuple[type[BaseException], ...] = (*TRANSIENT, KafkaError)


@dataclass
class RelayStats:
    """Messages published since start."""

    published: int = 0


class Relay:
    """One relay process: a pool, a producer, and a loop over the shards with work."""

    def __init__(
        self,
        settings: Settings,
        *,
        batch_size: int = 200,
        poll_interval_s: float = 0.5,
        keep_sent_s: float = 3600.0,
    ) -> None:
        self.settings = settings
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.keep_sent_s = keep_sent_s
        self.stats = RelayStats()
        self.rows_since_vacuum = 0
        self._vacuuming: asyncio.Task[None] | None = None
        self._pruning: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self.pool: asyncpg.Pool | None = None
        self.producer: AIOKafkaProducer | None = None
        self._listener: asyncpg.Connection | None = None
        self._partitions: dict[str, list[int]] = {}
        # RELAY_PUBLISHED's child per topic, made at start so each exports 0 until its first
        # message (a rate over it works from the first scrape).
        self._published: dict[str, Any] = {
            t.topic.value: RELAY_PUBLISHED.labels(t.topic.value) for t in TOPICS if not t.is_input
        }

    async def start(self) -> None:
        """Connect to PostgreSQL (pool and a LISTEN connection) and to Kafka."""
        # A mark lost in a database crash only means those rows go out again (at least
        # once, as promised), so the relay's commits need not wait for the WAL to reach disk.
        self.pool = await make_pool(
            # The rounds, the vacuum, the prune and the probes may each hold one at a time.
            self.settings.db_url,
            size=4,
            server_settings={"synchronous_commit": "off"},
        )
        self._listener = await asyncpg.connect(self.settings.db_url)
        await self._listener.add_listener("loyalty_outbox", self._notified)
        self.producer = AIOKafkaProducer(
            # Rounds hand over whole record batches: waiting to fill them would only delay.
            **producer_config(self.settings, "relay"),
            linger_ms=0,
            max_batch_size=1024 * 1024,
        )
        await self.producer.start()

    def _notified(self, *_: object) -> None:
        self._wake.set()

    async def stop(self) -> None:
        """Finish and close connections; unsent rows stay for the next relay."""
        self._stopping.set()
        self._wake.set()
        for task in (self._vacuuming, self._pruning):
            if task is not None:
                with contextlib.suppress(Exception):
                    await task
        if self.producer is not None:
            await self.producer.stop()
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
        if self.pool is not None:
            await self.pool.close()

    async def run(self) -> None:
        """Relay until ``stop``; survives database and broker restarts."""
        pruned_at = 0.0
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                sent = await self.relay_once()
                if self._stopping.is_set():
                    break  # no maintenance task may start after stop() collected them
                if self.rows_since_vacuum >= VACUUM_EVERY_ROWS and self._vacuuming is None:
                    # Beside the rounds (tens of ms on a large outbox), on the pool's other
                    # connection: waiting for it would hold back every message meanwhile.
                    self.rows_since_vacuum = 0
                    self._vacuuming = asyncio.create_task(self._vacuum())
                if loop.time() - pruned_at > 60 and self._pruning is None:
                    # Beside the rounds too: deleting a minute of sent rows (TOASTed packs)
                    # held every message back meanwhile.
                    pruned_at = loop.time()
                    self._pruning = asyncio.create_task(self._prune())
            except _RETRIED as exc:
                log.warning("relay_retrying", error=repr(exc)[:200])
                await asyncio.sleep(1.0)
                await self._relisten()
                continue
            if sent == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval_s)

    async def _relisten(self) -> None:
        # After a PostgreSQL restart the LISTEN connection is gone; polling covers the gap.
        if self._listener is not None and not self._listener.is_closed():
            return
        with contextlib.suppress(*TRANSIENT):
            self._listener = await asyncpg.connect(self.settings.db_url)
            await self._listener.add_listener("loyalty_outbox", self._notified)

    async def relay_once(self) -> int:
        """Publish the unsent rows of every shard no other relay holds; returns how many
        messages.

        One transaction per round: take the free shards, read up to ``batch_size`` of their
        unsent rows in id order, publish their messages, wait for the acknowledgements, mark
        the rows sent, commit. A key's messages all live in one shard, so while a relay holds
        the shard no other relay can send them, and within a round they go out in order.
        """
        assert self.pool is not None
        total = 0
        async with self.pool.acquire() as conn:
            while not self._stopping.is_set():
                async with conn.transaction():
                    shards = await conn.fetchval(_TAKE_SHARDS, RELAY_LOCK_CLASS, OUTBOX_SHARDS)
                    if not shards:
                        return total
                    started = time.perf_counter()
                    rows = await conn.fetch(_UNSENT, shards, self.batch_size)
                    if not rows:
                        return total
                    read = time.perf_counter()
                    await self._publish(rows)
                    published = time.perf_counter()
                    await conn.execute(_MARK_SENT, [r["id"] for r in rows])
                messages = self._measure(rows, published - read)
                log.debug(
                    "relay_round",
                    rows=len(rows),
                    messages=messages,
                    shards=len(shards),
                    read_ms=round((read - started) * 1000, 1),
                    publish_ms=round((published - read) * 1000, 1),
                    mark_commit_ms=round((time.perf_counter() - published) * 1000, 1),
                )
                total += messages
                self.rows_since_vacuum += len(rows)
                self.stats.published += messages
                if len(rows) < self.batch_size:
                    break
        return total

    def _measure(self, rows: list[asyncpg.Record], publish_s: float) -> int:
        """A round's metrics; returns its number of messages."""
        RELAY_PUBLISH_SECONDS.observe(publish_s)
        by_topic: dict[str, int] = {}
        for r in rows:
            by_topic[r["topic"]] = by_topic.get(r["topic"], 0) + r["count"]
        for topic, n in by_topic.items():
            child = self._published.get(topic)
            if child is None:
                child = self._published[topic] = RELAY_PUBLISHED.labels(topic)
            child.inc(n)
        return sum(by_topic.values())

    async def measure_backlog(self) -> tuple[int, float]:
        """Set the outbox gauges: unsent messages, and the age in seconds of the oldest
        unsent row (0 when none waits); returns both."""
        assert self.pool is not None
        row = await self.pool.fetchrow(_BACKLOG)
        assert row is not None
        messages, oldest = int(row["messages"]), max(0.0, float(row["oldest_s"]))
        OUTBOX_BACKLOG.set(messages)
        OUTBOX_OLDEST_AGE.set(oldest)
        return messages, oldest

    async def keep_measuring_backlog(self, every_s: float = BACKLOG_EVERY_S) -> None:
        """``measure_backlog`` every few seconds until cancelled."""
        while True:
            try:
                await self.measure_backlog()
            except _RETRIED as exc:  # the database is away: the probes and rounds say so
                log.debug("outbox_backlog_unmeasured", error=repr(exc)[:200])
            await asyncio.sleep(every_s)

    async def check_database(self) -> None:
        """The readiness probe of the database: ``SELECT 1`` on the pool."""
        if self.pool is None:
            raise ConnectionError("no database pool yet")
        await self.pool.fetchval("SELECT 1")

    async def check_broker(self) -> None:
        """The readiness probe of Kafka: a metadata request on the producer's connection."""
        if self.producer is None:
            raise ConnectionError("no producer yet")
        await self.producer.client.fetch_all_metadata()

    async def _publish(self, rows: list[asyncpg.Record]) -> None:
        """Send rows in per-partition record batches and wait for every acknowledgement.

        Batching by hand costs a third of the CPU of one ``send`` per message. The partition is
        the Java client's (murmur2 of the key), so a key always lands where any other
        producer would put it, and rows keep their id order within a partition.
        """
        assert self.producer is not None
        groups: dict[tuple[str, int], list[tuple[bytes, bytes]]] = {}
        for r in rows:
            topic = r["topic"]
            partitions = self._partitions.get(topic)
            if partitions is None:
                partitions = sorted(await self.producer.partitions_for(topic))
                self._partitions[topic] = partitions
            for key, value in unpack(r["keys"], r["payloads"]):
                partition = key_partition(key, partitions)
                groups.setdefault((topic, partition), []).append((key, value))
        futures = []
        for (topic, partition), messages in groups.items():
            batch = self.producer.create_batch()
            for key, value in messages:
                if batch.append(key=key, value=value, timestamp=None) is None:
                    futures.append(
                        await self.producer.send_batch(batch, topic, partition=partition)
                    )
                    batch = self.producer.create_batch()
                    batch.append(key=key, value=value, timestamp=None)
            futures.append(await self.producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*futures)

    async def _vacuum(self) -> None:
        assert self.pool is not None
        try:
            async with self.pool.acquire() as conn:
                # A role that does not own the table gets a warning and no vacuum:
                # autovacuum then does the work, later.
                started = time.perf_counter()
                await conn.execute("VACUUM outbox")
                log.debug("relay_vacuumed", ms=round((time.perf_counter() - started) * 1000, 1))
        except Exception as exc:  # the next one will do; the rounds report an outage
            log.warning("relay_vacuum_failed", error=repr(exc)[:200])
        finally:
            self._vacuuming = None

    async def _prune(self) -> None:
        assert self.pool is not None
        try:
            async with self.pool.acquire() as conn:
                started = time.perf_counter()
                await conn.execute(_PRUNE, self.keep_sent_s)
                log.debug("relay_pruned", ms=round((time.perf_counter() - started) * 1000, 1))
        except Exception as exc:  # the next one, a minute later, deletes these rows too
            log.warning("relay_prune_failed", error=repr(exc)[:200])
        finally:
            self._pruning = None


async def run_relay(settings: Settings) -> None:
    """Run a relay, with its ops port, until cancelled (SIGINT/SIGTERM through the CLI)."""
    health = Health("relay", required=("database", "broker"))
    ops = start_ops_server(settings, health)
    relay = Relay(settings)
    probes = {"database": relay.check_database, "broker": relay.check_broker}
    background = [asyncio.create_task(keep_probing(health, probes))]
    try:
        await relay.start()
        log.info("relay_started", shards=OUTBOX_SHARDS)
        background.append(asyncio.create_task(relay.keep_measuring_backlog()))
        try:
            await relay.run()
        finally:
            await relay.stop()
            log.info("relay_stopped", published=relay.stats.published)
    finally:
        for task in background:
            task.cancel()
        if ops is not None:
            ops.close()
