"""The webhook dispatcher: merchants' HTTPS endpoints hear of the output messages they chose.

**Ingest.** A consumer group of its own (``LOYALTY_WEBHOOK_GROUP``) reads the output topics
(results, wallet updates, notifications) from where the group left off; a new group starts at
the end, so a first dispatcher does not send a week of history, and it commits that position
at once so a restart misses nothing. Per fetched batch, one INSERT queues a delivery per
message and endpoint: the message's merchant must be live and the endpoint live, active and
subscribed to the message's type. Deliveries take ids in the batch's order (a card's
``card.balance_changed`` sorted by version within it); the body is the message's bytes as on
Kafka. A message seen again (the relay delivers at least once, a rebalance re-reads) is
ignored by the (endpoint, event) key. Offsets are committed after the database commit, then a
``NOTIFY`` wakes the senders of every dispatcher.

**Send.** One statement claims due deliveries: per endpoint and card only the oldest pending
one (a card's deliveries go out one at a time, in order), not leased by an attempt under way,
its endpoint live and active, at most ``webhook_per_endpoint`` under way per endpoint and the
process's free slots in all. The claim leases them for the timeout and a margin and counts
the attempt; rows are locked with SKIP LOCKED, so two dispatchers never take the same one and
never wait for each other. Each claimed delivery is posted by a task of its own: a slow
endpoint holds only its own slots. A 2xx delivers it; anything else records the error and
schedules the next attempt (``next_delay``), or parks it once its retry window is over
(``is_expired``). A dispatcher that dies leaves its leases to expire; the deliveries are then
tried again (at least once).

Any number of dispatchers may run. Every few seconds each sets the pending and parked gauges
(over all endpoints: dashboards should take their max, not their sum) and its partitions'
lag, and now and then deletes delivered rows older than a week. Logs name the output's
``event_id``, the endpoint, the attempt and the answer's status: never a secret, never a body.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from consumers.pipeline import TRANSIENT, RecordLike, make_pool
from core.health import Health, OpsServer, keep_probing, start_ops_server
from core.logs import get_logger
from core.metrics import (
    CONSUMER_LAG,
    WEBHOOK_ATTEMPTS,
    WEBHOOK_PARKED,
    WEBHOOK_PENDING,
    WEBHOOK_QUEUED,
    WEBHOOK_SECONDS,
)
from core.settings import Settings
from domain.rules.webhooks import WEBHOOK_EVENT_TYPES, is_expired, next_delay
from domain.webhooks.http import Attempt, WebhookClient
from domain.webhooks.queue import (
    CLAIM_SQL,
    DELIVERED_SQL,
    FAILED_SQL,
    GAUGES_SQL,
    NOTIFY_CHANNEL,
    NOTIFY_SQL,
    PARKED,
    PENDING,
    PRUNE_SQL,
    QUEUE_SQL,
)
from domain.webhooks.signing import delivery_headers
from streams.broker import consumer_config
from streams.topics import Topic

log = get_logger(__name__)

OUTPUT_TOPICS: tuple[str, ...] = (
    Topic.RESULTS.value,
    Topic.WALLET_UPDATES.value,
    Topic.NOTIFICATIONS.value,
)
BALANCE_CHANGED = "card.balance_changed"
MAX_CARD_NUMBER = 64  # webhook_deliveries.card_number

# A lease outlives the request's timeout by this much: time to record the outcome.
LEASE_MARGIN_S = 30.0
# New deliveries (NOTIFY, from any dispatcher or a re-send), a finished attempt and this
# process's own retry timers wake the sender at once; retries another dispatcher scheduled,
# or a NOTIFY lost while the database was away, are found by this poll.
POLL_S = 1.0
GAUGES_EVERY_S = 5.0
PRUNE_EVERY_S = 600.0
KEEP_DELIVERED_DAYS = 7
PRUNE_LIMIT = 10_000
FETCH_TIMEOUT_MS = 500

# Besides the database being away: two dispatchers' statements may deadlock (a rebalance
# re-reading the same messages); the loser's batch or claim is simply tried again.
RETRIED: tuple[type[BaseException], ...] = (*TRANSIENT, asyncpg.TransactionRollbackError)


# --------------------------------------------------------------------------------------------
# From records to queued messages


@dataclass(frozen=True)
class Queued:
    """An output message an endpoint may be sent, as it will be queued."""

    merchant_code: str
    event_id: uuid.UUID
    event_type: str
    card_number: str | None
    body: bytes = field(repr=False)


def to_queue(records: Sequence[RecordLike]) -> tuple[list[Queued], list[str]]:
    """The records' messages that webhooks may carry, in the records' order except that each
    card's ``card.balance_changed`` are sorted by ``version`` among their places; and why the
    others that should have been were skipped (not JSON, a field missing).

    Messages of a type no endpoint can choose, or of no merchant (an event whose store is
    unknown), are left out silently: nothing is wrong with them.
    """
    queued: list[Queued] = []
    versions: list[int] = []
    problems: list[str] = []
    for rec in records:
        where = f"{rec.topic}[{rec.partition}]@{rec.offset}"
        message, version, problem = _read(rec.value)
        if problem is not None:
            problems.append(f"{where}: {problem}")
        elif message is not None:
            queued.append(message)
            versions.append(version)
    return _versions_in_order(queued, versions), problems


def _read(value: bytes | None) -> tuple[Queued | None, int, str | None]:
    try:
        data = orjson.loads(value) if value is not None else None
    except orjson.JSONDecodeError:
        return None, 0, "not JSON"
    if not isinstance(data, dict):
        return None, 0, "not a JSON object"
    kind = data.get("type")
    if not isinstance(kind, str):
        return None, 0, "no type"
    if kind not in WEBHOOK_EVENT_TYPES:
        return None, 0, None
    merchant = data.get("merchant_code", ...)
    if merchant is ...:
        return None, 0, "no merchant_code"
    if merchant is None:
        return None, 0, None
    card = data.get("card_number")
    if not isinstance(merchant, str) or not (card is None or isinstance(card, str)):
        return None, 0, "merchant_code or card_number not a string"
    if card is not None and (len(card) > MAX_CARD_NUMBER or "\x00" in card):
        return None, 0, "card_number not a card number"
    try:
        event_id = uuid.UUID(str(data.get("event_id")))
    except ValueError:
        return None, 0, "no valid event_id"
    version = data.get("version", 0)
    if kind == BALANCE_CHANGED and (type(version) is not int or card is None):
        return None, 0, "card.balance_changed without card_number or integer version"
    assert value is not None
    return Queued(merchant, event_id, kind, card, value), int(version), None


def _versions_in_order(queued: list[Queued], versions: list[int]) -> list[Queued]:
    places: dict[str, list[int]] = {}
    for i, message in enumerate(queued):
        if message.event_type == BALANCE_CHANGED and message.card_number is not None:
            places.setdefault(message.card_number, []).append(i)
    ordered = list(queued)
    for indexes in places.values():
        by_version = sorted(indexes, key=lambda i: versions[i])
        for place, source in zip(indexes, by_version, strict=True):
            ordered[place] = queued[source]
    return ordered


# --------------------------------------------------------------------------------------------
# The dispatcher


@dataclass(frozen=True)
class Delivery:
    """A claimed delivery: what to send where, and which attempt this is."""

    id: int
    endpoint_id: int
    event_id: uuid.UUID
    event_type: str
    body: bytes = field(repr=False)
    attempts: int
    retry_from: datetime
    url: str = field(repr=False)
    secret: str = field(repr=False)


@dataclass
class DispatchStats:
    """What a dispatcher did since start."""

    queued: int = 0
    skipped: int = 0
    delivered: int = 0
    failed: int = 0
    parked: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counts by name."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Tells the dispatcher its partitions changed; it settles them in its own loop."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """Not ready until the new assignment is settled."""
        self.dispatcher.health.set("group", False)
        for tp in revoked:
            with contextlib.suppress(KeyError):
                CONSUMER_LAG.remove(self.dispatcher.group, tp.topic, str(tp.partition))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """Remember them; ``Dispatcher._settle`` fixes their start before the next fetch."""
        self.dispatcher.assigned = set(assigned)


class Dispatcher:
    """One dispatcher process: a pool, a consumer, an HTTP client, and three loops."""

    def __init__(self, settings: Settings, *, rng: random.Random | None = None) -> None:
        self.settings = settings
        self.group = settings.webhook_group
        self.rng = rng or random.Random()
        self.health = Health("webhooks", required=("database", "broker", "group"))
        self.stats = DispatchStats()
        self.assigned: set[TopicPartition] | None = None
        """Partitions just assigned, not yet settled (``None``: nothing new)."""
        self.pool: asyncpg.Pool | None = None
        self.consumer: AIOKafkaConsumer | None = None
        self.client: WebhookClient | None = None
        self._listener: asyncpg.Connection | None = None
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()

    # --- life ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect to PostgreSQL (a pool and a LISTEN connection) and join the group."""
        s = self.settings
        self.pool = await make_pool(s.db_url, size=min(10, 2 + s.webhook_concurrency))
        await self._relisten()
        self.client = WebhookClient(
            timeout_s=s.webhook_timeout_s,
            allow_private=s.webhook_allow_private,
            max_connections=s.webhook_concurrency,
        )
        config = consumer_config(s, "webhooks", self.group)
        config["auto_offset_reset"] = "latest"
        self.consumer = AIOKafkaConsumer(**config)
        await self.consumer.start()
        self.consumer.subscribe(list(OUTPUT_TOPICS), listener=_Rebalance(self))

    def stop(self) -> None:
        """Stop fetching and claiming; attempts under way finish (``run`` returns then)."""
        self._stopping.set()
        self._wake.set()

    async def close(self) -> None:
        """Leave the group and close the connections."""
        if self.consumer is not None:
            with contextlib.suppress(KafkaError):
                await self.consumer.stop()
        if self.client is not None:
            await self.client.close()
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
        if self.pool is not None:
            await self.pool.close()

    async def run(self) -> None:
        """Ingest, send and keep the gauges until ``stop``."""
        probing = asyncio.create_task(
            keep_probing(self.health, {"database": self._probe_db, "broker": self._probe_broker})
        )
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._ingest_loop())
                tasks.create_task(self._send_loop())
                tasks.create_task(self._housekeeping_loop())
        finally:
            probing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await probing

    async def _probe_db(self) -> None:
        assert self.pool is not None
        await self.pool.fetchval("SELECT 1")

    async def _probe_broker(self) -> None:
        assert self.consumer is not None
        await self.consumer.topics()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _relisten(self) -> None:
        # After a PostgreSQL restart the LISTEN connection is gone; the poll covers the gap.
        if self._listener is not None and not self._listener.is_closed():
            return
        with contextlib.suppress(*TRANSIENT):
            self._listener = await asyncpg.connect(self.settings.db_url)
            await self._listener.add_listener(NOTIFY_CHANNEL, self._notified)

    def _notified(self, *_: object) -> None:
        self._wake.set()

    # --- ingest ----------------------------------------------------------------------------

    async def _ingest_loop(self) -> None:
        assert self.consumer is not None
        consumer = self.consumer
        while not self._stopping.is_set():
            try:
                await self._settle()
                batch = await consumer.getmany(timeout_ms=FETCH_TIMEOUT_MS)
            except KafkaError as exc:
                log.warning("webhooks_fetch_failed", error=repr(exc)[:200])
                await self._pause(1.0)
                continue
            if not batch:
                continue
            records = [rec for part in batch.values() for rec in part]
            try:
                await self.ingest(records)
            except RETRIED as exc:
                log.warning("webhooks_ingest_retrying", error=repr(exc)[:200])
                for tp, part in batch.items():
                    if tp in consumer.assignment():
                        consumer.seek(tp, part[0].offset)
                await self._pause(1.0)
                await self._relisten()
                continue
            try:
                await consumer.commit({tp: part[-1].offset + 1 for tp, part in batch.items()})
            except KafkaError as exc:
                # A rebalance took the partitions: their next owner reads these records again
                # and the queue ignores what it holds already.
                log.warning("webhooks_commit_failed", error=repr(exc)[:200])

    async def _settle(self) -> None:
        """Commit where newly assigned partitions start when the group has no offset for them
        yet (``latest`` put them at their end), so that a restart resumes there instead of
        skipping to the end again; then the group counts as joined (``/readyz``)."""
        if self.assigned is None:
            return
        assert self.consumer is not None
        fresh, self.assigned = self.assigned, None
        try:
            start: dict[TopicPartition, int] = {}
            for tp in fresh:
                if tp in self.consumer.assignment() and await self.consumer.committed(tp) is None:
                    start[tp] = await self.consumer.position(tp)
            if start:
                await self.consumer.commit(start)
        except BaseException:
            if self.assigned is None:
                self.assigned = fresh
            raise
        self.health.set("group", True)
        log.info("webhooks_partitions_assigned", group=self.group, partitions=len(fresh))

    async def ingest(self, records: Sequence[RecordLike]) -> int:
        """Queue the records' messages for the endpoints that chose them, in one transaction;
        returns how many deliveries were queued."""
        assert self.pool is not None
        queued, problems = to_queue(records)
        if problems:
            self.stats.skipped += len(problems)
            log.warning("webhooks_messages_skipped", count=len(problems), first=problems[:3])
        if not queued:
            return 0
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                QUEUE_SQL,
                [q.merchant_code for q in queued],
                [q.event_id for q in queued],
                [q.event_type for q in queued],
                [q.card_number for q in queued],
                [q.body for q in queued],
            )
            if rows:
                await conn.execute(NOTIFY_SQL)
        for kind, n in Counter(r["event_type"] for r in rows).items():
            WEBHOOK_QUEUED.labels(type=kind).inc(n)
        self.stats.queued += len(rows)
        if rows:
            log.debug("webhooks_queued", deliveries=len(rows), messages=len(queued))
            self._wake.set()
        return len(rows)

    # --- send ------------------------------------------------------------------------------

    async def _send_loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            free = self.settings.webhook_concurrency - len(self._inflight)
            if free > 0:
                try:
                    claimed = await self.claim(free)
                except RETRIED as exc:
                    log.warning("webhooks_claim_retrying", error=repr(exc)[:200])
                    await self._pause(1.0)
                    await self._relisten()
                    continue
                for delivery in claimed:
                    task = asyncio.create_task(self._deliver(delivery))
                    self._inflight.add(task)
                    task.add_done_callback(self._finished)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_S)
        if self._inflight:
            # Each attempt ends within the timeout; one cut short would wait out its lease.
            await asyncio.wait(self._inflight, timeout=self.settings.webhook_timeout_s + 5)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._wake.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("webhook_attempt_crashed", error=repr(task.exception())[:300])

    async def claim(self, slots: int) -> list[Delivery]:
        """Lease up to ``slots`` due deliveries (see the module's docstring)."""
        assert self.pool is not None
        s = self.settings
        rows = await self.pool.fetch(
            CLAIM_SQL, s.webhook_per_endpoint, slots, s.webhook_timeout_s + LEASE_MARGIN_S
        )
        return [Delivery(**dict(r)) for r in rows]

    async def _deliver(self, delivery: Delivery) -> None:
        assert self.client is not None
        headers = delivery_headers(
            delivery.secret,
            str(delivery.event_id),
            delivery.event_type,
            delivery.body,
            int(time.time()),
        )
        started = time.perf_counter()
        try:
            attempt = await self.client.post(delivery.url, headers, delivery.body)
        except Exception as exc:  # a failure the client did not foresee is still an attempt
            log.error("webhook_attempt_crashed", error=repr(exc)[:300])
            attempt = Attempt(None, f"internal error: {type(exc).__name__}")
        WEBHOOK_SECONDS.observe(time.perf_counter() - started)
        try:
            await self._record(delivery, attempt)
        except RETRIED as exc:
            # The lease runs out and the delivery is tried again: at least once.
            log.warning(
                "webhook_outcome_not_recorded",
                event_id=str(delivery.event_id),
                endpoint_id=delivery.endpoint_id,
                attempt=delivery.attempts,
                error=repr(exc)[:200],
            )

    async def _record(self, delivery: Delivery, attempt: Attempt) -> None:
        assert self.pool is not None
        s = self.settings
        fields: dict[str, Any] = {
            "event_id": str(delivery.event_id),
            "endpoint_id": delivery.endpoint_id,
            "delivery_id": delivery.id,
            "attempt": delivery.attempts,
            "status": attempt.status,
        }
        if attempt.delivered:
            await self.pool.execute(DELIVERED_SQL, delivery.id, attempt.status)
            WEBHOOK_ATTEMPTS.labels(outcome="delivered").inc()
            self.stats.delivered += 1
            log.debug("webhook_delivered", **fields)
            return
        parked = is_expired(delivery.retry_from, datetime.now(UTC), s.webhook_retry_window_s)
        delay = next_delay(
            delivery.attempts, s.webhook_retry_first_s, s.webhook_retry_max_s, self.rng
        )
        await self.pool.execute(
            FAILED_SQL,
            delivery.id,
            attempt.status,
            attempt.error,
            PARKED if parked else PENDING,
            delay,
            delivery.attempts,
        )
        if parked:
            WEBHOOK_ATTEMPTS.labels(outcome="parked").inc()
            self.stats.parked += 1
            log.warning("webhook_parked", **fields, error=attempt.error)
        else:
            WEBHOOK_ATTEMPTS.labels(outcome="failed").inc()
            self.stats.failed += 1
            log.info("webhook_failed", **fields, error=attempt.error, retry_in_s=round(delay, 2))
            asyncio.get_running_loop().call_later(delay, self._wake.set)

    # --- gauges, lag, pruning --------------------------------------------------------------

    async def _housekeeping_loop(self) -> None:
        loop = asyncio.get_running_loop()
        # Dispatchers started together prune at different times.
        prune_at = loop.time() + self.rng.uniform(0, PRUNE_EVERY_S)
        while not self._stopping.is_set():
            try:
                await self.update_gauges()
                await self._update_lag()
                if loop.time() >= prune_at:
                    prune_at = loop.time() + PRUNE_EVERY_S
                    await self.prune()
            except (*RETRIED, KafkaError) as exc:
                log.warning("webhooks_housekeeping_failed", error=repr(exc)[:200])
            await self._pause(GAUGES_EVERY_S)

    async def update_gauges(self) -> None:
        """Set the pending and parked gauges (live endpoints only)."""
        assert self.pool is not None
        row = await self.pool.fetchrow(GAUGES_SQL)
        assert row is not None
        WEBHOOK_PENDING.set(row["pending"])
        WEBHOOK_PARKED.set(row["parked"])

    async def _update_lag(self) -> None:
        assert self.consumer is not None
        for tp in self.consumer.assignment():
            high = self.consumer.highwater(tp)
            if high is None:  # no fetch answered for it yet
                continue
            try:
                position = await asyncio.wait_for(self.consumer.position(tp), 1.0)
            except (TimeoutError, KafkaError):  # revoked meanwhile, or no position yet
                continue
            CONSUMER_LAG.labels(self.group, tp.topic, str(tp.partition)).set(
                max(0, high - position)
            )

    async def prune(self) -> int:
        """Delete delivered rows older than a week, a bounded number at a time."""
        assert self.pool is not None
        total = 0
        while not self._stopping.is_set():
            status = await self.pool.execute(PRUNE_SQL, KEEP_DELIVERED_DAYS, PRUNE_LIMIT)
            deleted = int(status.split()[-1])
            total += deleted
            if deleted < PRUNE_LIMIT:
                break
        if total:
            log.info("webhooks_pruned", deliveries=total)
        return total


async def run_webhooks(settings: Settings) -> None:
    """Run a dispatcher until SIGINT or SIGTERM, which let the attempts under way finish."""
    dispatcher = Dispatcher(settings)
    ops: OpsServer | None = start_ops_server(settings, dispatcher.health)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, dispatcher.stop)
    try:
        await dispatcher.start()
        log.info(
            "webhooks_started",
            group=dispatcher.group,
            topics=list(OUTPUT_TOPICS),
            concurrency=settings.webhook_concurrency,
            per_endpoint=settings.webhook_per_endpoint,
            allow_private=settings.webhook_allow_private,
        )
        await dispatcher.run()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await dispatcher.close()
        if ops is not None:
            ops.close()
        log.info("webhooks_stopped", **dispatcher.stats.as_dict())
