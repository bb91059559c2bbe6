"""What the pipeline page shows: consumer lag from Kafka; the throughput of the last minutes, the
outbox, the last processed event and held returns from the database. Dead letters are
``admin_ui.queries.dead_letters``'s."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from admin_ui.queries.common import PageRequest, Rows
from core.logs import get_logger
from core.settings import Settings
from domain.models import (
    HeldReturn,
    LoyaltyProgram,
    Merchant,
    OutboxMessage,
    ProcessedEvent,
    Store,
)
from streams.broker import client_id
from streams.topics import INPUT_TOPICS, Topic

log = get_logger(__name__)

KAFKA_TIMEOUT_S = 6.0


@dataclass(frozen=True)
class PartitionLag:
    """How far the engine's consumer group is behind on one partition."""

    topic: str
    partition: int
    committed: int | None
    end: int

    @property
    def lag(self) -> int:
        """Records not yet consumed (all of them when the group never committed)."""
        return self.end - (self.committed or 0)


@dataclass(frozen=True)
class LagReport:
    """Every input partition's lag, or why Kafka could not tell."""

    partitions: list[PartitionLag]
    error: str | None = None

    @property
    def total(self) -> int:
        """The lag of all partitions together."""
        return sum(p.lag for p in self.partitions)


@contextlib.contextmanager
def quiet_kafka_client() -> Iterator[None]:
    # A broker that is down makes aiokafka log every failed connection at ERROR; the page
    # reports it in one sentence instead, so the client's own complaint would only be noise.
    logger = logging.getLogger("aiokafka")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


async def consumer_lag(settings: Settings) -> LagReport:
    """Committed offsets of ``settings.consumer_group`` against the input topics' end offsets."""
    try:
        with quiet_kafka_client():
            return await asyncio.wait_for(_lag(settings), KAFKA_TIMEOUT_S)
    except TimeoutError:
        return LagReport(
            [], f"Kafka did not answer within {KAFKA_TIMEOUT_S:.0f} s at {settings.bootstrap}."
        )
    except Exception as exc:  # any client failure is reported, not raised
        return LagReport(
            [], f"Kafka is unreachable at {settings.bootstrap}: {exc or type(exc).__name__}."
        )


async def _lag(settings: Settings) -> LagReport:
    timeout_ms = int(KAFKA_TIMEOUT_S * 1000)
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap,
        client_id=client_id("admin-ui"),
        request_timeout_ms=timeout_ms,
    )
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap,
        client_id=client_id("admin-ui"),
        enable_auto_commit=False,
        request_timeout_ms=timeout_ms,
    )
    try:
        await admin.start()
        await consumer.start()
        described = await admin.describe_topics([topic.value for topic in INPUT_TOPICS])
        partitions = [
            TopicPartition(t["topic"], p)
            for t in sorted(described, key=lambda t: str(t["topic"]))
            if t["error_code"] == 0
            for p in sorted(int(part["partition"]) for part in t["partitions"])
        ]
        if not partitions:
            return LagReport([], "The input topics do not exist yet.")
        ends = await consumer.end_offsets(partitions)
        committed = await admin.list_consumer_group_offsets(
            settings.consumer_group, partitions=partitions
        )
        rows = []
        for tp in partitions:
            meta = committed.get(tp)
            offset = meta.offset if meta is not None and meta.offset >= 0 else None
            rows.append(PartitionLag(tp.topic, tp.partition, offset, int(ends[tp])))
        return LagReport(rows)
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()
        with contextlib.suppress(Exception):
            await admin.close()


@dataclass(frozen=True)
class OutboxBacklog:
    """Unsent outbox messages, per topic, and the oldest one's time and age."""

    unsent: int
    oldest: datetime | None
    oldest_age_s: float | None
    """Seconds since the oldest unsent row was written, by the database's clock."""
    by_topic: dict[str, int]


async def outbox_backlog(session: AsyncSession) -> OutboxBacklog:
    """What the relay has not published yet (the partial index of unsent rows serves it)."""
    rows = (
        await session.execute(
            select(
                OutboxMessage.topic,
                func.sum(OutboxMessage.count),
                func.min(OutboxMessage.created_at),
                # The age by the database's clock, as the engine dated the rows: the panel's
                # host may run a clock of its own. clock_timestamp(), not now(): the session's
                # transaction may have begun before a row now waiting was written.
                func.greatest(
                    0,
                    func.extract(
                        "epoch", func.clock_timestamp() - func.min(OutboxMessage.created_at)
                    ),
                ),
            )
            .where(OutboxMessage.sent_at.is_(None))
            .group_by(OutboxMessage.topic)
        )
    ).all()
    oldest = min((r[2] for r in rows), default=None)
    age = max((float(r[3]) for r in rows), default=None)
    return OutboxBacklog(sum(int(r[1]) for r in rows), oldest, age, {r[0]: int(r[1]) for r in rows})


THROUGHPUT_BUCKET_S = 30
THROUGHPUT_BUCKETS = 30  # 15 minutes
# Transactions date their outbox rows when they begin (now()) but take their ids when they
# insert, so ids follow times only to within a transaction's length: the scan starts this much
# before the window, and the rows in between are dropped by their time.
_ID_MARGIN = timedelta(minutes=1)


@dataclass(frozen=True)
class Throughput:
    """Input events processed per second over the last minutes, per bucket, oldest first.

    Only whole buckets: the last one ends at the latest multiple of ``bucket_s`` seconds, so
    the newest figure is at most one bucket old but never a fraction of one.
    """

    starts: list[datetime]
    per_second: list[float]
    bucket_s: int

    @property
    def events(self) -> int:
        """Events processed in the whole window."""
        return round(sum(self.per_second) * self.bucket_s)

    @property
    def latest(self) -> float:
        """Events per second of the newest whole bucket."""
        return self.per_second[-1] if self.per_second else 0.0

    @property
    def peak(self) -> float:
        """The busiest bucket's events per second."""
        return max(self.per_second, default=0.0)


async def throughput(
    session: AsyncSession,
    *,
    bucket_s: int = THROUGHPUT_BUCKET_S,
    buckets: int = THROUGHPUT_BUCKETS,
) -> Throughput:
    """Events per second per bucket of ``bucket_s`` seconds, over ``buckets`` buckets.

    Counted from the outbox's ``event.processed`` messages: the engine writes exactly one per
    input event it processes (CONTRACT.md section 4; duplicates none, dead letters none), in
    the transaction that applies it, and each row carries how many it packs (``count``). The
    inbox (``processed_events``) would say the same but has no index on its time (its key is
    the producers' random UUID) and grows by a row per event forever, so a window of it is a
    scan of every event ever processed. The outbox keeps an hour of sent rows (the relay's
    prune) and its key follows insertion, so the window is found through the primary key:
    first the newest row older than the window (a backward scan of the key that stops there),
    then the rows after it (a range of the key): the cost is the window's rows, whatever the
    table holds.
    """
    now = await session.scalar(select(func.clock_timestamp()))
    assert isinstance(now, datetime)
    end_epoch = int(now.timestamp()) // bucket_s * bucket_s
    end = datetime.fromtimestamp(end_epoch, UTC)
    start = end - timedelta(seconds=bucket_s * buckets)
    before = await session.scalar(
        select(OutboxMessage.id)
        .where(OutboxMessage.created_at < start - _ID_MARGIN)
        .order_by(OutboxMessage.id.desc())
        .limit(1)
    )
    # A literal id, not a subquery: the planner then sees the range is small (it reads the
    # key's actual end when the literal is past its statistics) and takes the key's index.
    bucket = func.floor(func.extract("epoch", OutboxMessage.created_at) / bucket_s)
    rows = (
        await session.execute(
            select(bucket, func.sum(OutboxMessage.count))
            .where(
                OutboxMessage.id > (before or 0),
                OutboxMessage.created_at >= start,
                OutboxMessage.created_at < end,
                OutboxMessage.topic == Topic.RESULTS.value,
            )
            .group_by(bucket)
        )
    ).all()
    counts = {int(b): int(n) for b, n in rows}
    first = end_epoch // bucket_s - buckets
    return Throughput(
        [start + timedelta(seconds=bucket_s * i) for i in range(buckets)],
        [counts.get(first + i, 0) / bucket_s for i in range(buckets)],
        bucket_s,
    )


@dataclass(frozen=True)
class LastEvent:
    """The input event processed last."""

    event_id: str
    topic: str
    status: str
    processed_at: datetime


async def last_processed(session: AsyncSession) -> LastEvent | None:
    """The newest row of the inbox."""
    row = (
        await session.scalars(
            select(ProcessedEvent).order_by(ProcessedEvent.processed_at.desc()).limit(1)
        )
    ).first()
    if row is None:
        return None
    return LastEvent(str(row.event_id), row.topic, row.status, row.processed_at)


@dataclass(frozen=True)
class HeldRow:
    """A return waiting for its purchase."""

    id: int
    received_at: datetime
    merchant_code: str
    store_code: str
    order_reference: str
    refund_amount_cents: Any
    timezone: str = "UTC"
    """The merchant's, for the time it was received."""
    currency: str = "EUR"
    """The merchant's program's, for the refund."""


async def held_returns(session: AsyncSession, request: PageRequest) -> Rows[HeldRow]:
    """Returns not applied yet, oldest first."""
    currency = (
        select(LoyaltyProgram.currency)
        .where(LoyaltyProgram.merchant_id == Merchant.id)
        .order_by(LoyaltyProgram.deleted_at.is_not(None), LoyaltyProgram.id.desc())
        .limit(1)
        .correlate(Merchant)
        .scalar_subquery()
    )
    query = (
        select(HeldReturn, Merchant.code, Store.code, Merchant.timezone, currency)
        .join(Merchant, Merchant.id == HeldReturn.merchant_id)
        .join(Store, Store.id == HeldReturn.store_id)
        .where(HeldReturn.applied_at.is_(None))
        .execution_options(include_deleted=True)
    )
    if request.search:
        query = query.where(HeldReturn.order_reference.ilike(f"%{request.search}%"))
    total = await session.scalar(
        select(func.count()).select_from(query.subquery()).execution_options(include_deleted=True)
    )
    rows = (
        await session.execute(
            query.order_by(HeldReturn.id).offset(request.offset).limit(request.limit)
        )
    ).all()
    return Rows(
        [
            HeldRow(
                h.id,
                h.received_at,
                merchant,
                store,
                h.order_reference,
                h.payload.get("refund_amount_cents"),
                zone,
                money or "EUR",
            )
            for h, merchant, store, zone, money in rows
        ],
        int(total or 0),
    )
