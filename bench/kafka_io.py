"""Kafka for the benchmark: offsets and groups, bulk and paced publishing, reading results."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from bench.workload import Event
from streams.broker import MAX_REQUEST_SIZE
from streams.topics import INPUT_TOPICS, Topic

INPUT_TOPIC_NAMES = [t.value for t in INPUT_TOPICS]

Offsets = dict[TopicPartition, int]


async def topic_partitions(bootstrap: str, topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of ``topics``, as the broker describes them."""
    wanted = list(topics)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = {t["topic"]: t for t in await admin.describe_topics(wanted)}
    finally:
        await admin.close()
    parts: list[TopicPartition] = []
    for topic in wanted:
        info = described.get(topic)
        if info is None or info["error_code"] != 0 or not info["partitions"]:
            raise RuntimeError(f"topic {topic} does not exist: is the stack up?")
        found = sorted(p["partition"] for p in info["partitions"])
        parts.extend(TopicPartition(topic, p) for p in found)
    return parts


async def end_offsets(bootstrap: str, topics: Iterable[str]) -> Offsets:
    """The current end of every partition of ``topics``."""
    parts = await topic_partitions(bootstrap, topics)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        ends: Offsets = await consumer.end_offsets(parts)
        return ends
    finally:
        await consumer.stop()


async def commit_group(bootstrap: str, group: str, offsets: Offsets) -> None:
    """Give a (new) consumer group these committed offsets, so a worker starts there."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(dict(offsets))
    finally:
        await consumer.stop()


def bulk_producer(bootstrap: str) -> AIOKafkaProducer:
    """Idempotent, acks from all replicas, large batches: for publishing ahead of a run."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id="loyalty-bench",
        enable_idempotence=True,
        acks="all",
        linger_ms=50,
        max_batch_size=1024 * 1024,
        max_request_size=MAX_REQUEST_SIZE,
    )


def live_producer(bootstrap: str) -> AIOKafkaProducer:
    """Idempotent, for latency measurement: waits 5 ms to fill a batch, as Kafka's own client.

    5 ms is the Java producer's default ``linger.ms`` since Kafka 4.0; the wait counts in the
    measured latency (an event's clock starts before it is sent). Sending every record on its
    own instead would cost the broker ~500 us of CPU per record, on the cores the pipeline
    being measured needs.
    """
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id="loyalty-bench",
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        max_request_size=MAX_REQUEST_SIZE,
    )


async def publish_all(
    producer: AIOKafkaProducer, events: Sequence[Event], window: int = 20_000
) -> None:
    """Publish ``events`` and wait for every acknowledgement (``window`` in flight at most)."""
    pending: list[asyncio.Future[object]] = []
    for ev in events:
        pending.append(await producer.send(ev.topic, ev.value, key=ev.key))
        if len(pending) >= window:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)


@dataclass
class Watch:
    """Results awaited: the event ids still missing and when each of the others arrived.

    Ids may be added while the events are being published; ``seal`` says no more will come.
    """

    remaining: set[bytes]
    seen_at: dict[bytes, float] = field(default_factory=dict)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    sealed: bool = False
    others: int = 0
    legs: bool = False
    """Also note, per result, when the worker applied its event (the result's
    ``occurred_at``) and when the relay sent it (the record's timestamp): the latency run's
    split of each event's time between the stages."""
    applied_at: dict[bytes, float] = field(default_factory=dict)
    relayed_at: dict[bytes, float] = field(default_factory=dict)

    def add(self, event_id: bytes) -> None:
        """Await one more result (call before publishing its event)."""
        self.remaining.add(event_id)

    def seal(self) -> None:
        """No more ids will be added."""
        self.sealed = True
        if not self.remaining:
            self.done.set()

    def arrived(self, key: bytes | None, now: float, rec: ConsumerRecord[Any, Any]) -> None:
        """A result read at ``now`` (wall clock)."""
        if key is not None and key in self.remaining:
            self.remaining.discard(key)
            self.seen_at[key] = now
            if self.legs:
                occurred = orjson.loads(rec.value)["occurred_at"]
                self.applied_at[key] = datetime.fromisoformat(occurred).timestamp()
                self.relayed_at[key] = rec.timestamp / 1000
        else:
            self.others += 1


class ResultReader:
    """Reads ``loyalty.results.v1`` from its end onwards, noting when each result arrived.

    Results are keyed by ``source_event_id`` (CONTRACT.md section 1), so the key alone tells
    which event a result belongs to; the JSON is not parsed, to keep the reader's CPU small
    on a machine it shares with the pipeline it measures.
    """

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            # The broker answers a waiting fetch as soon as a record arrives, so the fetch wait
            # adds no latency; a short one (10 ms was tried) only makes an idle reader cost
            # the broker ~17 % of a core, taken from the pipeline being measured.
            fetch_max_wait_ms=500,
            max_partition_fetch_bytes=8 * 1024 * 1024,
        )
        self.records = 0
        self._watch: Watch | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start reading from the current end of the results topic."""
        parts = await topic_partitions(self.bootstrap, [Topic.RESULTS.value])
        await self.consumer.start()
        self.consumer.assign(parts)
        for tp, off in (await self.consumer.end_offsets(parts)).items():
            self.consumer.seek(tp, off)
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop reading."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.consumer.stop()

    def expect(self, ids: Iterable[bytes] = (), *, sealed: bool = True) -> Watch:
        """Start watching for the results of ``ids`` (results of other events are counted)."""
        watch = Watch(set(ids))
        self._watch = watch
        if sealed:
            watch.seal()
        return watch

    async def _run(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=100, max_records=50_000)
            now = time.time()
            watch = self._watch
            for records in batch.values():
                self.records += len(records)
                if watch is None:
                    continue
                for rec in records:
                    watch.arrived(rec.key, now, rec)
            if watch is not None and watch.sealed and not watch.remaining:
                watch.done.set()

    async def wait(
        self, watch: Watch, within: float, check: Callable[[], None] | None = None
    ) -> bool:
        """Wait until every watched result arrived; False after ``within`` seconds."""
        deadline = time.monotonic() + within
        while not watch.done.is_set():
            if check is not None:
                check()
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(watch.done.wait(), min(left, 1.0))
        return True


WARMUP_TOPIC = "bench.broker-warmup"


async def warm_broker(bootstrap: str, messages: int, size: int = 300) -> None:
    """Produce ``messages`` records to a scratch topic and read them back.

    A freshly started broker spends 11-20 us of CPU per record on its first million (its JIT
    compiles the produce and fetch paths) against 3-4 us warm; a production broker is long
    warm, so the measured phases must not pay for that.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        if WARMUP_TOPIC not in await admin.list_topics():
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([NewTopic(WARMUP_TOPIC, 6, 1)])
    finally:
        await admin.close()
    producer = bulk_producer(bootstrap)
    await producer.start()
    try:
        partitions = sorted(await producer.partitions_for(WARMUP_TOPIC))
        value = b"x" * size
        per_partition = messages // len(partitions)
        futures = []
        for p in partitions:
            batch = producer.create_batch()
            for i in range(per_partition):
                if batch.append(key=str(i).encode(), value=value, timestamp=None) is None:
                    futures.append(await producer.send_batch(batch, WARMUP_TOPIC, partition=p))
                    batch = producer.create_batch()
                    batch.append(key=str(i).encode(), value=value, timestamp=None)
            futures.append(await producer.send_batch(batch, WARMUP_TOPIC, partition=p))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(WARMUP_TOPIC, p) for p in partitions]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        starts = {tp: max(0, ends[tp] - per_partition) for tp in tps}
        for tp, offset in starts.items():
            consumer.seek(tp, offset)
        left = sum(ends[tp] - starts[tp] for tp in tps)
        while left > 0:
            batch = await consumer.getmany(timeout_ms=1000, max_records=50_000)
            left -= sum(len(records) for records in batch.values())
    finally:
        await consumer.stop()
