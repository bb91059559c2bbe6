"""A worker and a relay of their own, serving their ops ports, over a database of their own.

The processes run with ``LOYALTY_METRICS_PORT=0`` (any free port) and are found through the
files they register under the stack folder, as ``loyalty stack status`` finds them. Their
database is not the session's: a second consumer group on the session's database would
apply the other tests' events before the session's own worker does.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.settings import Settings
from domain.db import make_engine, make_sessionmaker
from tests.support.db import fresh_database
from tests.support.pipeline import (
    INPUT_TOPIC_NAMES,
    Bus,
    PipelineProcesses,
    pipeline_env,
    position_group_at_end,
)


@pytest.fixture(scope="session")
def ops_database(stack: Settings) -> Iterator[str]:
    """A migrated database for the ops processes only."""
    with fresh_database(stack.db_url, f"loyalty_test_{os.getpid()}_ops") as url:
        yield url


@pytest.fixture(scope="session")
def ops_processes(
    stack: Settings, ops_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PipelineProcesses]:
    """A worker and a relay (``worker``, ``relay``), each on a free ops port."""
    env = pipeline_env(stack, ops_database, group=f"test-ops-{uuid.uuid4().hex[:8]}")
    env["LOYALTY_METRICS_PORT"] = "0"
    # Two batches in flight once batches are full (50 records): its test sends more.
    env["LOYALTY_BATCH_OVERLAP"] = "true"
    env["LOYALTY_BATCH_MAX_RECORDS"] = "50"
    asyncio.run(
        position_group_at_end(stack.bootstrap, env["LOYALTY_CONSUMER_GROUP"], INPUT_TOPIC_NAMES)
    )
    procs = PipelineProcesses(env, Path(tmp_path_factory.mktemp("ops-logs")))
    procs.start_worker()
    procs.start_relay()
    _running.append(procs)
    yield procs
    _running.remove(procs)
    procs.stop_all()


_running: list[PipelineProcesses] = []


@pytest.fixture(scope="session")
async def ops_bus(
    stack: Settings, ops_database: str, ops_processes: PipelineProcesses
) -> AsyncIterator[Bus]:
    """Publishes inputs and collects the outputs of the ops processes' engine."""
    bus = Bus(stack.bootstrap, ops_database)
    await bus.start()
    await bus.wait_ready()
    yield bus
    await bus.stop()


@pytest.fixture(scope="session")
async def ops_sessions(
    ops_database: str, stack: Settings
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the ops processes' database."""
    engine = make_engine(stack, url=ops_database.replace("postgresql://", "postgresql+asyncpg://"))
    yield make_sessionmaker(engine)
    await engine.dispose()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test's report ends with what the ops processes logged last."""
    report = yield
    if report.failed and call.when == "call":
        for procs in _running:
            for log in sorted(procs.log_dir.glob("*.log")):
                report.sections.append((f"ops {log.stem} log (end)", procs.log(log.stem)[-6000:]))
    return report
