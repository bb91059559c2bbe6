"""A running pipeline (real worker and relay processes, real Kafka and PostgreSQL) per session.

Tests seed merchants with unique codes (``tests.support.seed``) instead of emptying tables,
because the worker and relay keep running across tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.settings import Settings
from domain.db import make_sessionmaker
from tests.support.pipeline import (
    INPUT_TOPIC_NAMES,
    Bus,
    PipelineProcesses,
    alive,
    pipeline_env,
    position_group_at_end,
)


@pytest.fixture(scope="session")
def pipeline_processes(
    stack: Settings, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PipelineProcesses]:
    """Worker and relay processes for the whole session; tests may kill and restart them."""
    env = pipeline_env(stack, database_url)
    asyncio.run(
        position_group_at_end(stack.bootstrap, env["LOYALTY_CONSUMER_GROUP"], INPUT_TOPIC_NAMES)
    )
    procs = PipelineProcesses(env, Path(tmp_path_factory.mktemp("pipeline-logs")))
    procs.start_worker()
    procs.start_relay()
    _running.append(procs)
    yield procs
    _running.remove(procs)
    procs.stop_all()


@pytest.fixture
def pipeline(pipeline_processes: PipelineProcesses) -> Iterator[PipelineProcesses]:
    """The session's processes, given back with one worker and one relay running."""
    yield pipeline_processes
    for name in [n for n in pipeline_processes.procs if n not in ("worker", "relay")]:
        pipeline_processes.stop(name)
    if not alive(pipeline_processes, "worker"):
        pipeline_processes.procs.pop("worker", None)
        pipeline_processes.start_worker()
    if not alive(pipeline_processes, "relay"):
        pipeline_processes.procs.pop("relay", None)
        pipeline_processes.start_relay()


_running: list[PipelineProcesses] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test's report ends with what the pipeline's processes logged last."""
    report = yield
    if report.failed and call.when == "call":
        for procs in _running:
            for log in sorted(procs.log_dir.glob("*.log")):
                report.sections.append((f"{log.stem} log (end)", procs.log(log.stem)[-6000:]))
    return report


@pytest.fixture(scope="session")
async def bus(
    stack: Settings, database_url: str, pipeline_processes: PipelineProcesses
) -> AsyncIterator[Bus]:
    """Publishes inputs and collects this session's results, wallet updates and dead letters."""
    bus = Bus(stack.bootstrap, database_url)
    await bus.start()
    await bus.wait_ready()
    yield bus
    await bus.stop()


@pytest.fixture(scope="session")
def sessions(db_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions on the pipeline's database (not emptied between tests)."""
    return make_sessionmaker(db_engine)
