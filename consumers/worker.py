"""The worker: a FastStream app consuming every input topic in batches, one consumer group.

Each batch is applied in one database transaction (``consumers.pipeline``); the worker then
commits the batch's Kafka offsets (in the background, see ``Worker._commit``), and on an error
FastStream rewinds every partition of the batch, so nothing is lost and the inbox makes
redelivery harmless. Run as
many worker processes as there are partitions to share.

Each worker serves ``/metrics``, ``/healthz`` and ``/readyz`` on its ops port
(``core.health``): ready when PostgreSQL and Kafka answer and the group has taken it in. Its
metrics are updated once per batch, never once per event.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Sequence
from itertools import chain
from typing import Any, TypeAlias, cast

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import IllegalStateError
from faststream import FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.message import AckStatus, StreamMessage
from faststream.middlewares import AckPolicy

from consumers.inflight import InFlight
from consumers.pipeline import (
    CONTENTION,
    DEAD_LETTERED,
    OUTCOMES,
    TRANSIENT,
    Counts,
    FailedAfterRules,
    make_pool,
)
from consumers.scheduler import run_expiry_scheduler
from core.health import (
    GroupWatch,
    Health,
    OpsServer,
    keep_measuring_lag,
    keep_probing,
    start_ops_server,
)
from core.logs import get_logger
from core.metrics import (
    BATCH_SECONDS,
    BATCH_SIZE,
    BATCHES_DEFERRED,
    BATCHES_OVERLAPPED,
    DEAD_LETTERS,
    EVENTS,
)
from core.settings import Settings
from domain.engine.overlap import PreviousFailed
from streams.broker import make_broker
from streams.topics import INPUT_TOPICS, TYPE_OF_TOPIC

log = get_logger(__name__)

# After a transient failure the batch is rewound and fetched again; pausing first keeps a
# worker from spinning while PostgreSQL restarts.
TRANSIENT_BACKOFF_S = 1.0

# The longest an event can wait for a fetch already waiting at the broker (see build_app); an
# idle worker then asks 20 times a second, ~1-2 % of a core for the broker.
FETCH_MAX_WAIT_MS = 50

# How long a batch that is not full waits for the broker's answer to the fetch its start set
# off (``Worker._top_up``): that answer takes ~1-3 ms on one machine; an idle worker pays it
# once per batch.
TOP_UP_MS = 5

# New container objects between two young collections of the cyclic garbage collector
# (Python's default: 700); see ``_schedule`` in ``build_app``.
GC_YOUNG_OBJECTS = 50_000

# While PostgreSQL cannot be reached at start-up, the worker tries again, waiting longer each
# time up to this; it joins no group meanwhile, and its /readyz says why.
START_RETRY_MAX_S = 30.0


async def _raw(msg: StreamMessage[Any]) -> Any:
    # The pipeline parses the bytes itself (and dead-letters what is not JSON), so FastStream
    # must not try to decode them first.
    return msg.body


class _GroupListener(GroupWatch, ConsumerRebalanceListener):  # type: ignore[misc]
    """The group's rebalances, for ``/readyz`` and the lag gauges (aiokafka takes only a
    ``ConsumerRebalanceListener``)."""


Record: TypeAlias = ConsumerRecord[Any, Any]


def rewind(consumer: AIOKafkaConsumer, records: Sequence[Record]) -> None:
    """Seek each partition of ``records`` back to its earliest one, so a batch that failed
    comes again. FastStream does so for the records it handed over; the worker's top-up
    (``Worker._top_up``) is the worker's to rewind. A partition in both ends at FastStream's
    offset, the earlier one, since FastStream seeks after the handler raised."""
    earliest: dict[TopicPartition, int] = {}
    for rec in records:
        tp = TopicPartition(rec.topic, rec.partition)
        earliest[tp] = min(earliest.get(tp, rec.offset), rec.offset)
    for tp, offset in earliest.items():
        try:
            consumer.seek(tp, offset)
        except IllegalStateError:
            # Revoked meanwhile: its next owner reads it from the last committed offset,
            # which this batch never moved.
            log.info("rewind_skipped_revoked", topic=tp.topic, partition=tp.partition)


class Worker:
    """The worker's state: its database pool and running totals."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pool: asyncpg.Pool | None = None
        self.totals = Counts()
        self.stopping = False
        self._last_end = 0.0
        self._committing: asyncio.Future[None] | None = None
        self._inflight: InFlight | None = None
        # Set when a batch failed after its rules: the batch read again runs alone, so its
        # retries and its one-by-one fallback never wait for a batch started beside it.
        self._alone_next = False
        self._debug = logging.getLogger().isEnabledFor(logging.DEBUG)
        # prometheus_client's label lookup takes a lock and hashes the labels: the few
        # children a worker uses are kept at hand. Made at start, every known series exports
        # 0 from the first scrape, so a rate or an alert over it works before its first event.
        self._events: dict[tuple[str, str], Any] = {
            (topic.value, status): EVENTS.labels(topic.value, TYPE_OF_TOPIC[topic.value], status)
            for topic in INPUT_TOPICS
            for status in OUTCOMES
        }
        self._dead: dict[str, Any] = {t.value: DEAD_LETTERS.labels(t.value) for t in INPUT_TOPICS}

    async def start(self) -> None:
        """Open the database pool (at start-up, never at import); while PostgreSQL cannot be
        reached, try again (a wrong password or database name still fails at once)."""
        delay = 1.0
        while True:
            try:
                # Two batches in flight, and the probes.
                self.pool = await make_pool(self.settings.db_url, size=3)
                return
            except TRANSIENT as exc:
                log.warning("database_unreachable", error=repr(exc)[:200], retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, START_RETRY_MAX_S)

    async def check_database(self) -> None:
        """The readiness probe of the database: ``SELECT 1`` on the pool."""
        if self.pool is None:
            raise ConnectionError("no database pool yet")
        await self.pool.fetchval("SELECT 1")

    async def stop(self) -> None:
        """Close the pool after the last batch."""
        if self.pool is not None:
            await self.pool.close()

    async def handle(self, msg: KafkaMessage) -> None:
        """Apply one batch; raising makes FastStream rewind the batch's partitions.

        The handler returns once the batch's rules are done (``consumers.inflight``): its last
        writes and its commit go on while the next batch is fetched and started, and its
        offsets are committed after its commit (``_commit``).
        """
        assert self.pool is not None
        records = msg.raw_message
        consumer = cast(AIOKafkaConsumer, msg.consumer)
        batch = records if isinstance(records, tuple) else (records,)
        more = await self._top_up(consumer, len(batch))
        batch += more
        previous = self._inflight
        # Only a full batch (the worker is behind) starts beside the one before: under a
        # lighter load overlapping buys no throughput, and the smaller batches it makes
        # cost latency (p50 32 -> 58 ms, p99 80 -> 184 ms at 2,000 events/s, measured).
        overlap = (
            self.settings.batch_overlap
            and len(batch) >= self.settings.batch_max_records
            and not self._alone_next
        )
        self._alone_next = False
        # A batch before that has ended (committed or failed) is no longer in flight.
        if previous is not None and (not overlap or previous.task.done()):
            if await _fails(previous):
                await self._rewind_both(consumer, previous, batch)
                msg.committed = AckStatus.ACKED  # rewound: FastStream must not seek nor commit
                return
            previous = None
        if previous is not None:
            BATCHES_OVERLAPPED.inc()
        started = time.perf_counter()
        run = InFlight(self.pool, batch, previous, overlap=overlap)
        self._inflight = run
        try:
            await run.decided()
        except Exception as exc:
            self._inflight = None
            if previous is not None and (isinstance(exc, PreviousFailed) or await _fails(previous)):
                await self._rewind_both(consumer, previous, batch)
                msg.committed = AckStatus.ACKED
                return
            if _transient(exc):
                log.warning("batch_deferred", size=len(batch), error=repr(exc)[:200])
                BATCHES_DEFERRED.inc()
                await asyncio.sleep(TRANSIENT_BACKOFF_S)
            rewind(consumer, more)
            raise
        run.task.add_done_callback(lambda _: self._ended(consumer, run))
        self._commit(consumer, run, started)
        # FastStream's own acknowledgement would commit again, and wait for it.
        msg.committed = AckStatus.ACKED
        if self.stopping:
            await self.settle_commits()

    async def _rewind_both(
        self, consumer: AIOKafkaConsumer, previous: InFlight, batch: Sequence[Record]
    ) -> None:
        """The batch before failed after this one was fetched: both are read again, from the
        earlier's offsets (FastStream would seek to this one's, past the other's records)."""
        error = previous.failed()
        log.warning(
            "batch_rewound_with_previous",
            size=len(batch),
            previous_size=len(previous.records),
            error=repr(error)[:200],
        )
        self._alone_next = True
        if _transient(error):
            BATCHES_DEFERRED.inc()
            await asyncio.sleep(TRANSIENT_BACKOFF_S)
        rewind(consumer, (*previous.records, *batch))
        if self._inflight is previous:
            self._inflight = None

    def _ended(self, consumer: AIOKafkaConsumer, run: InFlight) -> None:
        """A batch that fails once the worker has moved on, with no batch after it to notice
        (an idle worker), is rewound here; a batch after it rewinds both."""
        if self._inflight is run and run.failed() is not None:
            log.warning("batch_failed_after_rules", size=len(run.records))
            self._alone_next = True
            rewind(consumer, run.records)
            # Still the worker's last batch: the next one may have been fetched before this
            # rewind, so it sees this one failed and rewinds both (``handle``).

    async def _top_up(self, consumer: AIOKafkaConsumer, size: int) -> tuple[Record, ...]:
        """The records that reached the broker since the consumer's buffer was filled, up to
        the batch's limit.

        The consumer fetches in the background, but not a partition whose records wait in its
        buffer: what it holds when a batch starts came in the first moments of the batch
        before, and whatever arrived later waited at the broker for one batch more (measured
        at 2,000 events/s: every record of a batch had waited 16-32 ms longer than its batch
        took). Taking the buffer drained the fetcher's way, it asks the broker again at once;
        waiting ``TOP_UP_MS`` at most for that answer takes everything sent so far.
        """
        room = self.settings.batch_max_records - size
        if room <= 0:
            return ()
        more = await consumer.getmany(timeout_ms=TOP_UP_MS, max_records=room)
        return tuple(chain.from_iterable(more.values()))

    def _measure(self, counts: Counts, size: int, seconds: float) -> None:
        """The batch's metrics: a few updates per batch, whatever its size."""
        BATCH_SIZE.observe(size)
        BATCH_SECONDS.observe(seconds)
        for (topic, status), n in counts.by_topic.items():
            child = self._events.get((topic, status))
            if child is None:
                kind = TYPE_OF_TOPIC.get(topic, "unknown")
                child = self._events[(topic, status)] = EVENTS.labels(topic, kind, status)
            child.inc(n)
            if status == DEAD_LETTERED:
                dead = self._dead.get(topic)
                if dead is None:
                    dead = self._dead[topic] = DEAD_LETTERS.labels(topic)
                dead.inc(n)

    def _commit(self, consumer: AIOKafkaConsumer, run: InFlight, started: float) -> None:
        """Commit the batch's offsets once its database transaction is committed, in the
        background.

        Waiting for the broker's answer (~8-10 ms measured) held back the next batch: at
        2,000 events/s that was a quarter of the worker's time. The next batch is fetched
        meanwhile; commits go out one after the other, each with the offsets of its own
        batch, so none can commit records not yet applied. A commit that fails only means
        those records come again, and the inbox skips them; a batch that fails commits
        nothing (it is rewound, ``handle``).
        """
        offsets: dict[TopicPartition, int] = {}
        for rec in run.records:
            tp = TopicPartition(rec.topic, rec.partition)
            offsets[tp] = max(offsets.get(tp, 0), rec.offset + 1)
        previous = self._committing

        async def commit() -> None:
            if previous is not None:
                await previous
            try:
                counts = await asyncio.shield(run.task)
            except BaseException:
                return
            self._applied(counts, run, started)
            try:
                await consumer.commit(offsets)
            except Exception as exc:  # any failure: the records come again, the inbox skips them
                log.warning("offset_commit_failed", error=repr(exc)[:200])

        self._committing = asyncio.ensure_future(commit())

    def _applied(self, counts: Counts, run: InFlight, started: float) -> None:
        """A batch committed: its totals, metrics and (at debug) timings."""
        self.totals.add(counts)
        ended = time.perf_counter()
        batch = run.records
        self._measure(counts, len(batch), ended - started)
        # The time between batches (fetch, offset commit, the event loop) is part of every
        # event's latency: logged next to the batch's own time to tell the two apart.
        if self._debug:
            # How long the batch's records had waited for it (their producers' timestamps):
            # whether a record waits for one batch or for two is the latency's main term.
            stamps = [rec.timestamp for rec in batch]  # type: ignore[attr-defined]
            started_ms = (time.time() - (ended - started)) * 1000  # wall clock, as the stamps
            log.debug(
                "batch_applied",
                size=len(batch),
                ms=round((ended - started) * 1000, 1),
                since_last_ms=round((started - self._last_end) * 1000, 1)
                if self._last_end
                else None,
                oldest_waited_ms=round(started_ms - min(stamps)),
                newest_waited_ms=round(started_ms - max(stamps)),
            )
        self._last_end = ended

    async def settle_commits(self) -> None:
        """Wait for the offset commits under way (at shutdown)."""
        if self._committing is not None:
            await self._committing


def _transient(error: BaseException | None) -> bool:
    """Whether the error (or the one a batch failed with after its rules) will pass."""
    if isinstance(error, FailedAfterRules):
        error = error.__cause__
    return isinstance(error, (*TRANSIENT, *CONTENTION))


async def _fails(run: InFlight) -> bool:
    """Whether the batch ends with an error (waits for its end)."""
    await asyncio.wait((run.task,))
    return run.failed() is not None


def build_app(settings: Settings, *, with_scheduler: bool = True) -> tuple[FastStream, KafkaBroker]:
    """The worker's FastStream app and broker (the app also runs the worker's ops port)."""
    broker = make_broker(settings, role="worker")
    worker = Worker(settings)
    health = Health("worker", required=("database", "broker", "group"))
    watch = _GroupListener(health, settings.consumer_group)
    subscriber = broker.subscriber(
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
        listener=watch,
    )
    subscriber(worker.handle)
    app = FastStream(broker)
    scheduler: list[asyncio.Task[None]] = []
    ops: list[OpsServer] = []
    background: list[asyncio.Task[None]] = []

    def consumer() -> AIOKafkaConsumer | None:
        return subscriber.consumer

    async def check_broker() -> None:
        # A metadata request on the consumer's own connection: the broker answers, and this
        # process reaches it.
        current = consumer()
        if current is None:
            raise ConnectionError("the consumer has not started")
        await current.topics()

    @app.on_startup
    async def _open() -> None:
        # First of all, so /healthz and /readyz answer while the rest starts (or waits).
        server = start_ops_server(settings, health)
        if server is not None:
            ops.append(server)
        probes = {"database": worker.check_database, "broker": check_broker}
        background.append(asyncio.create_task(keep_probing(health, probes)))
        await worker.start()

    @app.after_startup
    async def _schedule() -> None:
        # What start-up built (modules, models, the broker) lives as long as the process;
        # frozen, the cyclic collector stops walking it on every full collection (measured:
        # ~130 ms per full collection, one every few batches, stalling the batch meanwhile).
        gc.freeze()
        # A batch keeps its ~15 objects per event alive until its end: at Python's default
        # (a young collection every 700 new objects) the collector walked them over and over,
        # 711 young and 64 middle collections per 30,000 purchases. Most objects die by
        # reference counting: with batches of 1,000 (~15,000 objects alive at the end) the
        # young generation rarely reaches this many; batches of 3,000 would come close.
        gc.set_threshold(GC_YOUNG_OBJECTS, 10, 10)
        background.append(asyncio.create_task(keep_measuring_lag(watch, consumer)))
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
        for task in background:
            task.cancel()
        await worker.stop()
        for server in ops:
            server.close()
        log.info("worker_stopped", **worker.totals.as_dict())

    return app, broker
