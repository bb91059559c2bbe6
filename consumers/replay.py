"""``loyalty replay``: reprocess a range of an input topic through the worker's own path.

The range is read by a consumer without a group (every partition assigned, nothing
committed), so a replay never moves the workers' offsets. Its end is the topics' end offsets
taken at the start, so a replay of a busy topic terminates. The partitions are merged in the
order of their records' timestamps, so a replay of several topics applies an enrolment before
the purchases of its card, and every replay of a range applies it in the same order. Records
go through ``consumers.pipeline.apply_records`` in batches, as the worker applies them: the inbox
turns every event already processed into a duplicate, and a dead letter already written for a
record's position is not written again, so replaying a range twice changes nothing the
second time.

A dry run applies the range in one transaction (each batch a savepoint, as the worker's
one-by-one retry needs) and rolls it back: later batches see what earlier ones would have
done, so its counts are those of the real replay, and nothing is written. That transaction
holds a lock per order it touched until it ends, and PostgreSQL's lock table is shared with
the workers (``max_locks_per_transaction`` times ``max_connections`` entries), so a dry run
takes at most a quarter of it: when the next batch might not fit, it stops there and reports
the part it covered, with the time of the first record it left out. Splitting the dry run
into several transactions instead would count every purchase of a card enrolled in an
earlier one as rejected: numbers that look right and are not.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Protocol, cast

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from consumers.pipeline import TRANSIENT, Counts, RecordLike, apply_records, make_pool
from core.logs import get_logger
from core.settings import Settings
from streams.broker import consumer_config
from streams.topics import Topic

log = get_logger(__name__)

DEFAULT_BATCH: Final = 1000
# A database that restarts mid-replay gets this many tries per batch (the inbox makes a
# retried batch harmless), waiting a little longer each time.
TRANSIENT_RETRIES: Final = 5
_POLL_MS: Final = 500
CAUSAL_ORDER: Final = (
    Topic.ENROLLMENTS,
    Topic.PURCHASES,
    Topic.RETURNS,
    Topic.REDEMPTIONS,
    Topic.EXPIRY,
)
"""Which topic's record goes first when two have the same timestamp: a card is issued before
it buys, a purchase is made before it is returned."""
DRY_RUN_LOCK_SHARE: Final = 4
"""A dry run holds at most 1/DRY_RUN_LOCK_SHARE of PostgreSQL's lock table (see above)."""
_LOCKS_HELD: Final = "SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid()"
_LOCK_TABLE: Final = """
SELECT current_setting('max_locks_per_transaction')::int
       * (current_setting('max_connections')::int
          + current_setting('max_prepared_transactions')::int)
"""
# Locks a batch takes besides one per order: its tables and indexes.
_LOCKS_PER_BATCH: Final = 200


@dataclass(frozen=True)
class From:
    """Where a replay starts on every partition: exactly one of the three is set."""

    beginning: bool = False
    offset: int | None = None
    at: datetime | None = None
    """The first record whose Kafka timestamp is at or after this instant."""


@dataclass(frozen=True)
class Until:
    """Where a replay stops, before the topics' end offsets taken at the start."""

    offset: int | None = None
    """Exclusive: the last record read on a partition is ``offset - 1``."""
    at: datetime | None = None
    """Exclusive: records whose Kafka timestamp is at or after this instant are not read."""


@dataclass
class ReplayReport:
    """What a replay read and what the engine did with it."""

    topics: list[str]
    dry_run: bool
    ranges: dict[str, dict[int, tuple[int, int]]] = field(default_factory=dict)
    """``{topic: {partition: (first offset, end offset)}}``, end exclusive."""
    records: int = 0
    counts: Counts = field(default_factory=Counts)
    seconds: float = 0.0
    interrupted: bool = False
    dry_run_stopped_at: datetime | None = None
    """When a dry run covered only part of the range: the Kafka time of the first record it
    left out (``records`` says how many it covered)."""

    @property
    def planned(self) -> int:
        """Offsets in the range (records, unless the log has gaps)."""
        return sum(end - start for parts in self.ranges.values() for start, end in parts.values())

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values (``loyalty replay --json``)."""
        counts = self.counts.as_dict()
        return {
            "topics": self.topics,
            "dry_run": self.dry_run,
            "records": self.records,
            "planned": self.planned,
            "applied": counts["applied"],
            "duplicate": counts["duplicate"],
            "rejected": counts["rejected"],
            "held": counts["held"],
            "dead_lettered": counts["dead_lettered"],
            "retried_one_by_one": counts["retried_one_by_one"],
            "interrupted": self.interrupted,
            "dry_run_stopped_at": (
                self.dry_run_stopped_at.isoformat() if self.dry_run_stopped_at else None
            ),
            "seconds": round(self.seconds, 3),
            "ranges": {
                topic: {str(p): [start, end] for p, (start, end) in sorted(parts.items())}
                for topic, parts in self.ranges.items()
            },
        }


class _Timed(RecordLike, Protocol):
    """A Kafka record with its timestamp (milliseconds since the epoch)."""

    timestamp: int


class ReplayError(Exception):
    """A replay that cannot start (unknown topic or partition) or cannot go on.

    ``report`` holds what was done before a replay stopped half-way, else ``None``.
    """

    def __init__(self, message: str, report: ReplayReport | None = None) -> None:
        super().__init__(message)
        self.report = report


Progress = Callable[[int], None]
"""Called after each batch with the offsets done so far (``ReplayReport.planned`` in all)."""


async def plan(
    consumer: AIOKafkaConsumer,
    topics: Sequence[Topic],
    start: From,
    stop: Until | None = None,
    partitions: Sequence[int] | None = None,
) -> dict[TopicPartition, tuple[int, int]]:
    """The ``[first, end)`` offsets to read on each partition, fixed before reading starts."""
    parts: list[TopicPartition] = []
    for topic in topics:
        known = await _partitions(consumer, topic.value)
        if not known:
            raise ReplayError(f"topic {topic.value} does not exist on this broker")
        chosen = sorted(known) if partitions is None else list(partitions)
        missing = [p for p in chosen if p not in known]
        if missing:
            raise ReplayError(
                f"topic {topic.value} has partitions {_ranges(sorted(known))}; "
                f"no partition {', '.join(map(str, missing))}"
            )
        parts.extend(TopicPartition(topic.value, p) for p in chosen)
    ends: dict[TopicPartition, int] = await consumer.end_offsets(parts)
    firsts: dict[TopicPartition, int] = await consumer.beginning_offsets(parts)
    if start.at is not None:
        starts = await _offsets_at(consumer, parts, start.at, ends)
    elif start.offset is not None:
        starts = {tp: max(firsts[tp], start.offset) for tp in parts}
    else:
        starts = dict(firsts)
    if stop is not None and stop.offset is not None:
        ends = {tp: min(end, max(stop.offset, firsts[tp])) for tp, end in ends.items()}
    if stop is not None and stop.at is not None:
        untils = await _offsets_at(consumer, parts, stop.at, ends)
        ends = {tp: min(end, untils[tp]) for tp, end in ends.items()}
    return {tp: (min(starts[tp], ends[tp]), ends[tp]) for tp in parts}


async def _offsets_at(
    consumer: AIOKafkaConsumer,
    parts: list[TopicPartition],
    at: datetime,
    ends: dict[TopicPartition, int],
) -> dict[TopicPartition, int]:
    millis = int(at.timestamp() * 1000)
    found = await consumer.offsets_for_times({tp: millis for tp in parts})
    # No record at or after the instant: the partition's range starts (or stops) at its end.
    return {tp: found[tp].offset if found.get(tp) is not None else ends[tp] for tp in parts}


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    known: set[int] | None = consumer.partitions_for_topic(topic)
    if known:
        return known
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic) or set()


def _ranges(numbers: list[int]) -> str:
    return f"{numbers[0]}-{numbers[-1]}" if len(numbers) > 1 else str(numbers[0])


async def replay(
    settings: Settings,
    topics: Sequence[Topic],
    start: From,
    stop: Until | None = None,
    *,
    partitions: Sequence[int] | None = None,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH,
    on_plan: Callable[[ReplayReport], None] | None = None,
    on_progress: Progress | None = None,
    cancelled: asyncio.Event | None = None,
) -> ReplayReport:
    """Read the range and apply it; returns the counts, also when ``cancelled`` cuts it short.

    ``cancelled`` is checked between batches: the batches applied so far stay applied (or, in
    a dry run, are rolled back with the rest).
    """
    report = ReplayReport([t.value for t in topics], dry_run)
    config = consumer_config(settings, "replay")
    # No group: nothing is committed and the workers' group is never joined or moved.
    config.update(group_id=None, max_poll_records=batch_size)
    consumer = AIOKafkaConsumer(**config)
    try:
        await consumer.start()
    except Exception:
        await consumer.stop()  # a client that failed to start still holds its sockets
        raise
    try:
        ranges = await plan(consumer, topics, start, stop, partitions)
        for tp, (first, end) in ranges.items():
            report.ranges.setdefault(tp.topic, {})[tp.partition] = (first, end)
        if on_plan is not None:
            on_plan(report)
        todo = {tp: rng for tp, rng in ranges.items() if rng[0] < rng[1]}
        if not todo:
            return report
        consumer.assign(list(todo))
        for tp, (first, _) in todo.items():
            consumer.seek(tp, first)
        started = time.monotonic()
        try:
            async with _database(settings, dry_run) as target:
                await _read_and_apply(
                    consumer, todo, target, report, batch_size, on_progress, cancelled
                )
        except ReplayError as exc:
            report.seconds = time.monotonic() - started
            raise ReplayError(str(exc), report) from exc.__cause__
        except asyncpg.PostgresError as exc:  # a refusal apply_records could not isolate
            report.seconds = time.monotonic() - started
            raise ReplayError(f"the database refused: {type(exc).__name__}: {exc}", report) from exc
        report.seconds = time.monotonic() - started
    finally:
        await consumer.stop()
    return report


async def _read_and_apply(
    consumer: AIOKafkaConsumer,
    todo: dict[TopicPartition, tuple[int, int]],
    target: _Target,
    report: ReplayReport,
    batch_size: int,
    on_progress: Progress | None,
    cancelled: asyncio.Event | None,
) -> None:
    """Apply the range in batches, the partitions merged in the order of their timestamps.

    Kafka keeps order within a partition only. Merging by timestamp (ties broken by
    ``CAUSAL_ORDER``, partition, offset) applies an enrolment before the purchases of its card
    even when they sit on two topics, and makes the order the same at every replay of a range,
    so a dry run counts what the replay then does. Only the head of each partition competes,
    so a partition's own order is kept even where producers' clocks disagree.
    """
    rank = {topic.value: i for i, topic in enumerate(CAUSAL_ORDER)}
    buffered: dict[TopicPartition, deque[Any]] = {tp: deque() for tp in todo}
    complete: set[TopicPartition] = set()
    consumed = {tp: first for tp, (first, _) in todo.items()}
    heads: list[tuple[int, int, int, int, TopicPartition]] = []
    batch: list[_Timed] = []

    def push_head(tp: TopicPartition) -> None:
        rec = buffered[tp][0]
        heapq.heappush(heads, (rec.timestamp, rank[tp.topic], tp.partition, rec.offset, tp))

    async def apply() -> bool:
        if target.dry_run is not None and not await target.dry_run.has_room(len(batch)):
            first = min(batch, key=lambda r: r.timestamp)
            report.dry_run_stopped_at = datetime.fromtimestamp(first.timestamp / 1000, UTC)
            return False
        # A dry run's transaction does not survive a lost connection: no point retrying.
        tries = 1 if report.dry_run else TRANSIENT_RETRIES
        report.counts.add(await _apply_with_retries(target.pool, batch, tries))
        report.records += len(batch)
        batch.clear()
        if on_progress is not None:
            on_progress(sum(consumed[tp] - first for tp, (first, _) in todo.items()))
        return True

    while True:
        if cancelled is not None and cancelled.is_set():
            report.interrupted = True
            return
        hungry = [tp for tp in todo if not buffered[tp] and tp not in complete]
        if hungry:
            await _fetch(consumer, hungry, todo, buffered, complete, batch_size)
            for tp in hungry:
                if buffered[tp]:
                    push_head(tp)
                elif tp in complete:
                    consumed[tp] = todo[tp][1]
            continue
        if not heads:
            break
        *_, tp = heapq.heappop(heads)
        rec = buffered[tp].popleft()
        batch.append(rec)
        consumed[tp] = rec.offset + 1
        if buffered[tp]:
            push_head(tp)
        elif tp in complete:
            consumed[tp] = todo[tp][1]
        if len(batch) >= batch_size and not await apply():
            return
    if batch:
        await apply()
    elif on_progress is not None:
        on_progress(sum(end - first for first, end in todo.values()))


async def _fetch(
    consumer: AIOKafkaConsumer,
    parts: list[TopicPartition],
    todo: dict[TopicPartition, tuple[int, int]],
    buffered: dict[TopicPartition, deque[Any]],
    complete: set[TopicPartition],
    batch_size: int,
) -> None:
    fetched = await consumer.getmany(*parts, timeout_ms=_POLL_MS, max_records=batch_size)
    for tp, records in fetched.items():
        end = todo[tp][1]
        buffered[tp].extend(r for r in records if r.offset < end)
    for tp in parts:
        # The consumer's position, not the last record's offset + 1: compaction and
        # transaction markers leave gaps that must not make a replay wait forever.
        if await consumer.position(tp) >= todo[tp][1]:
            complete.add(tp)
            consumer.pause(tp)


async def _apply_with_retries(
    pool: asyncpg.Pool, batch: Sequence[RecordLike], tries: int
) -> Counts:
    for attempt in range(1, tries + 1):
        try:
            return await apply_records(pool, batch, skip_applied=True)
        except TRANSIENT as exc:
            if attempt == tries:
                raise ReplayError(
                    f"the database failed ({type(exc).__name__}: {exc}) after {attempt} "
                    "tries; running the same replay again is safe: the inbox skips what was "
                    "applied"
                ) from exc
            log.warning("replay_batch_deferred", attempt=attempt, error=repr(exc)[:200])
            await asyncio.sleep(float(2 ** (attempt - 1)))
    raise AssertionError("unreachable")  # pragma: no cover


@asynccontextmanager
async def _database(settings: Settings, dry_run: bool) -> AsyncIterator[_Target]:
    if not dry_run:
        pool = await make_pool(settings.db_url, size=2)
        try:
            yield _Target(pool)
        finally:
            await pool.close()
        return
    conn: asyncpg.Connection = await asyncpg.connect(settings.db_url)
    window = _DryRunWindow(conn)
    try:
        await window.begin()
        try:
            # apply_records takes a pool; this one always lends the dry run's connection,
            # whose transaction turns each batch's own transaction into a savepoint.
            yield _Target(cast(asyncpg.Pool, window), window)
        finally:
            # Also when the connection is gone: then there is nothing left to roll back.
            with contextlib.suppress(*TRANSIENT):
                await window.rollback()
    finally:
        await conn.close()


@dataclass
class _Target:
    """Where batches are applied: a pool, and the dry run's window when it is one."""

    pool: asyncpg.Pool
    dry_run: _DryRunWindow | None = None


class _DryRunWindow:
    """A stand-in for a pool that lends the same connection, inside the dry run's transaction."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self._tx: Any = None
        self._budget = 0

    async def begin(self) -> None:
        """Open the transaction; learn how many locks it may hold."""
        self._budget = await self._conn.fetchval(_LOCK_TABLE) // DRY_RUN_LOCK_SHARE
        self._tx = self._conn.transaction()
        await self._tx.start()

    async def rollback(self) -> None:
        """Undo everything the dry run did."""
        if self._tx is not None:
            tx, self._tx = self._tx, None
            await tx.rollback()

    async def has_room(self, records: int) -> bool:
        """Whether a batch of ``records`` surely fits the lock budget (a lock per order)."""
        held: int = await self._conn.fetchval(_LOCKS_HELD)
        return held + records + _LOCKS_PER_BATCH <= self._budget

    def acquire(self) -> AbstractAsyncContextManager[asyncpg.Connection]:
        """The dry run's connection, still inside its transaction."""
        return self._lend()

    @asynccontextmanager
    async def _lend(self) -> AsyncIterator[asyncpg.Connection]:
        yield self._conn
