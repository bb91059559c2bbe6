"""Running the real pipeline in tests: worker and relay processes, a publisher, a reader.

The processes are the ``loyalty worker`` / ``loyalty relay`` commands, started as
subprocesses against the test stack's Kafka and the test session's database, with a consumer
group of their own positioned at the end of the input topics (so earlier test sessions'
messages on the shared topics are not replayed into this session's database).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from core.settings import REPO_ROOT, Settings
from streams.topics import INPUT_TOPICS, Topic


async def position_group_at_end(bootstrap: str, group: str, topics: Iterable[str]) -> None:
    """Commit ``group``'s offsets at the current end of ``topics``."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        parts = [
            TopicPartition(t, p)
            for t in topics
            for p in sorted(consumer.partitions_for_topic(t) or await _partitions(consumer, t))
        ]
        ends = await consumer.end_offsets(parts)
        consumer.assign(parts)
        await consumer.commit({tp: off for tp, off in ends.items()})
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic) or set()


class PipelineProcesses:
    """Worker and relay subprocesses sharing one environment; start, kill, restart them."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """Start ``loyalty <args>`` under ``name`` (its log goes to ``log_dir/name.log``)."""
        log = (self.log_dir / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "loyalty", *args],
            env=self.env,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs[name] = proc
        return proc

    def start_worker(self, name: str = "worker") -> subprocess.Popen[bytes]:
        """A worker without the expiry scheduler (tests publish expiry runs themselves)."""
        return self.start(name, "worker", "--no-scheduler")

    def start_relay(self, name: str = "relay") -> subprocess.Popen[bytes]:
        """An outbox relay."""
        return self.start(name, "relay")

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Signal a process and wait for it; returns its exit code."""
        proc = self.procs.pop(name)
        if proc.poll() is None:
            proc.send_signal(sig)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait(10)

    def stop_all(self) -> None:
        """Stop every process still running."""
        for name in list(self.procs):
            self.stop(name)

    def log(self, name: str) -> str:
        """What a process wrote so far."""
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def pipeline_env(stack: Settings, database_url: str, group: str | None = None) -> dict[str, str]:
    """The environment of pipeline subprocesses for this test session.

    Batches of at most 50 records: the tests' loads fill them, so the worker runs two
    batches in flight (``consumers.inflight``) under every fault, as it does when behind.
    """
    env = dict(os.environ)
    env.update(
        LOYALTY_DATABASE_URL=database_url,
        LOYALTY_KAFKA_BOOTSTRAP=stack.bootstrap,
        LOYALTY_CONSUMER_GROUP=group or f"test-{uuid.uuid4().hex[:8]}",
        LOYALTY_LOG_LEVEL="INFO",
        LOYALTY_BATCH_TIMEOUT_MS="20",
        LOYALTY_BATCH_MAX_RECORDS="50",
    )
    return env


class Bus:
    """Publishes input messages keyed as the contract says, and reads the engine's outputs.

    The test stack's Kafka is shared by every test session running at the time, and each
    session's workers consume every input: another session's engine answers our events too
    (``store_not_found``, from its own database) and dead-letters our garbage. With
    ``database_url``, only the outputs of this session's engine are kept: those whose
    ``event_id`` is in this session's outbox (an output reaches Kafka only from there).
    """

    def __init__(self, bootstrap: str, database_url: str | None = None) -> None:
        self.bootstrap = bootstrap
        self.database_url = database_url
        self.producer: AIOKafkaProducer | None = None
        self.reader: AIOKafkaConsumer | None = None
        self.results: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.wallet: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.notifications: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.dead: list[dict[str, Any]] = []
        self.foreign = 0
        """Outputs dropped because another session's engine wrote them."""
        self._unsorted: list[tuple[str, dict[str, Any]]] = []
        self._db: asyncpg.Connection | None = None

    async def start(self) -> None:
        """Connect, and start reading the output topics from their current end."""
        self.producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            enable_idempotence=True,
            max_request_size=5 * 1024 * 1024,
        )
        await self.producer.start()
        self.reader = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await self.reader.start()
        outputs = [
            Topic.RESULTS.value,
            Topic.WALLET_UPDATES.value,
            Topic.DLQ.value,
            Topic.NOTIFICATIONS.value,
        ]
        parts = []
        for topic in outputs:
            for p in sorted(await self._wait_partitions(topic)):
                parts.append(TopicPartition(topic, p))
        self.reader.assign(parts)
        ends = await self.reader.end_offsets(parts)
        for tp, off in ends.items():
            self.reader.seek(tp, off)

    async def _wait_partitions(self, topic: str) -> set[int]:
        assert self.reader is not None
        for _ in range(50):
            found = await _partitions(self.reader, topic)
            if found:
                return found
            await asyncio.sleep(0.1)
        raise AssertionError(f"topic {topic} has no partitions")

    async def stop(self) -> None:
        """Disconnect."""
        for client in (self.producer, self.reader):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.stop()
        if self._db is not None:
            with contextlib.suppress(Exception):
                await self._db.close()

    async def publish(
        self, topic: str, message: dict[str, Any] | bytes, key: str | None = None
    ) -> None:
        """Publish one message (a dict is JSON-encoded)."""
        assert self.producer is not None
        value = message if isinstance(message, bytes) else json.dumps(message).encode()
        await self.producer.send_and_wait(topic, value, key=key.encode() if key else None)

    async def publish_many(self, items: Iterable[tuple[str, dict[str, Any], str | None]]) -> None:
        """Publish many messages, waiting for all acknowledgements at the end."""
        assert self.producer is not None
        futures = [
            await self.producer.send(t, json.dumps(m).encode(), key=k.encode() if k else None)
            for t, m, k in items
        ]
        await asyncio.gather(*futures)

    async def drain(self, timeout_ms: int = 200) -> None:
        """Read whatever output has arrived."""
        assert self.reader is not None
        batch = await self.reader.getmany(timeout_ms=timeout_ms, max_records=10000)
        for tp, records in batch.items():
            for rec in records:
                payload = _json_object(rec.value)
                if payload is None:  # not the engine's: somebody else wrote on its topics
                    self.foreign += 1
                else:
                    self._unsorted.append((tp.topic, payload))
        if not self._unsorted:
            return
        own = await self._own([str(payload.get("event_id")) for _, payload in self._unsorted])
        if own is None:  # the database is away (a restart test): sort them out next time
            return
        for topic, payload in self._unsorted:
            if str(payload.get("event_id")) not in own:
                self.foreign += 1
            elif topic == Topic.RESULTS.value:
                self.results[payload["source_event_id"]].append(payload)
            elif topic == Topic.WALLET_UPDATES.value:
                self.wallet[payload["card_number"]].append(payload)
            elif topic == Topic.NOTIFICATIONS.value:
                self.notifications[payload["card_number"]].append(payload)
            else:
                self.dead.append(payload)
        self._unsorted.clear()

    async def _own(self, event_ids: list[str]) -> set[str] | None:
        """Which of these outputs this session's engine wrote (None: cannot tell now)."""
        if self.database_url is None:
            return set(event_ids)
        try:
            if self._db is None or self._db.is_closed():
                self._db = await asyncpg.connect(self.database_url, timeout=5)
            rows = await self._db.fetch(_OWN_OUTPUTS, event_ids)
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            if self._db is not None:
                self._db.terminate()
                self._db = None
            return None
        return {r[0] for r in rows}

    async def read_to_end(self, timeout: float = 60.0) -> None:
        """Read every output published so far (up to the end offsets of now)."""
        assert self.reader is not None
        ends = await self.reader.end_offsets(list(self.reader.assignment()))
        deadline = time.monotonic() + timeout
        while True:
            await self.drain()
            behind = [tp for tp, end in ends.items() if await self.reader.position(tp) < end]
            if not behind and not self._unsorted:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"outputs not read to the end: {behind}")

    def distinct_results(self, event_id: str) -> list[dict[str, Any]]:
        """The results of an input, each once (the relay may publish one twice, same id)."""
        return list({r["event_id"]: r for r in self.results.get(event_id, [])}.values())

    async def wait_results(
        self, event_ids: Iterable[str], timeout: float = 60.0, per_event: int = 1
    ) -> dict[str, list[dict[str, Any]]]:
        """Wait until every event id has ``per_event`` results; fail with what is missing."""
        wanted = [str(e) for e in event_ids]
        deadline = time.monotonic() + timeout
        while True:
            await self.drain()
            missing = [e for e in wanted if len(self.distinct_results(e)) < per_event]
            if not missing:
                return {e: self.distinct_results(e) for e in wanted}
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(missing)} of {len(wanted)} events have no result"
                    + await self._whereabouts(missing)
                )

    async def _whereabouts(self, event_ids: list[str]) -> str:
        """Where missing events got to in this session's database (a failure's first clue:
        never applied, applied but its result unsent, or sent and not read)."""
        if self.database_url is None:
            return ""
        try:
            db = await asyncpg.connect(self.database_url, timeout=5)
            try:
                inbox = await db.fetch(
                    "SELECT event_id::text, topic, status FROM processed_events "
                    "WHERE event_id = ANY($1::uuid[])",
                    event_ids,
                )
                dead = await db.fetchval(
                    "SELECT count(*) FROM dead_letters WHERE event_id = ANY($1::uuid[])",
                    event_ids,
                )
                unsent = await db.fetchval(
                    "SELECT coalesce(sum(count), 0) FROM outbox WHERE sent_at IS NULL"
                )
            finally:
                await db.close()
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            return f" (database not asked: {exc!r})"
        return (
            f"; in the inbox: {[tuple(r) for r in inbox]} of {event_ids[:5]}"
            f"; dead letters: {dead}; messages unsent in the outbox: {unsent}"
        )

    async def wait_ready(self, timeout: float = 180.0) -> None:
        """Wait until the pipeline answers: a probe event gets its result.

        A worker started on a busy machine may take a while to import and join its group;
        the first test should not pay for that with its own timeout.
        """
        probe: dict[str, Any] = {
            "event_id": str(uuid.uuid4()),
            "type": "enrollment.requested",
            "occurred_at": "2026-01-01T00:00:00+00:00",
            "store_code": f"probe-{uuid.uuid4().hex[:8]}",
            "customer": {"customer_ref": "probe"},
            "channel": "staff",
        }
        await self.publish(Topic.ENROLLMENTS, probe, "probe")
        await self.wait_results([probe["event_id"]], timeout)

    async def wait_dead(self, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Wait until ``count`` dead letters arrived."""
        deadline = time.monotonic() + timeout
        while len(self.dead) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.dead)} dead letters of {count}")
            await self.drain()
        return self.dead


def _json_object(value: bytes | None) -> dict[str, Any] | None:
    try:
        data = json.loads(value) if value is not None else None
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


INPUT_TOPIC_NAMES = [t.value for t in INPUT_TOPICS]

_OWN_OUTPUTS = """
SELECT m.event_id FROM outbox AS o,
    LATERAL unnest(string_to_array(convert_from(o.payloads, 'UTF8'), E'\\n')) AS p(payload),
    LATERAL (SELECT p.payload::json->>'event_id') AS m(event_id)
WHERE m.event_id = ANY($1::text[])
"""


async def wait_log(procs: PipelineProcesses, name: str, text: str, timeout: float = 120) -> None:
    """Wait until process ``name`` has logged ``text``."""
    deadline = time.monotonic() + timeout
    while text not in procs.log(name):
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} never logged {text!r}:\n{procs.log(name)[-3000:]}")
        await asyncio.sleep(0.2)


async def stop(procs: PipelineProcesses, name: str, sig: int = signal.SIGTERM) -> int:
    """Stop a process without blocking the event loop; its exit code."""
    return await asyncio.to_thread(procs.stop, name, sig)


def alive(procs: PipelineProcesses, name: str) -> bool:
    """Whether process ``name`` still runs."""
    proc = procs.procs.get(name)
    return proc is not None and proc.poll() is None


def handled_events(log: str) -> int:
    """The events a worker reported at its clean stop (``worker_stopped`` counts)."""
    for line in log.splitlines():
        if "worker_stopped" in line:
            counts = dict(
                part.split("=", 1) for part in line.split() if "=" in part and part[0].isalpha()
            )
            return sum(int(counts.get(k, "0")) for k in ("applied", "rejected", "held"))
    raise AssertionError(f"no worker_stopped line in:\n{log[-2000:]}")
