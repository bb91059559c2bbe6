"""Wallet sync: ``loyalty.wallet-updates.v1`` to Apple Wallet pushes and Google Wallet objects.

A consumer group of its own (``<consumer_group>-wallet``) reads ``card.balance_changed`` in
batches. Per batch:

1. the updates are coalesced per card, the newest ``version`` winning, so a burst of changes
   of one card costs one push and one Google PATCH;
2. a card is synced to a wallet only when that version is newer than the wallet's
   ``wallet_sync_state.synced_version``: duplicates and stale redeliveries are skipped;
3. the card is read from its CURRENT row (never from the message, which may be older), then
   Apple: an empty push to every device registered for it (APNs 429/5xx retried with
   backoff, a bounded number of times; registrations APNs calls gone are deleted), and
   Google: the program's LoyaltyClass ensured and the card's LoyaltyObject upserted (the
   client retries 429/5xx itself);
4. the outcome is recorded per card and wallet in ``wallet_sync_state``, then the offsets
   are committed. A success sets ``synced_version`` to the version synced and ``attempts``
   to 0; a failure increments ``attempts`` and records ``last_error``/``last_error_at``,
   leaving ``synced_version`` behind, so a later update or the retry sweep catches up.
   ``last_error`` is kept after a later success (history); a card is failing while
   ``attempts > 0``;
5. the push tokens of erased customers' cards whose void pass has now been pushed are
   replaced by pseudonyms (``domain.customers.push_tokens``); never pushed to again.

The retry sweep runs every ``sync_sweep_interval_seconds`` and syncs again cards whose state
lags their version: failed ones with exponential backoff, and quiet ones whose update was
lost. A wallet without credentials is disabled with one log line at start; nothing is
recorded for it. Push tokens and authentication tokens never reach a log line.

The process serves ``/metrics``, ``/healthz`` and ``/readyz`` on its ops port
(``core.health``): pushes by wallet and outcome, its group's lag; ready when PostgreSQL and
Kafka answer and the group has taken it in.

Long (about 650 lines) because it holds one process whole: the consumer loop, coalescing, the
Apple and Google pushes and their retries read best side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from sqlalchemy import bindparam, delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from consumers.pipeline import TRANSIENT, RecordLike
from core.health import GroupWatch, Health, keep_measuring_lag, keep_probing, start_ops_server
from core.logs import get_logger
from core.metrics import WALLET_PUSH_OUTCOMES, WALLET_PUSHES
from core.settings import Settings
from domain.customers.finding import ERASED_PREFIX
from domain.customers.push_tokens import release_push_tokens
from domain.db import make_engine, make_sessionmaker
from domain.models import AppleDeviceRegistration, WalletSyncState
from domain.wallet_cards import WalletCard, wallet_cards_by_number
from streams.broker import consumer_config
from streams.outputs import CardBalanceChanged
from streams.parsing import ParseError, parse_output
from streams.topics import Topic
from wallet import (
    ApnsClient,
    AsyncGoogleWalletClient,
    GoogleWalletError,
    PushResult,
    WalletError,
    WalletSettings,
    check_apple_wallet,
    loyalty_object_id,
)

log = get_logger(__name__)

APPLE = "apple"
GOOGLE = "google"
WALLETS: tuple[str, ...] = (APPLE, GOOGLE)

SWEEP_LOCK = (0x10C4, 0x3A11)  # pg_try_advisory_lock(int, int): "the wallet sweep"
SWEEP_LIMIT = 500
RETRY_CAP_SECONDS = 3600.0
_ERROR_CHARS = 500

ApnsFactory = Callable[[WalletSettings], ApnsClient]
GoogleFactory = Callable[[WalletSettings], AsyncGoogleWalletClient]


def wallet_group(settings: Settings) -> str:
    """The wallet sync's consumer group: the engine's group with ``-wallet`` appended."""
    return f"{settings.consumer_group}-wallet"


def coalesce(updates: Iterable[CardBalanceChanged]) -> dict[str, int]:
    """The newest version announced per card number."""
    newest: dict[str, int] = {}
    for update in updates:
        newest[update.card_number] = max(newest.get(update.card_number, 0), update.version)
    return newest


def is_due(announced_version: int, synced_version: int) -> bool:
    """True when a wallet must be synced: the announced version is newer than the synced one."""
    return announced_version > synced_version


def retry_delay(attempts: int, interval: float, cap: float = RETRY_CAP_SECONDS) -> float:
    """Seconds a failed card waits before the sweep tries again: interval, 2x, 4x... capped."""
    return min(cap, interval * 2.0 ** min(max(attempts - 1, 0), 20))


def is_transient(exc: BaseException) -> bool:
    """True when the database is away (or the connection was cut), not the data at fault:
    the batch is read again later."""
    if isinstance(exc, (*TRANSIENT, OperationalError, InterfaceError)):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def _short(error: str) -> str:
    return error if len(error) <= _ERROR_CHARS else error[: _ERROR_CHARS - 1] + "…"


@dataclass(frozen=True)
class Outcome:
    """What one sync of one card to one wallet came to; ``error`` None on success."""

    card_id: int
    wallet: str
    version: int
    error: str | None = None


@dataclass
class SyncReport:
    """What a batch (or a sweep) did, for the log line and for tests."""

    records: int = 0
    invalid: int = 0
    cards: int = 0
    unknown_cards: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    synced: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    pushes: int = 0
    removed_registrations: int = 0

    def as_log(self) -> dict[str, Any]:
        """Flat key/values for a log line."""
        fields: dict[str, Any] = {
            "records": self.records,
            "invalid": self.invalid,
            "cards": self.cards,
            "unknown_cards": self.unknown_cards,
            "pushes": self.pushes,
            "removed_registrations": self.removed_registrations,
        }
        for name in ("skipped", "synced", "failed"):
            counts: Counter[str] = getattr(self, name)
            for wallet in WALLETS:
                fields[f"{wallet}_{name}"] = counts[wallet]
        return fields


class _GroupListener(GroupWatch, ConsumerRebalanceListener):  # type: ignore[misc]
    """The group's rebalances, for ``/readyz`` and the lag gauges (aiokafka takes only a
    ``ConsumerRebalanceListener``)."""


def _count_pushes(wallet: str, outcomes: Iterable[str]) -> None:
    """Add a batch's outcomes (ok, failed, gone) to ``loyalty_wallet_pushes_total``."""
    for outcome, n in Counter(outcomes).items():
        WALLET_PUSHES.labels(wallet, outcome).inc(n)


@dataclass(frozen=True)
class _Registration:
    id: int
    card_id: int
    push_token: str = field(repr=False)


class WalletSync:
    """The wallet sync of one process: database, wallet clients, Kafka consumer, sweep.

    ``start`` opens what is needed (and logs the disabled wallets, once), ``run`` consumes
    until ``stop``; ``sync_cards`` and ``sweep_once`` are the steps, usable on their own.
    """

    def __init__(
        self,
        settings: Settings,
        wallet_settings: WalletSettings,
        *,
        engine: AsyncEngine | None = None,
        apns_factory: ApnsFactory | None = None,
        google_factory: GoogleFactory | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.wallet_settings = wallet_settings
        self.group_id = wallet_group(settings)
        self._engine = engine
        self._own_engine = engine is None
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self._apns_factory = apns_factory or (lambda ws: ApnsClient(ws, ca_file=ws.apns_ca_path))
        self._google_factory = google_factory or AsyncGoogleWalletClient.from_settings
        self._sleep = sleep
        self.apns: ApnsClient | None = None
        self.google: AsyncGoogleWalletClient | None = None
        # One batch or sweep at a time: a sweep never races a batch over the same card.
        self._lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self.committed: dict[TopicPartition, int] = {}
        self.totals = SyncReport()
        # What the ops port reports (``run_wallet_sync`` serves it).
        self.health = Health("wallet-sync", required=("database", "broker", "group"))
        self.watch = _GroupListener(self.health, self.group_id)
        self.consumer: AIOKafkaConsumer | None = None

    # --- life cycle ------------------------------------------------------------------------

    @property
    def enabled(self) -> tuple[str, ...]:
        """The wallets this process syncs."""
        return tuple(
            w for w, client in ((APPLE, self.apns), (GOOGLE, self.google)) if client is not None
        )

    async def start(self) -> None:
        """Open the database and the clients of the configured wallets.

        A wallet without credentials is disabled with one log line; one whose credentials
        are set but unreadable, or an Apple set-up Wallet would refuse on the phone (see
        :func:`wallet.check_apple_wallet`), raises :class:`wallet.WalletConfigError` (an
        operator must fix it, retrying will not).
        """
        check_apple_wallet(self.wallet_settings)
        apple_off = self.wallet_settings.apns_disabled_reason()
        google_off = self.wallet_settings.google_disabled_reason()
        if apple_off:
            log.warning("wallet_sync_wallet_disabled", wallet=APPLE, reason=apple_off)
        else:
            self.apns = self._apns_factory(self.wallet_settings)
        if google_off:
            log.warning("wallet_sync_wallet_disabled", wallet=GOOGLE, reason=google_off)
        else:
            self.google = self._google_factory(self.wallet_settings)
        if self._engine is None:
            self._engine = make_engine(self.settings, pool_size=2)
        self._sessions = make_sessionmaker(self._engine)

    def stop(self) -> None:
        """Ask ``run`` to finish its current batch and return (safe in a signal handler)."""
        self._stopping.set()

    async def close(self) -> None:
        """Close the clients (and the engine when it is this object's own)."""
        if self.apns is not None:
            await self.apns.aclose()
            self.apns = None
        if self.google is not None:
            await self.google.aclose()
            self.google = None
        if self._own_engine and self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def check_database(self) -> None:
        """The readiness probe of the database: ``SELECT 1``."""
        if self._engine is None:
            raise ConnectionError("no database engine yet")
        async with self._engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def check_broker(self) -> None:
        """The readiness probe of Kafka: a metadata request on the consumer's connection."""
        if self.consumer is None:
            raise ConnectionError("the consumer has not started")
        await self.consumer.topics()

    # --- the consumer ------------------------------------------------------------------------

    async def run(self) -> None:
        """Consume ``loyalty.wallet-updates.v1`` until ``stop``; sweep between batches."""
        consumer = AIOKafkaConsumer(
            **consumer_config(self.settings, "wallet-sync", group_id=self.group_id)
        )
        consumer.subscribe([Topic.WALLET_UPDATES.value], listener=self.watch)
        await consumer.start()
        self.consumer = consumer
        log.info("wallet_sync_started", wallets=list(self.enabled), group=self.group_id)
        loop = asyncio.get_running_loop()
        interval = self.wallet_settings.sync_sweep_interval_seconds
        next_sweep = loop.time() + interval
        try:
            while not self._stopping.is_set():
                batch = await consumer.getmany(
                    timeout_ms=500, max_records=self.settings.batch_max_records
                )
                if batch:
                    await self._consume(consumer, batch)
                if self.enabled and loop.time() >= next_sweep:
                    next_sweep = loop.time() + interval
                    try:
                        await self.sweep_once()
                    except Exception as exc:
                        if not is_transient(exc):
                            raise
                        log.warning("wallet_sweep_deferred", error=repr(exc)[:200])
        finally:
            self.consumer = None
            with contextlib.suppress(KafkaError):
                await consumer.stop()
            log.info("wallet_sync_stopped", **self.totals.as_log())

    async def _consume(
        self, consumer: AIOKafkaConsumer, batch: dict[TopicPartition, list[Any]]
    ) -> None:
        records = [r for part in batch.values() for r in part]
        try:
            await self.handle_records(records)
        except Exception as exc:
            if not is_transient(exc):
                raise
            # Nothing recorded: read the batch again after a pause (a redelivered update is
            # at worst one more empty push, never a wrong balance).
            log.warning("wallet_batch_deferred", size=len(records), error=repr(exc)[:200])
            for tp, part in batch.items():
                consumer.seek(tp, part[0].offset)
            await self._sleep(1.0)
            return
        offsets = {tp: part[-1].offset + 1 for tp, part in batch.items()}
        try:
            await consumer.commit(offsets)
        except CommitFailedError as exc:
            # A rebalance took the partitions: their next owner reads the batch again and
            # skips what is recorded as synced.
            log.warning("wallet_commit_failed", error=str(exc)[:200])
            return
        self.committed.update(offsets)

    async def handle_records(self, records: Sequence[RecordLike]) -> SyncReport:
        """Parse a batch of records and sync the cards they announce."""
        updates: list[CardBalanceChanged] = []
        invalid = 0
        for rec in records:
            message = parse_output(rec.topic, rec.value)
            if isinstance(message, CardBalanceChanged):
                updates.append(message)
                continue
            invalid += 1
            error = str(message) if isinstance(message, ParseError) else "not card.balance_changed"
            log.warning(
                "wallet_update_unreadable",
                topic=rec.topic,
                partition=rec.partition,
                offset=rec.offset,
                error=error[:300],
            )
        announced = coalesce(updates)
        if self.enabled and announced:
            report = await self.sync_cards(announced)
        else:
            report = SyncReport(cards=len(announced))
        if announced and APPLE not in self.enabled:
            # No push to Apple devices ever leaves this process: an erased customer's push
            # tokens have nothing to wait for.
            await self._release_erased_tokens(card_numbers=list(announced), wait=False)
        report.records, report.invalid = len(records), invalid
        self._account(report)
        log.info("wallet_batch_synced", **report.as_log())
        return report

    def _account(self, report: SyncReport) -> None:
        totals = self.totals
        for name in ("records", "invalid", "cards", "unknown_cards", "pushes"):
            setattr(totals, name, getattr(totals, name) + getattr(report, name))
        totals.removed_registrations += report.removed_registrations
        totals.skipped.update(report.skipped)
        totals.synced.update(report.synced)
        totals.failed.update(report.failed)

    # --- syncing -------------------------------------------------------------------------

    async def sync_cards(self, announced: dict[str, int]) -> SyncReport:
        """Sync every card of ``announced`` (card number -> newest version announced) whose
        wallets lag that version, from the card's current row; record the outcomes."""
        assert self._sessions is not None, "start() first"
        async with self._lock:
            report = SyncReport(cards=len(announced))
            async with self._sessions() as session:
                cards = await wallet_cards_by_number(session, announced.keys())
                states = await self._synced_versions(session, [c.card_id for c in cards.values()])
            report.unknown_cards = len(announced) - len(cards)
            due: dict[str, list[WalletCard]] = {w: [] for w in self.enabled}
            for number, card in cards.items():
                for wallet in self.enabled:
                    if is_due(announced[number], states.get((card.card_id, wallet), 0)):
                        due[wallet].append(card)
                    else:
                        report.skipped[wallet] += 1
            registrations: list[_Registration] = []
            if due.get(APPLE):
                async with self._sessions() as session:
                    registrations = await self._registrations(session, due[APPLE])
            apple, google = await asyncio.gather(
                self._sync_apple(due.get(APPLE, []), registrations, report),
                self._sync_google(due.get(GOOGLE, [])),
            )
            removed, outcomes = apple[0], [*apple[1], *google[0]]
            await self._record(outcomes, removed, google[1])
            if due.get(APPLE):
                await self._release_erased_tokens(card_numbers=[c.card_number for c in due[APPLE]])
            report.removed_registrations = len(removed)
            for outcome in outcomes:
                counter = report.failed if outcome.error else report.synced
                counter[outcome.wallet] += 1
            return report

    async def _synced_versions(
        self, session: AsyncSession, card_ids: list[int]
    ) -> dict[tuple[int, str], int]:
        if not card_ids:
            return {}
        rows = await session.execute(
            select(
                WalletSyncState.card_id, WalletSyncState.wallet, WalletSyncState.synced_version
            ).where(WalletSyncState.card_id.in_(card_ids))
        )
        return {(card_id, wallet): version for card_id, wallet, version in rows}

    async def _registrations(
        self, session: AsyncSession, cards: list[WalletCard]
    ) -> list[_Registration]:
        rows = await session.execute(
            select(
                AppleDeviceRegistration.id,
                AppleDeviceRegistration.card_id,
                AppleDeviceRegistration.push_token,
            ).where(
                AppleDeviceRegistration.card_id.in_([c.card_id for c in cards]),
                AppleDeviceRegistration.pass_type_id == self.wallet_settings.apple_pass_type_id,
                # An erased customer's device, told already: its token is a pseudonym.
                AppleDeviceRegistration.push_token.not_like(f"{ERASED_PREFIX}%"),
            )
        )
        return [_Registration(i, c, t) for i, c, t in rows]

    async def _release_erased_tokens(
        self, *, card_numbers: list[str] | None = None, wait: bool = True
    ) -> None:
        """Replace the push tokens of erased customers that the pushes recorded so far made
        needless (all of them without ``wait``); ``card_numbers`` narrows the search."""
        assert self._sessions is not None, "start() first"
        async with self._sessions.begin() as session:
            await release_push_tokens(session, card_numbers=card_numbers, wait_for_push=wait)

    async def _sync_apple(
        self, cards: list[WalletCard], registrations: list[_Registration], report: SyncReport
    ) -> tuple[list[int], list[Outcome]]:
        """Push every device of the cards, once per device; returns the registrations to
        delete and the outcome per card."""
        if not cards:
            return [], []
        assert self.apns is not None
        # A device holding several of these cards has one push token: one push tells it to
        # fetch them all.
        tokens = list(dict.fromkeys(r.push_token for r in registrations))
        results = await self._push(tokens) if tokens else {}
        report.pushes += len(tokens)
        _count_pushes(
            APPLE,
            (
                "ok" if r.delivered else "gone" if r.remove_registration else "failed"
                for r in results.values()
            ),
        )
        removed = [r.id for r in registrations if results[r.push_token].remove_registration]
        by_card: dict[int, list[PushResult]] = defaultdict(list)
        for registration in registrations:
            by_card[registration.card_id].append(results[registration.push_token])
        outcomes: list[Outcome] = []
        for card in cards:
            pushed = by_card.get(card.card_id, [])
            failed = [r for r in pushed if not (r.delivered or r.remove_registration)]
            error = None
            if failed:
                first = failed[0]
                why = " ".join(str(p) for p in (first.status, first.reason) if p) or "no answer"
                error = f"APNs: {len(failed)} of {len(pushed)} devices not reached ({why})"
            outcomes.append(Outcome(card.card_id, APPLE, card.version, error))
        return removed, outcomes

    async def _push(self, tokens: list[str]) -> dict[str, PushResult]:
        """Push ``tokens``, retrying the transient failures with exponential backoff."""
        assert self.apns is not None
        final: dict[str, PushResult] = {}
        pending = tokens
        attempts = self.wallet_settings.sync_apns_attempts
        for attempt in range(1, attempts + 1):
            retry: list[str] = []
            for result in await self.apns.push(pending):
                final[result.push_token] = result
                if result.retryable:
                    retry.append(result.push_token)
            if not retry or attempt == attempts:
                break
            delay = self.wallet_settings.sync_backoff_seconds * 2 ** (attempt - 1)
            # Equal jitter: half fixed, half random, so processes do not retry in step.
            delay = random.uniform(delay / 2, delay)
            log.info("apns_retry", devices=len(retry), attempt=attempt, delay=round(delay, 3))
            await self._sleep(delay)
            pending = retry
        return final

    async def _sync_google(self, cards: list[WalletCard]) -> tuple[list[Outcome], dict[int, str]]:
        """Ensure each program's class, then upsert each card's object; returns the
        outcome per card and the object ids to note on the cards."""
        if not cards:
            return [], {}
        assert self.google is not None
        google = self.google
        gate = asyncio.Semaphore(self.wallet_settings.sync_google_concurrency)
        outcomes: list[Outcome] = []
        object_ids: dict[int, str] = {}
        by_program: dict[int, list[WalletCard]] = defaultdict(list)
        for card in cards:
            by_program[card.program_id].append(card)

        async def upsert(card: WalletCard) -> Outcome:
            async with gate:
                try:
                    await google.upsert_object(card.pass_card())
                except (WalletError, ValueError, requests.RequestException) as exc:
                    return Outcome(card.card_id, GOOGLE, card.version, _google_error(exc))
            object_id = loyalty_object_id(card.card_number, self.wallet_settings)
            if card.google_object_id != object_id:
                object_ids[card.card_id] = object_id
            return Outcome(card.card_id, GOOGLE, card.version)

        for program_cards in by_program.values():
            try:
                # Classes first, one at a time: the client remembers the classes it brought
                # up to date, and its memory is not shared safely between threads.
                await google.ensure_class(program_cards[0].pass_program())
            except (WalletError, ValueError, requests.RequestException) as exc:
                error = "class: " + _google_error(exc)
                outcomes.extend(Outcome(c.card_id, GOOGLE, c.version, error) for c in program_cards)
                continue
            outcomes.extend(await asyncio.gather(*(upsert(c) for c in program_cards)))
        _count_pushes(GOOGLE, ("failed" if o.error else "ok" for o in outcomes))
        return outcomes, object_ids

    async def _record(
        self, outcomes: list[Outcome], removed: list[int], object_ids: dict[int, str]
    ) -> None:
        """Write the outcomes, delete gone registrations and note Google object ids, in
        one transaction."""
        if not (outcomes or removed or object_ids):
            return
        assert self._sessions is not None
        now = datetime.now(UTC)
        async with self._sessions.begin() as session:
            if removed:
                await session.execute(
                    delete(AppleDeviceRegistration).where(AppleDeviceRegistration.id.in_(removed))
                )
            synced = [o for o in outcomes if o.error is None]
            failed = [o for o in outcomes if o.error is not None]
            if synced:
                stmt = insert(WalletSyncState).values(
                    [
                        {
                            "card_id": o.card_id,
                            "wallet": o.wallet,
                            "synced_version": o.version,
                            "synced_at": now,
                            "attempts": 0,
                        }
                        for o in synced
                    ]
                )
                await session.execute(
                    stmt.on_conflict_do_update(
                        index_elements=["card_id", "wallet"],
                        set_={
                            # Never backwards: a slow batch must not undo a newer sync.
                            "synced_version": func.greatest(
                                WalletSyncState.synced_version, stmt.excluded.synced_version
                            ),
                            "synced_at": stmt.excluded.synced_at,
                            "attempts": 0,
                        },
                    )
                )
            if failed:
                stmt = insert(WalletSyncState).values(
                    [
                        {
                            "card_id": o.card_id,
                            "wallet": o.wallet,
                            "synced_version": 0,
                            "last_error": _short(o.error or ""),
                            "last_error_at": now,
                            "attempts": 1,
                        }
                        for o in failed
                    ]
                )
                await session.execute(
                    stmt.on_conflict_do_update(
                        index_elements=["card_id", "wallet"],
                        set_={
                            "last_error": stmt.excluded.last_error,
                            "last_error_at": stmt.excluded.last_error_at,
                            "attempts": WalletSyncState.attempts + 1,
                        },
                    )
                )
            if object_ids:
                # Plain SQL: the ORM would also bump updated_at, the pass's Last-Modified.
                await session.execute(
                    text(
                        "UPDATE loyalty_cards SET google_object_id = :oid "
                        "WHERE id = :id AND google_object_id IS DISTINCT FROM :oid"
                    ),
                    [{"id": card_id, "oid": oid} for card_id, oid in object_ids.items()],
                )

    # --- the retry sweep -------------------------------------------------------------------

    async def sweep_once(self, as_of: datetime | None = None) -> SyncReport:
        """Sync again the cards whose wallets lag their version (at most ``SWEEP_LIMIT``).

        Failed ones wait ``retry_delay(attempts)`` after their last error; ones that never
        failed wait one sweep interval after their last change, which leaves time for the
        update message itself to arrive. One process sweeps at a time (an advisory lock).
        """
        assert self._engine is not None, "start() first"
        if not self.enabled:
            return SyncReport()
        moment = as_of or datetime.now(UTC)
        interval = self.wallet_settings.sync_sweep_interval_seconds
        async with self._engine.connect() as conn:
            got = await conn.scalar(text("SELECT pg_try_advisory_lock(:a, :b)"), _lock_params())
            await conn.commit()
            if not got:
                return SyncReport()
            try:
                rows = await conn.execute(
                    _LAGGING,
                    {
                        "wallets": list(self.enabled),
                        "as_of": moment,
                        "interval": interval,
                        "cap": RETRY_CAP_SECONDS,
                        "limit": SWEEP_LIMIT,
                    },
                )
                lagging = {number: version for number, version in rows}
                await conn.commit()
                report = await self.sync_cards(lagging) if lagging else SyncReport()
                # Erased customers' tokens whose push went out in an earlier batch, or that
                # waited for it past the grace period.
                await self._release_erased_tokens()
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(:a, :b)"), _lock_params())
                await conn.commit()
        if lagging:
            self._account(report)
            log.info("wallet_sweep_synced", **report.as_log())
        return report


def _lock_params() -> dict[str, int]:
    return {"a": SWEEP_LOCK[0], "b": SWEEP_LOCK[1]}


_LAGGING = text(
    """
SELECT c.card_number, max(c.version) AS version
FROM wallet_sync_state s
JOIN loyalty_cards c ON c.id = s.card_id AND c.deleted_at IS NULL
WHERE s.wallet = ANY(CAST(:wallets AS text[]))
  AND s.synced_version < c.version
  AND CASE WHEN s.attempts > 0
      THEN s.last_error_at <= CAST(:as_of AS timestamptz) - make_interval(secs => LEAST(
               CAST(:cap AS float8),
               CAST(:interval AS float8) * power(2, LEAST(s.attempts - 1, 20))))
      ELSE c.updated_at <= CAST(:as_of AS timestamptz)
               - make_interval(secs => CAST(:interval AS float8))
  END
GROUP BY c.card_number
ORDER BY min(s.last_error_at) NULLS FIRST
LIMIT :limit
"""
).bindparams(bindparam("wallets"))


def _google_error(exc: BaseException) -> str:
    if isinstance(exc, GoogleWalletError):
        return f"Google Wallet: {exc}"
    return f"Google Wallet: {type(exc).__name__}: {exc}"


async def run_wallet_sync(settings: Settings, wallet_settings: WalletSettings) -> None:
    """Run the wallet sync, with its ops port, until SIGINT or SIGTERM, which let the current
    batch finish."""
    sync = WalletSync(settings, wallet_settings)
    # Every known series exports 0 from the first scrape: pushes are rare, and an alert on
    # failures must see the counter before the first one.
    for wallet in WALLETS:
        for outcome in WALLET_PUSH_OUTCOMES:
            WALLET_PUSHES.labels(wallet, outcome)
    ops = start_ops_server(settings, sync.health)
    probes = {"database": sync.check_database, "broker": sync.check_broker}
    background = [
        asyncio.create_task(keep_probing(sync.health, probes)),
        asyncio.create_task(keep_measuring_lag(sync.watch, lambda: sync.consumer)),
    ]
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, sync.stop)
    try:
        await sync.start()
        await sync.run()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        for task in background:
            task.cancel()
        await sync.close()
        if ops is not None:
            ops.close()
