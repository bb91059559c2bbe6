"""Webhooks against the real pipeline: the session's worker and relay (``tests.pipeline``), a
dispatcher subprocess (``loyalty webhooks``) with a group of its own and short retries, and
HTTP receivers on loopback.

The dispatcher allows private addresses (the receivers are on 127.0.0.1), retries from 0.2 s
up to 1 s for a 3 s window, gives an endpoint 5 s to answer, and runs at most 6 attempts at a
time, 3 per endpoint. Its ops port tells when it has joined its group (``/readyz``).
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.settings import Settings, asyncpg_url
from domain.db import make_engine, make_sessionmaker
from tests.pipeline.conftest import *
from tests.pipeline.conftest import _running
from tests.support.db import fresh_database
from tests.support.pipeline import PipelineProcesses, alive
from tests.webhooks.receivers import Mode, Receiver

TIMEOUT_S = 5.0
RETRY_WINDOW_S = 3.0


class Dispatcher:
    """A ``loyalty webhooks`` subprocess: start, stop, its ops port."""

    def __init__(self, procs: PipelineProcesses, name: str = "webhooks") -> None:
        self.procs = procs
        self.name = name
        self.ops_url = f"http://127.0.0.1:{procs.env['LOYALTY_METRICS_PORT']}"

    def twin(self, name: str) -> Dispatcher:
        """Another dispatcher of the same group and settings, with its own ops port."""
        env = {**self.procs.env, "LOYALTY_METRICS_PORT": str(_free_port())}
        procs = PipelineProcesses(env, self.procs.log_dir)
        _running.append(procs)
        return Dispatcher(procs, name)

    async def start(self) -> None:
        """Start it and wait until it is ready (database, broker, group joined)."""
        self.procs.start(self.name, "webhooks")
        await self.wait_ready()

    async def stop(self) -> None:
        """Stop it cleanly (SIGTERM)."""
        await asyncio.to_thread(self.procs.stop, self.name)

    def log(self) -> str:
        """What it logged so far."""
        return self.procs.log(self.name)

    def get(self, path: str) -> tuple[int, str]:
        """An answer of its ops port."""
        try:
            with urllib.request.urlopen(self.ops_url + path, timeout=5) as answer:  # noqa: S310
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    async def wait_ready(self, timeout: float = 120.0) -> None:
        """Wait until ``/readyz`` answers 200."""
        deadline = time.monotonic() + timeout
        while True:
            if not alive(self.procs, self.name):
                raise AssertionError(f"{self.name} stopped:\n{self.log()[-3000:]}")
            try:
                status, _ = await asyncio.to_thread(self.get, "/readyz")
            except OSError:
                status = 0
            if status == 200:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} is not ready:\n{self.log()[-3000:]}")
            await asyncio.sleep(0.2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="session")
async def dispatcher(
    pipeline_processes: PipelineProcesses, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Dispatcher]:
    """The session's dispatcher, ready; tests may stop and start it again."""
    env = dict(pipeline_processes.env)
    env.update(
        LOYALTY_WEBHOOK_GROUP=f"test-webhooks-{uuid.uuid4().hex[:8]}",
        LOYALTY_WEBHOOK_ALLOW_PRIVATE="true",
        LOYALTY_WEBHOOK_RETRY_FIRST_S="0.2",
        LOYALTY_WEBHOOK_RETRY_MAX_S="1",
        LOYALTY_WEBHOOK_RETRY_WINDOW_S=str(RETRY_WINDOW_S),
        LOYALTY_WEBHOOK_TIMEOUT_S=str(TIMEOUT_S),
        LOYALTY_WEBHOOK_CONCURRENCY="6",
        LOYALTY_WEBHOOK_PER_ENDPOINT="3",
        LOYALTY_METRICS_PORT=str(_free_port()),
    )
    procs = PipelineProcesses(env, Path(tmp_path_factory.mktemp("webhooks-logs")))
    _running.append(procs)
    runner = Dispatcher(procs)
    await runner.start()
    yield runner
    for held in [p for p in _running if p.log_dir == procs.log_dir]:
        _running.remove(held)
        held.stop_all()


@pytest.fixture(scope="session")
def quiet_database(stack: Settings) -> Iterator[str]:
    """A migrated database no dispatcher reads: what is queued there stays as the test left
    it (the session's dispatcher would otherwise claim it from the pipeline's database)."""
    with fresh_database(stack.db_url, f"loyalty_webhooks_quiet_{os.getpid()}") as url:
        yield url


@pytest.fixture
async def quiet_sessions(
    stack: Settings, quiet_database: str
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions over the quiet database, its merchants and webhooks emptied first."""
    engine = make_engine(stack, url=asyncpg_url(quiet_database))
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "TRUNCATE webhook_deliveries, webhook_endpoints, merchants RESTART IDENTITY CASCADE"
            )
        )
    yield make_sessionmaker(engine)
    await engine.dispose()


StartReceiver = Callable[[Mode], Receiver]


@pytest.fixture
def start_receiver() -> Iterator[StartReceiver]:
    """Start receivers with ``start_receiver(mode)``; all are stopped after the test."""
    started: list[Receiver] = []

    def start(mode: Mode) -> Receiver:
        receiver = Receiver(mode).start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop()
