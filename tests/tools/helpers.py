"""Helpers of the tools' tests: the CLI as a subprocess, Kafka ranges, table counts, events.

The input topics of the test stack are shared with every test session (and with sessions
running at the same time), so a test never assumes a range holds only its own records:
``Expected`` adds what the engine does with anyone else's records found in the range (their
stores do not exist in this session's database, so they are rejected, or dead-lettered when
they are not messages at all).
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from core.settings import REPO_ROOT
from domain.models import Base
from streams.parsing import ParseError, parse_input

WITHIN_S = 120.0
"""Generous: a wait that ends early is no signal of speed, only of a hang."""


# --- the command line ------------------------------------------------------------------------


@dataclass(frozen=True)
class Ran:
    """A finished ``loyalty`` command."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        """Its standard output, read as JSON."""
        return json.loads(self.out)


async def loyalty(env: dict[str, str], *args: str, stdin: bytes | None = None) -> Ran:
    """Run ``python -m loyalty ARGS`` with ``env``, as an operator would."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "loyalty",
        *args,
        env=env,
        cwd=REPO_ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(WITHIN_S):
        out, err = await proc.communicate(stdin)
    assert proc.returncode is not None
    return Ran(proc.returncode, out.decode(), err.decode())


# --- Kafka -----------------------------------------------------------------------------------

Position = tuple[str, int, int]
"""(topic, partition, offset) of a record."""


async def produce(
    bootstrap: str, items: Iterable[tuple[str, bytes | None, bytes]]
) -> list[Position]:
    """Publish ``(topic, key, value)`` in order; returns where each record landed."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        futures = [await producer.send(t, value=v, key=k) for t, k, v in items]
        metas = [await f for f in futures]
    finally:
        await producer.stop()
    return [(m.topic, m.partition, m.offset) for m in metas]


async def end_offsets(bootstrap: str, topics: Sequence[str]) -> dict[tuple[str, int], int]:
    """The current end offset of every partition of ``topics``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        parts = [
            TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()
        ]
        ends = await consumer.end_offsets(parts)
    finally:
        await consumer.stop()
    return {(tp.topic, tp.partition): off for tp, off in ends.items()}


async def read_range(
    bootstrap: str, ranges: dict[tuple[str, int], tuple[int, int]]
) -> list[ConsumerRecord]:
    """Every record of ``{(topic, partition): (first, end)}``, end exclusive."""
    todo = {TopicPartition(t, p): rng for (t, p), rng in ranges.items() if rng[0] < rng[1]}
    if not todo:
        return []
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        consumer.assign(list(todo))
        for tp, (first, _) in todo.items():
            consumer.seek(tp, first)
        async with asyncio.timeout(WITHIN_S):
            while todo:
                for tp, batch in (await consumer.getmany(timeout_ms=500)).items():
                    records.extend(r for r in batch if tp in todo and r.offset < todo[tp][1])
                for tp in list(todo):
                    if await consumer.position(tp) >= todo[tp][1]:
                        consumer.pause(tp)
                        del todo[tp]
    finally:
        await consumer.stop()
    return records


def ranges_of(report: dict[str, Any]) -> dict[tuple[str, int], tuple[int, int]]:
    """The ``ranges`` of ``loyalty replay --json`` as ``{(topic, partition): (first, end)}``."""
    return {
        (topic, int(p)): (first, end)
        for topic, parts in report["ranges"].items()
        for p, (first, end) in parts.items()
    }


# --- what a replay should report -------------------------------------------------------------

COUNTED = ("applied", "duplicate", "rejected", "held", "dead_lettered")


@dataclass(frozen=True)
class InboxState:
    """What the database had seen before a replay: event ids, and dead-lettered positions."""

    seen: frozenset[str]
    dead: frozenset[Position]


async def inbox_state(conn: asyncpg.Pool) -> InboxState:
    """The inbox and the dead letters, now."""
    seen = {str(r["event_id"]) for r in await conn.fetch("SELECT event_id FROM processed_events")}
    dead = {
        (r["source_topic"], r["partition"], r["offset"])
        for r in await conn.fetch('SELECT source_topic, partition, "offset" FROM dead_letters')
    }
    return InboxState(frozenset(seen), frozenset(dead))


@dataclass(frozen=True)
class Ours:
    """A test's own records in a range, and what a replay should count for them."""

    counts: dict[str, int]
    event_ids: set[str]
    garbage: set[Position]
    """Its records that are not messages, known by position."""


def expected(ours: Ours, records: Sequence[ConsumerRecord], before: InboxState) -> dict[str, int]:
    """``ours.counts`` plus what the engine does with the other records of the range."""
    seen = set(before.seen)
    dead = set(before.dead)
    counts = Counter(ours.counts)
    for rec in records:
        position = (rec.topic, rec.partition, rec.offset)
        message = parse_input(rec.topic, rec.value)
        if isinstance(message, ParseError):
            if position not in ours.garbage and position not in dead:
                counts["dead_lettered"] += 1
                dead.add(position)
            continue
        event_id = str(message.event_id)
        if event_id in ours.event_ids:
            continue
        counts["duplicate" if event_id in seen else "rejected"] += 1
        seen.add(event_id)
    return {name: counts[name] for name in COUNTED}


def counted(report: dict[str, Any]) -> dict[str, int]:
    """The five counts of a replay report."""
    return {name: report[name] for name in COUNTED}


# --- the database ----------------------------------------------------------------------------


async def table_counts(conn: asyncpg.Pool) -> dict[str, int]:
    """Rows of every table of the model."""
    counts = {}
    for table in Base.metadata.sorted_tables:
        # Table names come from the model, not from input.
        query = f'SELECT count(*) FROM "{table.name}"'  # noqa: S608
        counts[table.name] = await conn.fetchval(query)
    return counts


# --- events ----------------------------------------------------------------------------------


def event(kind: str, store: str, **fields: Any) -> dict[str, Any]:
    """An input message with a fresh event id, happening now."""
    return {
        "event_id": str(uuid.uuid4()),
        "type": kind,
        "occurred_at": datetime.now(UTC).isoformat(),
        "store_code": store,
        **fields,
    }


def enrolment(store: str, email: str, **fields: Any) -> dict[str, Any]:
    """An ``enrollment.requested`` by a member of staff."""
    return event(
        "enrollment.requested", store, customer={"email": email}, channel="staff", **fields
    )


def purchase(store: str, card: dict[str, str], order: str, amount: int) -> dict[str, Any]:
    """A ``purchase.completed``."""
    return event("purchase.completed", store, order_reference=order, amount_cents=amount, card=card)


def encoded(message: dict[str, Any]) -> bytes:
    """A message as a till sends it."""
    return json.dumps(message).encode()


@dataclass
class FakeRecord:
    """A Kafka record for ``consumers.pipeline.apply_records`` without a broker."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
