"""From Kafka records to committed effects: parse, dead-letter, apply, in one transaction.

Used by the worker (records from the consumer group), by replay (records read from an offset)
and by tests. Offsets are the caller's to commit, after this returns.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol

import asyncpg

from core.logs import get_logger
from domain.engine.batch import BatchOutcome, Flow, Inbound, process_batch
from domain.engine.conn import Conn
from domain.engine.outbox import pack, write_packs
from domain.engine.outputs import APPLIED, DUPLICATE, HELD, REJECTED
from domain.engine.overlap import BatchKeys, Overlapped, PreviousFailed
from domain.engine.state import BudgetOvertaken
from domain.engine.unit_of_work import PgUnitOfWork
from streams.outputs import DeadLetter
from streams.parsing import ParseError, dead_letter_for, peek_event_id
from streams.quick import read_command
from streams.topics import Topic

log = get_logger(__name__)

DEAD_LETTERED = "dead_lettered"
"""The outcome of a record that broke the contract (``Counts.by_topic``)."""
OUTCOMES = (APPLIED, REJECTED, HELD, DUPLICATE, DEAD_LETTERED)
"""Every outcome of an input record."""


class RecordLike(Protocol):
    """What the pipeline reads of a Kafka record (aiokafka's ``ConsumerRecord`` fits)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass
class Counts:
    """What a run of the pipeline did, by outcome."""

    applied: int = 0
    rejected: int = 0
    held: int = 0
    duplicate: int = 0
    dead_lettered: int = 0
    retried_one_by_one: int = 0
    by_topic: dict[tuple[str, str], int] = field(default_factory=dict)
    """Events by (source topic, outcome): applied, rejected, held, duplicate, dead_lettered;
    what the worker's ``loyalty_events_total`` counts."""

    def add(self, other: Counts) -> None:
        """Add another run's counts to these."""
        for name in _TOTALS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        _merge(self.by_topic, other.by_topic)

    def as_dict(self) -> dict[str, int]:
        """The totals by name."""
        return {name: getattr(self, name) for name in _TOTALS}


_TOTALS = ("applied", "rejected", "held", "duplicate", "dead_lettered", "retried_one_by_one")


def _merge(into: dict[tuple[str, str], int], more: dict[tuple[str, str], int]) -> None:
    for key, n in more.items():
        into[key] = into.get(key, 0) + n


@dataclass
class Parsed:
    """A batch of records split into valid events and dead letters."""

    events: list[Inbound] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)


# Connection-level failures: the database is away, not the event at fault. The batch is
# retried later (the consumer rewinds), never dead-lettered.
TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    ConnectionError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    # "out of shared memory": the lock table is full for now (many batches at once); the
    # batch is fine and succeeds later, it must never be dead-lettered for it.
    asyncpg.OutOfMemoryError,
    # "cannot switch to state N; another operation is in progress": asyncpg's protocol when
    # PostgreSQL cut the connection in the middle of an operation (a restart under load).
    asyncpg.InternalClientError,
)


# PostgreSQL aborted the transaction for another one's sake: two transactions waited for each
# other's rows (two workers on the same cards in another order, a rebalance) or a serializable
# read was overtaken. The events are fine: the transaction is tried again, never
# dead-lettered; once the tries are spent the batch is left for later like a lost connection.
CONTENTION: tuple[type[BaseException], ...] = (
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
    # Others spent a campaign's budget while the batch judged it: tried again, the campaign
    # is locked at load (``engine.state.lock_campaigns``).
    BudgetOvertaken,
)
CONTENTION_TRIES = 4
"""Tries of one transaction aborted by contention before it is left for later."""


class FailedAfterRules(Exception):
    """The batch failed once its rules were done, when the batch after it may have started
    (``Flow.decided``): it is not tried again here, since that batch may hold locks a retry
    would wait for while it waits for this one. The caller reads both again."""


def parse(records: Sequence[RecordLike]) -> Parsed:
    """Parse every record; anything that breaks the contract becomes a dead letter."""
    parsed = Parsed()
    for rec in records:
        command = read_command(rec.topic, rec.value)
        if isinstance(command, ParseError):
            parsed.dead.append(
                dead_letter_for(rec.topic, rec.partition, rec.offset, rec.key, rec.value, command)
            )
        else:
            parsed.events.append(Inbound(rec.topic, command))
    return parsed


_INSERT_DEAD = """
INSERT INTO dead_letters (event_id, source_topic, partition, "offset", key, payload, error)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::bigint[], $5::text[], $6::text[],
                     $7::text[])
ON CONFLICT DO NOTHING
RETURNING event_id
"""


async def write_dead_letters(conn: Conn, dead: Sequence[DeadLetter]) -> list[DeadLetter]:
    """Keep dead letters and queue them for ``loyalty.dlq.v1``; a record seen before is
    skipped. Returns the ones written."""
    if not dead:
        return []
    fresh = {
        r["event_id"]
        for r in await conn.fetch(
            _INSERT_DEAD,
            [d.event_id for d in dead],
            [d.source_topic for d in dead],
            [d.partition for d in dead],
            [d.offset for d in dead],
            [d.key for d in dead],
            [d.payload for d in dead],
            [d.error for d in dead],
        )
    }
    new = [d for d in dead if d.event_id in fresh]
    if new:
        await write_packs(conn, pack((Topic.DLQ.value, d.key or "", d.to_json()) for d in new))
    for d in new:
        log.warning(
            "dead_lettered",
            dead_letter_event_id=str(d.event_id),
            topic=d.source_topic,
            partition=d.partition,
            offset=d.offset,
            error=loggable(d.error),
        )
    return new


def loggable(error: str) -> str:
    """What a log line may say of a dead letter's reason: the first field and its rule, or
    the kind of database failure, never the values they quote (an email that is not one,
    a unique key's detail naming a customer's email). The dead letter keeps the whole."""
    head = error.split(" (got ", 1)[0].split("\n", 1)[0]
    if head.startswith(_NOT_APPLIED):
        return _NOT_APPLIED + head[len(_NOT_APPLIED) :].split(":", 1)[0]
    return head[:300]


def described(exc: BaseException) -> str:
    """What a log line may say of a failure: its kind, and the constraint, table or column
    PostgreSQL names; never its message, which may quote a row's values."""
    names = [
        f"{name}={value}"
        for name in ("constraint_name", "table_name", "column_name")
        if isinstance(exc, asyncpg.PostgresError) and (value := getattr(exc, name, None))
    ]
    return " ".join([type(exc).__name__, *names])


_NOT_APPLIED = "could not be applied: "


def _count(outcome: BatchOutcome, events: Sequence[Inbound], counts: Counts) -> None:
    # One pass over the results for the totals and the counts by topic alike (held returns
    # applied now count under the returns topic, as their results say).
    tally: dict[tuple[str, str], int] = {}
    for r in outcome.results:
        key = (r.source_topic, r.status)
        tally[key] = tally.get(key, 0) + 1
    for (_, status), n in tally.items():
        if status == APPLIED:
            counts.applied += n
        elif status == REJECTED:
            counts.rejected += n
        elif status == HELD:
            counts.held += n
    if outcome.duplicates:
        topic_of = {ev.command.event_id: ev.topic for ev in events}
        for event_id in outcome.duplicates:
            key = (topic_of.get(event_id, "unknown"), DUPLICATE)
            tally[key] = tally.get(key, 0) + 1
        counts.duplicate += len(outcome.duplicates)
    _merge(counts.by_topic, tally)


async def apply_records(
    pool: asyncpg.Pool,
    records: Sequence[RecordLike],
    *,
    dry_run: bool = False,
    skip_applied: bool = False,
    flow: Flow | None = None,
) -> Counts:
    """Apply a batch of records in one transaction, or one by one when the batch fails.

    ``flow``: the batch before, still in flight, and what to call once this one's rules are
    done (``engine.batch.Flow``; the worker's ``consumers.inflight``). If that batch fails,
    this one rolls back and raises ``PreviousFailed``.

    A record that fails on its own (a constraint the rules did not foresee) is dead-lettered
    with the database's reason, so one bad event cannot stall a partition. Transient failures
    (the database is away) are raised for the caller to retry the batch later.

    ``skip_applied`` (replay): records whose event id the inbox already holds are counted as
    duplicates without being parsed, which is most of a replay's work otherwise. A malformed
    record that reuses an applied event's id is then skipped instead of dead-lettered again;
    the first reading of its offset dead-lettered it already.
    """
    skipped: dict[tuple[str, str], int] = {}
    if skip_applied:
        records, skipped = await _not_applied(pool, records)
        if not records:
            return Counts(duplicate=sum(skipped.values()), by_topic=skipped)
    counts = await _apply_records(pool, records, dry_run, flow)
    counts.duplicate += sum(skipped.values())
    _merge(counts.by_topic, skipped)
    return counts


async def _not_applied(
    pool: asyncpg.Pool, records: Sequence[RecordLike]
) -> tuple[list[RecordLike], dict[tuple[str, str], int]]:
    """The records whose event id the inbox does not hold, and the others counted as
    duplicates by topic."""
    ids = [peek_event_id(rec.value) for rec in records]
    known = [i for i in ids if i is not None]
    if not known:
        return list(records), {}
    async with pool.acquire() as conn:
        seen = await PgUnitOfWork(conn).seen(known)
    fresh: list[RecordLike] = []
    skipped: dict[tuple[str, str], int] = {}
    for rec, i in zip(records, ids, strict=True):
        if i in seen:
            key = (rec.topic, DUPLICATE)
            skipped[key] = skipped.get(key, 0) + 1
        else:
            fresh.append(rec)
    return fresh, skipped


async def _apply_records(
    pool: asyncpg.Pool, records: Sequence[RecordLike], dry_run: bool, flow: Flow | None
) -> Counts:
    parsed = parse(records)
    counts = Counts()
    flow, told = _told(flow)
    try:
        try:
            await _apply(pool, parsed, counts, dry_run, flow)
        except Overlapped as exc:
            # Rare: an event named a card the batch before holds in a way its names did not
            # show. Rolled back before any write; applied whole once that batch committed.
            log.info("batch_applied_after_previous", size=len(records), why=str(exc))
            await _after_previous(flow)
            await _apply(pool, parsed, counts, dry_run, _alone(flow))
        return counts
    except PreviousFailed:
        raise
    except Exception as exc:
        if told:
            raise FailedAfterRules(described(exc)) from exc
        if isinstance(exc, TRANSIENT):
            raise
        if isinstance(exc, CONTENTION):
            log.info("batch_contended_retrying", size=len(records), error=type(exc).__name__)
            await _after_previous(flow)
            # Alone and without telling a batch after it: this batch's tries end before any
            # other starts beside it.
            await _contended(partial(_apply, pool, parsed, counts, dry_run), CONTENTION_TRIES - 1)
            return counts
        # A data error somewhere in the batch: isolate it.
        log.warning("batch_failed_retrying_one_by_one", size=len(records), error=described(exc))
    await _after_previous(flow)
    counts = Counts(retried_one_by_one=len(records))
    for rec in records:
        try:
            await _apply_one(pool, rec, counts, dry_run)
        except (*TRANSIENT, *CONTENTION):
            raise
        except Exception as exc:
            poison = dead_letter_for(
                rec.topic,
                rec.partition,
                rec.offset,
                rec.key,
                rec.value,
                f"{_NOT_APPLIED}{type(exc).__name__}: {str(exc)[:500]}",
            )
            await _apply(pool, Parsed(dead=[poison]), counts, dry_run)
    return counts


async def _apply_one(pool: asyncpg.Pool, rec: RecordLike, counts: Counts, dry_run: bool) -> None:
    """One record in a transaction of its own, read again once if it fails."""
    attempt = partial(_apply, pool, parse([rec]), counts, dry_run)
    try:
        await _contended(attempt)
    except (*TRANSIENT, *CONTENTION):
        raise
    except Exception as exc:
        # Another worker applying this very event at the same time (a rebalance overlap)
        # makes it fail here: on the inbox row (``ConcurrentDuplicate``) or on a row the event
        # creates (the customer's email of an enrolment). Read again, it is a plain
        # duplicate; an event at fault fails again and is dead-lettered by the caller.
        log.info("event_failed_reading_again", error=type(exc).__name__)
        await _contended(attempt)


def _told(flow: Flow | None) -> tuple[Flow | None, list[bool]]:
    """The flow, and a flag set once it told the batch after that this one's rules are done."""
    told: list[bool] = []
    if flow is None or flow.decided is None:
        return flow, told
    tell = flow.decided

    def decided(keys: BatchKeys) -> None:
        told.append(True)
        tell(keys)

    return Flow(flow.previous, decided), told


async def _contended(attempt: Callable[[], Awaitable[None]], tries: int = CONTENTION_TRIES) -> None:
    """Run ``attempt`` (one transaction), again after a short random pause while contention
    aborts it; the last try's error is raised."""
    for n in range(tries - 1):
        try:
            return await attempt()
        except CONTENTION as exc:
            pause = random.uniform(0.01, 0.05) * 2**n  # apart, so the two do not meet again
            log.info("transaction_contended", attempt=n + 1, error=type(exc).__name__)
            await asyncio.sleep(pause)
    await attempt()


async def _after_previous(flow: Flow | None) -> None:
    # What is applied without the split waits for the batch before to commit.
    if flow is not None and flow.previous is not None:
        await flow.previous.committed()


def _alone(flow: Flow | None) -> Flow | None:
    return None if flow is None else Flow(decided=flow.decided)


class _DryRun(Exception):
    """Raised inside a dry run's transaction to roll it back."""


async def _apply(
    pool: asyncpg.Pool, parsed: Parsed, counts: Counts, dry_run: bool, flow: Flow | None = None
) -> None:
    local = Counts()
    async with pool.acquire() as conn:
        try:
            async with conn.transaction():
                written = await write_dead_letters(conn, parsed.dead)
                local.dead_lettered = len(written)
                for d in written:
                    key = (d.source_topic, DEAD_LETTERED)
                    local.by_topic[key] = local.by_topic.get(key, 0) + 1
                if parsed.events:
                    outcome = await process_batch(conn, parsed.events, datetime.now(UTC), flow)
                    _count(outcome, parsed.events, local)
                else:
                    await _after_previous(flow)  # dead letters only: committed after it
                if dry_run:
                    raise _DryRun
        except _DryRun:
            pass
    counts.add(local)


async def _session_kept(conn: asyncpg.Connection) -> None:
    """A released connection keeps its session as it is (asyncpg rolls back a transaction
    left open before calling this).

    asyncpg's default reset (``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``)
    is a round trip per batch, per relay round, for state these processes never leave: their
    locks and settings are the transaction's (``pg_advisory_xact_lock``, ``set_config(...,
    true)``), they open no cursor, and the relays and dispatchers listen on connections of
    their own. ``tests/pipeline/test_batches.py`` checks that a batch leaves none behind.
    """


async def make_pool(dsn: str, size: int = 4, **kwargs: Any) -> asyncpg.Pool:
    """An asyncpg pool for the hot path (the engine speaks asyncpg directly)."""
    kwargs.setdefault("reset", _session_kept)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=size, **kwargs)
    assert pool is not None
    return pool
