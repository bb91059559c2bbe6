"""Wallet sync against the real test stack (PostgreSQL, Kafka) and the fakes of APNs and Google.

Each test truncates the database (``db_sessions``) and runs its own :class:`WalletSync` in
this process, with a consumer group of its own positioned at the end of
``loyalty.wallet-updates.v1``, so messages of other tests and sessions are never read.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from sqlalchemy.ext.asyncio import AsyncEngine

from consumers.wallet_sync import WalletSync, wallet_group
from core.settings import Settings
from streams.outputs import CardBalanceChanged
from streams.topics import Topic
from tests.support.pipeline import position_group_at_end
from tests.support.wallet_fakes import *
from tests.support.wallet_fakes import wallet_settings_for
from tests.wallet.fake_apns import FakeApns
from tests.wallet.fake_google import FakeGoogle
from tests.wallet.pki import Issued, TlsServerPki
from wallet import WalletSettings


class SyncHarness:
    """A wallet sync consuming from the real Kafka, and a producer publishing to it."""

    def __init__(self, sync: WalletSync, producer: AIOKafkaProducer) -> None:
        self.sync = sync
        self.producer = producer
        self.task: asyncio.Task[None] | None = None
        self.published: dict[TopicPartition, int] = {}

    async def start(self) -> None:
        """Start consuming (``start`` of the sync happened already)."""
        self.task = asyncio.create_task(self.sync.run())

    async def publish(self, *messages: CardBalanceChanged | bytes, key: str | None = None) -> None:
        """Publish messages keyed by card number (raw bytes under ``key``)."""
        futures = []
        for message in messages:
            if isinstance(message, bytes):
                value, msg_key = message, key
            else:
                value, msg_key = message.model_dump_json().encode(), message.card_number
            futures.append(
                await self.producer.send(
                    Topic.WALLET_UPDATES.value,
                    value,
                    key=msg_key.encode() if msg_key else None,
                )
            )
        for meta in await asyncio.gather(*futures):
            tp = TopicPartition(meta.topic, meta.partition)
            self.published[tp] = max(self.published.get(tp, 0), meta.offset + 1)

    async def caught_up(self, timeout: float = 30.0) -> None:
        """Wait until the sync committed everything published so far."""
        assert self.task is not None, "start() first"
        deadline = time.monotonic() + timeout
        while True:
            if self.task.done():
                self.task.result()  # raises what stopped the consumer
                raise AssertionError("the wallet sync stopped")
            behind = {
                tp: end
                for tp, end in self.published.items()
                if self.sync.committed.get(tp, -1) < end
            }
            if not behind:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"wallet sync still behind on {behind}")
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        """Stop consuming and close the clients."""
        self.sync.stop()
        if self.task is not None:
            await asyncio.wait_for(self.task, 30)
        await self.sync.close()


MakeSync = Callable[[WalletSettings], Awaitable[SyncHarness]]


@pytest.fixture
async def make_sync(
    stack: Settings,
    database_url: str,
    db_engine: AsyncEngine,
    fake_apns: FakeApns,
    fake_google: FakeGoogle,
) -> AsyncIterator[MakeSync]:
    """Build a started wallet sync with the given wallet settings (call ``harness.start()``
    to begin consuming). The fakes are set up first so that they outlive the sync's
    connections to them."""
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, enable_idempotence=True)
    await producer.start()
    harnesses: list[SyncHarness] = []

    async def make(wallet_settings: WalletSettings) -> SyncHarness:
        settings = stack.model_copy(
            update={
                "consumer_group": f"test-{uuid.uuid4().hex[:8]}",
                "database_url": database_url,
                "batch_max_records": 500,
            }
        )
        await position_group_at_end(
            settings.bootstrap, wallet_group(settings), [Topic.WALLET_UPDATES.value]
        )
        sync = WalletSync(settings, wallet_settings, engine=db_engine)
        await sync.start()
        harness = SyncHarness(sync, producer)
        harnesses.append(harness)
        return harness

    yield make
    for harness in harnesses:
        await harness.close()
    await producer.stop()


@pytest.fixture
def both_wallets(
    tmp_path: Path,
    fake_apns: FakeApns,
    fake_google: FakeGoogle,
    apns_tls: TlsServerPki,
    apns_p8_key: Path,
    google_sa_key: Issued,
) -> WalletSettings:
    """Apple (APNs token auth) and Google switched on, against the fakes; quick retries,
    and a sweep that only runs when a test calls it."""
    return wallet_settings_for(
        tmp_path,
        apns=(fake_apns, apns_tls, apns_p8_key),
        google=(fake_google, google_sa_key),
        sync_backoff_seconds=0.01,
        sync_sweep_interval_seconds=3600,
        google_max_attempts=3,
    )
