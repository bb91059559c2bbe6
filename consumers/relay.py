"""The outbox relay: publishes what the engine committed, at least once, in order per key.

The outbox is split into shards by key, and each row holds one transaction's messages of a
shard and topic (``domain.engine.outbox``). In each round a relay takes every shard no other
relay holds (transaction-scoped advisory locks), publishes their unsent rows' messages in
order, waits for the broker's acknowledgements, marks the rows sent and commits; any
number of relays can run, and a key's messages never overtake each other because one shard
is in one relay's hands at a time. Relays wake on ``NOTIFY loyalty_outbox`` (sent by the
engine at commit) and poll as a fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

from consumers.pipeline import TRANSIENT, make_pool
from core.logs import get_logger
from core.settings import Settings
from domain.engine.outbox import OUTBOX_SHARDS, unpack
from streams.broker import producer_config

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
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self.pool: asyncpg.Pool | None = None
        self.producer: AIOKafkaProducer | None = None
        self._listener: asyncpg.Connection | None = None
        self._partitions: dict[str, list[int]] = {}
        self._partitioner = DefaultPartitioner()

    async def start(self) -> None:
        """Connect to PostgreSQL (pool and a LISTEN connection) and to Kafka."""
        # A mark lost in a database crash only means those rows go out again (at least
        # once, as promised), so the relay's commits need not wait for the WAL to reach disk.
        self.pool = await make_pool(
            self.settings.db_url, size=3, server_settings={"synchronous_commit": "off"}
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
        if self._vacuuming is not None:
            with contextlib.suppress(Exception):
                await self._vacuuming
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
                if self.rows_since_vacuum >= VACUUM_EVERY_ROWS and self._vacuuming is None:
                    # Beside the rounds (tens of ms on a large outbox), on the pool's other
                    # connection: waiting for it would hold back every message meanwhile.
                    self.rows_since_vacuum = 0
                    self._vacuuming = asyncio.create_task(self._vacuum())
                if loop.time() - pruned_at > 60:
                    pruned_at = loop.time()
                    await self._prune()
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
                messages = sum(r["count"] for r in rows)
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
                partition = self._partitioner(key, partitions, partitions)
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
                await conn.execute("VACUUM outbox")
        except _RETRIED as exc:  # the next one will do; the rounds report the outage
            log.warning("relay_vacuum_failed", error=repr(exc)[:200])
        finally:
            self._vacuuming = None

    async def _prune(self) -> None:
        assert self.pool is not None
        async with self.pool.acquire() as conn:
            await conn.execute(_PRUNE, self.keep_sent_s)


async def run_relay(settings: Settings) -> None:
    """Run a relay until cancelled (SIGINT/SIGTERM through the CLI)."""
    relay = Relay(settings)
    await relay.start()
    log.info("relay_started", shards=OUTBOX_SHARDS)
    try:
        await relay.run()
    finally:
        await relay.stop()
        log.info("relay_stopped", published=relay.stats.published)
