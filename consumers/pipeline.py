"""From Kafka records to committed effects: parse, dead-letter, apply, in one transaction.

Used by the worker (records from the consumer group), by replay (records read from an offset)
and by tests. Offsets are the caller's to commit, after this returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg

from core.logs import get_logger
from domain.engine.batch import BatchOutcome, Inbound, process_batch
from domain.engine.conn import Conn
from domain.engine.outbox import pack, write_packs
from domain.engine.outputs import APPLIED, HELD, REJECTED
from domain.engine.unit_of_work import PgUnitOfWork
from streams.commands import to_command
from streams.outputs import DeadLetter
from streams.parsing import ParseError, dead_letter_for, parse_input, peek_event_id
from streams.topics import Topic

log = get_logger(__name__)


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

    def add(self, other: Counts) -> None:
        """Add another run's counts to these."""
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        """The counts by name."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


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


def parse(records: Sequence[RecordLike]) -> Parsed:
    """Parse every record; anything that breaks the contract becomes a dead letter."""
    parsed = Parsed()
    for rec in records:
        message = parse_input(rec.topic, rec.value)
        if isinstance(message, ParseError):
            parsed.dead.append(
                dead_letter_for(rec.topic, rec.partition, rec.offset, rec.key, rec.value, message)
            )
        else:
            parsed.events.append(Inbound(rec.topic, to_command(message)))
    return parsed


_INSERT_DEAD = """
INSERT INTO dead_letters (event_id, source_topic, partition, "offset", key, payload, error)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::bigint[], $5::text[], $6::text[],
                     $7::text[])
ON CONFLICT DO NOTHING
RETURNING event_id
"""


async def write_dead_letters(conn: Conn, dead: Sequence[DeadLetter]) -> int:
    """Keep dead letters and queue them for ``loyalty.dlq.v1``; a record seen before is skipped."""
    if not dead:
        return 0
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
            topic=d.source_topic,
            partition=d.partition,
            offset=d.offset,
            error=d.error[:300],
        )
    return len(new)


def _count(outcome: BatchOutcome, counts: Counts) -> None:
    counts.applied += outcome.count(APPLIED)
    counts.rejected += outcome.count(REJECTED)
    counts.held += outcome.count(HELD)
    counts.duplicate += len(outcome.duplicates)


async def apply_records(
    pool: asyncpg.Pool,
    records: Sequence[RecordLike],
    *,
    dry_run: bool = False,
    skip_applied: bool = False,
) -> Counts:
    """Apply a batch of records in one transaction, or one by one when the batch fails.

    A record that fails on its own (a constraint the rules did not foresee) is dead-lettered
    with the database's reason, so one bad event cannot stall a partition. Transient failures
    (the database is away) are raised for the caller to retry the batch later.

    ``skip_applied`` (replay): records whose event id the inbox already holds are counted as
    duplicates without being parsed, which is most of a replay's work otherwise. A malformed
    record that reuses an applied event's id is then skipped instead of dead-lettered again;
    the first reading of its offset dead-lettered it already.
    """
    skipped = 0
    if skip_applied:
        fresh = await _not_applied(pool, records)
        skipped, records = len(records) - len(fresh), fresh
        if not records:
            return Counts(duplicate=skipped)
    counts = await _apply_records(pool, records, dry_run)
    counts.duplicate += skipped
    return counts


async def _not_applied(pool: asyncpg.Pool, records: Sequence[RecordLike]) -> list[RecordLike]:
    ids = [peek_event_id(rec.value) for rec in records]
    known = [i for i in ids if i is not None]
    if not known:
        return list(records)
    async with pool.acquire() as conn:
        seen = await PgUnitOfWork(conn).seen(known)
    return [rec for rec, i in zip(records, ids, strict=True) if i not in seen]


async def _apply_records(
    pool: asyncpg.Pool, records: Sequence[RecordLike], dry_run: bool
) -> Counts:
    parsed = parse(records)
    counts = Counts()
    try:
        await _apply(pool, parsed, counts, dry_run)
        return counts
    except TRANSIENT:
        raise
    except Exception as exc:  # a data error somewhere in the batch: isolate it
        log.warning("batch_failed_retrying_one_by_one", size=len(records), error=repr(exc)[:300])
    counts = Counts(retried_one_by_one=len(records))
    for rec in records:
        single = parse([rec])
        try:
            await _apply(pool, single, counts, dry_run)
        except TRANSIENT:
            raise
        except Exception as exc:
            poison = dead_letter_for(
                rec.topic,
                rec.partition,
                rec.offset,
                rec.key,
                rec.value,
                f"could not be applied: {type(exc).__name__}: {str(exc)[:500]}",
            )
            await _apply(pool, Parsed(dead=[poison]), counts, dry_run)
    return counts


class _DryRun(Exception):
    """Raised inside a dry run's transaction to roll it back."""


async def _apply(pool: asyncpg.Pool, parsed: Parsed, counts: Counts, dry_run: bool) -> None:
    local = Counts()
    async with pool.acquire() as conn:
        try:
            async with conn.transaction():
                local.dead_lettered = await write_dead_letters(conn, parsed.dead)
                if parsed.events:
                    _count(await process_batch(conn, parsed.events, datetime.now(UTC)), local)
                if dry_run:
                    raise _DryRun
        except _DryRun:
            pass
    counts.add(local)


async def make_pool(dsn: str, size: int = 4, **kwargs: Any) -> asyncpg.Pool:
    """An asyncpg pool for the hot path (the engine speaks asyncpg directly)."""
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=size, **kwargs)
    assert pool is not None
    return pool
