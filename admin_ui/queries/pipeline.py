"""What the pipeline page shows: consumer lag from Kafka; the throughput of the last minutes, the
outbox, inbox, dead letters (one page at a time, and grouped by kind of error) and held returns
from the database; and what an operator does with dead letters: re-drive them to their source
topic (one, a group, or those ticked) or discard them."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import ColumnElement, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from admin_ui.problems import DomainRefusal
from admin_ui.queries.admins import Principal
from admin_ui.queries.common import PageRequest, Rows, like, page
from core.logs import get_logger
from core.settings import Settings
from domain.audit_trail import record_change
from domain.models import (
    DeadLetter,
    HeldReturn,
    LoyaltyProgram,
    Merchant,
    OutboxMessage,
    ProcessedEvent,
    Store,
)
from streams.broker import client_id, producer_config
from streams.topics import INPUT_TOPICS, TYPE_OF_TOPIC, Topic

log = get_logger(__name__)

KAFKA_TIMEOUT_S = 6.0
BASE64_MARK = "; payload is base64"


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
def _quiet_kafka_client() -> Iterator[None]:
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
        with _quiet_kafka_client():
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


# --- dead letters ------------------------------------------------------------------------------
#
# A dead letter waits until an operator re-drives it (``redriven_at`` is set then) or discards
# it. Discarding deletes the panel's copy: the table has no discarded state, and the record is
# not lost with it, since the engine also published it to ``loyalty.dlq.v1`` (and the original
# stays at its offset on the source topic) for as long as the topics keep their records.

PREVIEW_CHARS = 300
"""How much of a payload a page of the list reads; the full one is read when a row opens."""
DETAIL_CHARS = 200_000
"""How much of a payload an opened row reads (a payload may be megabytes)."""
REDRIVE_BATCH = 100
"""Dead letters re-driven per transaction: their payloads are held in memory meanwhile."""
MAX_CHOSEN = 1000

# The engine words an error as ``path: rule (got value)`` sentences joined by "; "
# (``streams.parsing``). Letters of one kind differ in the values they got, in where a value
# stopped being JSON or UTF-8, and in how many further errors there were: without those, what
# is left names the kind. Regular expressions of PostgreSQL, so the grouping is SQL's. A value
# may hold "; " and ")" itself, so it ends at the first ")" that ends the error or that the
# next sentence's "path: " follows (the expression is non-greedy, as its first quantifier).
_NEXT_SENTENCE = r"; [A-Za-z_][A-Za-z0-9_.\[\]]*: |; and [0-9]+ more$"
_GOT = rf" \(got .*?\)(?={_NEXT_SENTENCE}|$)"
_UNREADABLE = r"^(value is not (valid JSON|UTF-8 text)) \([^;]*\)"
_MORE = r"; and [0-9]+ more$"

LetterState = Literal["waiting", "redriven", "all"]


def error_kind(error: ColumnElement[str] | InstrumentedAttribute[str]) -> ColumnElement[str]:
    """SQL for the kind of an error: its words without the values that vary between letters
    (``amount_cents: must be an integer >= 0 (got -5)`` -> ``amount_cents: must be an integer
    >= 0``)."""
    without_values = func.regexp_replace(error, _GOT, "", "g")
    without_position = func.regexp_replace(without_values, _UNREADABLE, r"\1")
    return func.regexp_replace(without_position, _MORE, "; and more")


def _require_platform(me: Principal) -> None:
    # The page is only built for platform admins; this holds even if a handler leaked.
    if not me.is_platform:
        raise DomainRefusal("only a platform admin may act on dead letters")


@dataclass(frozen=True)
class DeadLetterGroup:
    """The waiting dead letters of one source topic and one kind of error."""

    source_topic: str
    kind: str
    count: int
    first_at: datetime
    last_at: datetime
    newest_id: int
    """The newest letter counted: a bulk action takes no letter that arrived after it."""

    @property
    def message_type(self) -> str:
        """The message type the source topic carries (``purchase.completed``)."""
        return TYPE_OF_TOPIC.get(self.source_topic, self.source_topic)


async def dead_letter_groups(session: AsyncSession, request: PageRequest) -> Rows[DeadLetterGroup]:
    """The waiting dead letters grouped by source topic and kind of error (GROUP BY), the
    largest group first; the search looks in the kind and the topic."""
    inner = (
        select(
            DeadLetter.id,
            DeadLetter.source_topic,
            DeadLetter.occurred_at,
            error_kind(DeadLetter.error).label("kind"),
        )
        .where(DeadLetter.redriven_at.is_(None))
        .subquery()
    )
    query = select(
        inner.c.source_topic,
        inner.c.kind,
        func.count().label("n"),
        func.min(inner.c.occurred_at),
        func.max(inner.c.occurred_at),
        func.max(inner.c.id),
        func.count().over().label("groups"),
    ).group_by(inner.c.source_topic, inner.c.kind)
    if request.search:
        pattern = like(request.search)
        query = query.having(or_(inner.c.kind.ilike(pattern), inner.c.source_topic.ilike(pattern)))
    rows = (
        await session.execute(
            query.order_by(func.count().desc(), func.max(inner.c.occurred_at).desc(), inner.c.kind)
            .offset(request.offset)
            .limit(request.limit)
        )
    ).all()
    total = int(rows[0].groups) if rows else 0
    if not rows and request.offset:
        # Past the last page: the count comes from a query of its own.
        total = int(await session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    return Rows(
        [DeadLetterGroup(r[0], r[1], int(r[2]), r[3], r[4], int(r[5])) for r in rows], total
    )


@dataclass(frozen=True)
class DeadLetterCounts:
    """How many dead letters wait, and how many were re-driven."""

    waiting: int
    redriven: int


async def dead_letter_counts(session: AsyncSession) -> DeadLetterCounts:
    """Waiting and re-driven dead letters, in one pass."""
    row = (
        await session.execute(
            select(
                func.count().filter(DeadLetter.redriven_at.is_(None)),
                func.count().filter(DeadLetter.redriven_at.is_not(None)),
            )
        )
    ).one()
    return DeadLetterCounts(int(row[0]), int(row[1]))


@dataclass(frozen=True)
class LetterFilter:
    """Which dead letters the list shows: by state, and of one group when told."""

    state: LetterState = "all"
    source_topic: str | None = None
    kind: str | None = None


@dataclass(frozen=True)
class DeadLetterRow:
    """A dead-lettered record as the list shows it: its payload's start only."""

    id: int
    occurred_at: datetime
    source_topic: str
    partition: int
    offset: int
    key: str | None
    payload: str
    """The first ``PREVIEW_CHARS`` characters."""
    error: str
    redriven_at: datetime | None
    payload_chars: int = 0
    """The whole payload's length."""


async def dead_letters(
    session: AsyncSession, request: PageRequest, letters: LetterFilter | None = None
) -> Rows[DeadLetterRow]:
    """Dead letters, newest first, one page (all of them unless ``letters`` says); the search
    looks in the error, payload and topic."""
    letters = letters or LetterFilter()
    query = select(
        DeadLetter.id,
        DeadLetter.occurred_at,
        DeadLetter.source_topic,
        DeadLetter.partition,
        DeadLetter.offset,
        DeadLetter.key,
        func.left(DeadLetter.payload, PREVIEW_CHARS),
        DeadLetter.error,
        DeadLetter.redriven_at,
        func.length(DeadLetter.payload),
    )
    if letters.state == "waiting":
        query = query.where(DeadLetter.redriven_at.is_(None))
    elif letters.state == "redriven":
        query = query.where(DeadLetter.redriven_at.is_not(None))
    if letters.source_topic is not None:
        query = query.where(DeadLetter.source_topic == letters.source_topic)
    if letters.kind is not None:
        query = query.where(error_kind(DeadLetter.error) == letters.kind)
    if request.search:
        pattern = like(request.search)
        query = query.where(
            or_(
                DeadLetter.error.ilike(pattern),
                DeadLetter.payload.ilike(pattern),
                DeadLetter.source_topic.ilike(pattern),
            )
        )
    rows, total = await page(session, query, request, DeadLetter.id.desc())
    return Rows(
        [
            DeadLetterRow(
                r[0], r[1], r[2], r[3], r[4], r[5], r[6] or "", r[7], r[8], int(r[9] or 0)
            )
            for r in rows
        ],
        total,
    )


@dataclass(frozen=True)
class DeadLetterDetail:
    """One dead letter in full (its payload up to ``DETAIL_CHARS`` characters)."""

    id: int
    occurred_at: datetime
    source_topic: str
    partition: int
    offset: int
    key: str | None
    payload: str
    payload_chars: int
    error: str
    redriven_at: datetime | None

    @property
    def is_base64(self) -> bool:
        """Whether the payload is the base64 of bytes that were not UTF-8 text."""
        return _is_base64(self.error)


async def dead_letter(session: AsyncSession, letter_id: int) -> DeadLetterDetail | None:
    """The dead letter with this id, or ``None``."""
    row = (
        await session.execute(
            select(
                DeadLetter.id,
                DeadLetter.occurred_at,
                DeadLetter.source_topic,
                DeadLetter.partition,
                DeadLetter.offset,
                DeadLetter.key,
                func.left(DeadLetter.payload, DETAIL_CHARS),
                func.length(DeadLetter.payload),
                DeadLetter.error,
                DeadLetter.redriven_at,
            ).where(DeadLetter.id == letter_id)
        )
    ).first()
    if row is None:
        return None
    return DeadLetterDetail(
        row[0], row[1], row[2], row[3], row[4], row[5], row[6] or "", int(row[7] or 0), *row[8:]
    )


@dataclass(frozen=True)
class OfKind:
    """The waiting dead letters of a group, up to the newest one the admin was shown."""

    source_topic: str
    kind: str
    newest_id: int

    @classmethod
    def of(cls, group: DeadLetterGroup) -> OfKind:
        """The letters ``group`` counted."""
        return cls(group.source_topic, group.kind, group.newest_id)


@dataclass(frozen=True)
class Chosen:
    """Dead letters the admin ticked, by id."""

    ids: tuple[int, ...]


Which = OfKind | Chosen


def _which(which: Which) -> list[ColumnElement[bool]]:
    if isinstance(which, OfKind):
        return [
            DeadLetter.redriven_at.is_(None),
            DeadLetter.id <= which.newest_id,
            DeadLetter.source_topic == which.source_topic,
            error_kind(DeadLetter.error) == which.kind,
        ]
    if not which.ids:
        raise DomainRefusal("no dead letter is chosen")
    if len(which.ids) > MAX_CHOSEN:
        raise DomainRefusal(f"choose at most {MAX_CHOSEN} dead letters at a time")
    return [DeadLetter.id.in_(which.ids)]


@dataclass(frozen=True)
class Redriven:
    """What one batch of a bulk re-drive did."""

    count: int
    """Letters published again and marked re-driven."""
    topics: tuple[str, ...]
    failed: int = 0
    """Letters Kafka did not take (still waiting)."""
    error: str | None = None
    """Why Kafka did not take them."""
    full: bool = False
    """The batch was full: more letters of the selection may wait."""


async def redrive_waiting(
    session: AsyncSession,
    settings: Settings,
    me: Principal,
    which: Which,
    *,
    limit: int = REDRIVE_BATCH,
) -> Redriven:
    """Publish the waiting letters of ``which`` (at most ``limit``, oldest first) to their
    source topics again and mark them re-driven; letters already re-driven are left alone.

    Each letter is re-driven at most once however often this runs, also at the same time:
    the letters are locked while they are published, and a second run waiting on the lock
    finds them re-driven when it gets it. Letters Kafka did not take stay waiting (``failed``,
    ``error``); ``DomainRefusal`` when Kafka cannot be reached at all (nothing changes then).
    The caller commits; run it again while ``full`` to take the rest.
    """
    _require_platform(me)
    letters = (
        await session.scalars(
            select(DeadLetter)
            .where(*_which(which), DeadLetter.redriven_at.is_(None))
            .order_by(DeadLetter.id)
            .limit(limit)
            .with_for_update()
        )
    ).all()
    if not letters:
        return Redriven(0, ())
    published, error = await _publish(settings, letters)
    if published:
        await session.execute(
            update(DeadLetter)
            .where(DeadLetter.id.in_(published))
            .values(redriven_at=func.now())
            .execution_options(synchronize_session=False)
        )
    topics = tuple(sorted({letter.source_topic for letter in letters if letter.id in published}))
    if published:
        await _record_redrive(session, sorted(published), topics)
    log.info(
        "admin_ui.dead_letters_redriven",
        admin=me.username,
        count=len(published),
        failed=len(letters) - len(published),
        topics=list(topics),
    )
    return Redriven(
        len(published), topics, len(letters) - len(published), error, len(letters) == limit
    )


async def discard(session: AsyncSession, me: Principal, which: Which) -> int:
    """Delete the dead letters of ``which`` (a group's waiting ones; chosen ones whatever their
    state) and record it in the admin audit trail; returns how many went. A second run finds
    none left. The caller commits."""
    _require_platform(me)
    gone = (
        await session.scalars(
            delete(DeadLetter)
            .where(*_which(which))
            .returning(DeadLetter.id)
            .execution_options(synchronize_session=False)
        )
    ).all()
    if not gone:
        return 0
    before: dict[str, object] = {"count": len(gone), "ids": sorted(gone)[:MAX_CHOSEN]}
    if isinstance(which, OfKind):
        before |= {"source_topic": which.source_topic, "error": which.kind}
    await record_change(
        session,
        action="discard",
        entity="dead_letter",
        entity_id=gone[0] if len(gone) == 1 else None,
        merchant_id=None,
        before=before,
        after=None,
        note=f"({len(gone)} in all)",
    )
    log.info("admin_ui.dead_letters_discarded", admin=me.username, count=len(gone))
    return len(gone)


def _is_base64(error: str) -> bool:
    return error.endswith(BASE64_MARK) or BASE64_MARK + ";" in error


def _payload_bytes(letter: DeadLetter) -> bytes:
    if _is_base64(letter.error):
        return base64.b64decode(letter.payload)
    return letter.payload.encode("utf-8")


def _producer(settings: Settings) -> AIOKafkaProducer:
    config = producer_config(settings, "admin-ui")
    config["request_timeout_ms"] = int(KAFKA_TIMEOUT_S * 1000)
    return AIOKafkaProducer(**config)


def _refused(settings: Settings, exc: BaseException) -> str:
    return f"Kafka did not take the message ({settings.bootstrap}): {exc or type(exc).__name__}"


async def _publish(
    settings: Settings, letters: Sequence[DeadLetter]
) -> tuple[set[int], str | None]:
    """Send each letter's original key and payload to its source topic, in id order; the ids
    Kafka acknowledged, and why the others were not (``None`` when all were).
    ``DomainRefusal`` when the producer cannot even start."""
    producer = _producer(settings)
    try:
        with _quiet_kafka_client():
            try:
                await asyncio.wait_for(producer.start(), KAFKA_TIMEOUT_S)
            except Exception as exc:  # reported to the admin; nothing changed
                raise DomainRefusal(f"{_refused(settings, exc)}; nothing was re-driven") from None
            # Queued one after the other, so letters of one partition keep their order.
            queued: list[tuple[int, asyncio.Future[Any]]] = []
            error: str | None = None
            for letter in letters:
                key = letter.key.encode("utf-8") if letter.key is not None else None
                try:
                    sent = await asyncio.wait_for(
                        producer.send(letter.source_topic, value=_payload_bytes(letter), key=key),
                        KAFKA_TIMEOUT_S,
                    )
                except Exception as exc:  # the rest stay waiting
                    error = _refused(settings, exc)
                    break
                queued.append((letter.id, sent))
            published: set[int] = set()
            for letter_id, sent in queued:
                try:
                    await asyncio.wait_for(sent, KAFKA_TIMEOUT_S)
                except Exception as exc:  # not acknowledged: it stays waiting
                    error = error or _refused(settings, exc)
                else:
                    published.add(letter_id)
            return published, error
    finally:
        with contextlib.suppress(Exception):
            await producer.stop()


async def redrive(session: AsyncSession, settings: Settings, letter_id: int) -> str:
    """Publish a dead letter's original payload (and key) to its source topic again, then mark
    it re-driven (also one re-driven before: the admin asked for it again). Returns the topic.
    ``DomainRefusal`` when Kafka cannot take it (nothing is marked then). The caller commits."""
    letter = (
        await session.scalars(
            select(DeadLetter).where(DeadLetter.id == letter_id).with_for_update()
        )
    ).first()
    if letter is None:
        raise DomainRefusal("this dead letter does not exist")
    published, error = await _publish(settings, [letter])
    if not published:
        raise DomainRefusal(f"{error}; nothing was re-driven")
    await session.execute(
        update(DeadLetter).where(DeadLetter.id == letter_id).values(redriven_at=func.now())
    )
    await _record_redrive(session, [letter_id], (letter.source_topic,))
    return letter.source_topic


async def _record_redrive(session: AsyncSession, ids: list[int], topics: tuple[str, ...]) -> None:
    """One audit-trail row for letters published again (ids cut at ``MAX_CHOSEN``)."""
    await record_change(
        session,
        action="redrive",
        entity="dead_letter",
        entity_id=ids[0] if len(ids) == 1 else None,
        merchant_id=None,
        before=None,
        after={"count": len(ids), "ids": ids[:MAX_CHOSEN], "topics": list(topics)},
        note=f"({len(ids)} in all)" if len(ids) > 1 else None,
    )
