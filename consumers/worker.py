"""The worker: a FastStream app consuming every input topic in batches, one consumer group.

Each batch is applied in one database transaction (``consumers.pipeline``); the worker then
commits the batch's Kafka offsets (in the background, see ``Worker._commit``), and on an error
FastStream rewinds every partition of the batch, so nothing is lost and the inbox makes
redelivery harmless. Run as
many worker processes as there are partitions to share.
"""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any, cast

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from faststream import FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.message import AckStatus, StreamMessage
from faststream.middlewares import AckPolicy

from consumers.pipeline import TRANSIENT, Counts, apply_records, make_pool
from consumers.scheduler import run_expiry_scheduler
from core.logs import get_logger
from core.settings import Settings
from streams.broker import make_broker
from streams.topics import INPUT_TOPICS

log = get_logger(__name__)

# After a transient failure the batch is rewound and fetched again; pausing first keeps a
# worker from spinning while PostgreSQL restarts.
TRANSIENT_BACKOFF_S = 1.0

# The longest an event can wait for a fetch already waiting at the broker (see build_app); an
# idle worker then asks 20 times a second, ~1-2 % of a core for the broker.
FETCH_MAX_WAIT_MS = 50


async def _raw(msg: StreamMessage[Any]) -> Any:
    # The pipeline parses the bytes itself (and dead-letters what is not JSON), so FastStream
    # must not try to decode them first.
    return msg.body


class Worker:
    """The worker's state: its database pool and running totals."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pool: asyncpg.Pool | None = None
        self.totals = Counts()
        self.stopping = False
        self._last_end = 0.0
        self._committing: asyncio.Future[None] | None = None

    async def start(self) -> None:
        """Open the database pool (at start-up, never at import)."""
        self.pool = await make_pool(self.settings.db_url, size=2)

    async def stop(self) -> None:
        """Close the pool after the last batch."""
        if self.pool is not None:
            await self.pool.close()

    async def handle(self, msg: KafkaMessage) -> None:
        """Apply one batch; raising makes FastStream rewind the batch's partitions."""
        assert self.pool is not None
        records = msg.raw_message
        batch = records if isinstance(records, tuple) else (records,)
        started = time.perf_counter()
        try:
            counts = await apply_records(self.pool, batch)
        except TRANSIENT as exc:
            log.warning("batch_deferred", size=len(batch), error=repr(exc)[:200])
            await asyncio.sleep(TRANSIENT_BACKOFF_S)
            raise
        self.totals.add(counts)
        ended = time.perf_counter()
        # The time between batches (fetch, offset commit, the event loop) is part of every
        # event's latency: logged next to the batch's own time to tell the two apart.
        log.debug(
            "batch_applied",
            size=len(batch),
            ms=round((ended - started) * 1000, 1),
            since_last_ms=round((started - self._last_end) * 1000, 1) if self._last_end else None,
        )
        self._last_end = ended
        self._commit(msg, batch)
        if self.stopping:
            await self.settle_commits()

    def _commit(self, msg: KafkaMessage, batch: tuple[ConsumerRecord[Any, Any], ...]) -> None:
        """Commit the batch's offsets (its database transaction is committed) in the background.

        Waiting for the broker's answer (~8-10 ms measured) held back the next batch: at
        2,000 events/s that was a quarter of the worker's time. The next batch is fetched
        meanwhile; commits go out one after the other, each with the offsets of its own
        batch, so none can commit records not yet applied. A commit that fails only means
        those records come again, and the inbox skips them.
        """
        offsets: dict[TopicPartition, int] = {}
        for rec in batch:
            tp = TopicPartition(rec.topic, rec.partition)
            offsets[tp] = max(offsets.get(tp, 0), rec.offset + 1)
        consumer = cast(AIOKafkaConsumer, msg.consumer)
        previous = self._committing

        async def commit() -> None:
            if previous is not None:
                await previous
            try:
                await consumer.commit(offsets)
            except Exception as exc:  # any failure: the records come again, the inbox skips them
                log.warning("offset_commit_failed", error=repr(exc)[:200])

        self._committing = asyncio.ensure_future(commit())
        # FastStream's own acknowledgement would commit again, and wait for it.
        msg.committed = AckStatus.ACKED

    async def settle_commits(self) -> None:
        """Wait for the offset commits under way (at shutdown)."""
        if self._committing is not None:
            await self._committing


def build_app(settings: Settings, *, with_scheduler: bool = True) -> tuple[FastStream, KafkaBroker]:
    """The worker's FastStream app and broker."""
    broker = make_broker(settings, role="worker")
    worker = Worker(settings)
    broker.subscriber(
        *[t.value for t in INPUT_TOPICS],
        batch=True,
        group_id=settings.consumer_group,
        max_records=settings.batch_max_records,
        batch_timeout_ms=settings.batch_timeout_ms,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        decoder=_raw,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        # aiokafka sends no new fetch to a broker while one is waiting there, and a fetch of
        # partitions without traffic (an idle input topic) waits the whole fetch_max_wait_ms:
        # at Kafka's default of 500 ms, events arriving meanwhile on busy partitions waited
        # up to half a second (measured: 200-400 ms gaps between batches under steady load).
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
    )(worker.handle)
    app = FastStream(broker)
    scheduler: list[asyncio.Task[None]] = []

    @app.on_startup
    async def _open() -> None:
        await worker.start()

    @app.after_startup
    async def _schedule() -> None:
        # What start-up built (modules, models, the broker) lives as long as the process;
        # frozen, the cyclic collector stops walking it on every full collection (measured:
        # ~130 ms per full collection, one every few batches, stalling the batch meanwhile).
        gc.freeze()
        if with_scheduler:
            scheduler.append(asyncio.create_task(run_expiry_scheduler(settings, broker)))

    @app.on_shutdown
    async def _close() -> None:
        for task in scheduler:
            task.cancel()
        # Before the subscriber stops (it lets the batch in hand finish, which then commits
        # at once): every finished batch's offsets reach the broker before the consumer goes.
        worker.stopping = True
        await worker.settle_commits()

    @app.after_shutdown
    async def _closed() -> None:
        await worker.stop()
        log.info("worker_stopped", **worker.totals.as_dict())

    return app, broker
