"""Faults in the middle of a load: every input is still answered exactly once, the audit clean.

Each test feeds a load of a few thousand events (``tests.pipeline.load``), injects its fault
while the pipeline is busy with it, lets the rest of the load in, and checks exactly-once
results, ordered wallet versions and a clean audit. The session's worker and relay are the
ones under test; a test that stops one starts it again, so the tests after it find them.
The broker and database restarts stop the stack shared by every test session: they run last.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import AsyncIterator
from typing import Literal

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.settings import Settings
from loyalty.stack import LocalStack
from tests.pipeline.load import (
    Load,
    check_exactly_once,
    prepare_load,
    publish,
    wait_answered,
    wait_complete,
)
from tests.pipeline.stories import enrolment, key_of, topic_of
from tests.support.pipeline import (
    Bus,
    PipelineProcesses,
    alive,
    handled_events,
    stop,
    wait_log,
)
from tests.support.seed import unique_code

Sessions = async_sessionmaker[AsyncSession]


class Feeder:
    """Publishes a load in chunks, paced, holding its last part back until ``release``."""

    def __init__(self, bus: Bus, load: Load, chunks: int, held_back: int, pace_s: float) -> None:
        self.bus = bus
        self.parts = load.chunks(chunks)
        self.held_back = held_back
        self.pace_s = pace_s
        self.released = asyncio.Event()
        self.published: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        for i, part in enumerate(self.parts):
            if i == len(self.parts) - self.held_back:
                await self.released.wait()
            await publish(self.bus, part)
            self.published.update(m["event_id"] for m in part)
            await asyncio.sleep(self.pace_s)  # pacing only: the load spreads over the fault

    def release(self) -> None:
        """Let the held-back part of the load go."""
        self.released.set()

    async def done(self) -> None:
        """Wait until everything is published."""
        self.release()
        assert self._task is not None
        await self._task

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Feeder]:
        """Feed in the background for the duration of the block."""
        self._task = asyncio.create_task(self._run())
        try:
            yield self
        finally:
            if not self._task.done():
                self.release()
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(self._task, 120)


async def test_a_rebalance_in_the_middle_of_a_load_loses_and_doubles_nothing(
    bus: Bus, sessions: Sessions, pipeline: PipelineProcesses, database_url: str
) -> None:
    load = await prepare_load(bus, sessions)
    async with Feeder(bus, load, chunks=40, held_back=10, pace_s=0.25).running() as feeder:
        pipeline.start_worker("worker-2")
        # Its partitions come from the first worker, which is busy with the load meanwhile.
        await wait_log(pipeline, "worker-2", "assigned to partitions")
        await wait_answered(bus, feeder.published, len(feeder.published) // 2, 120)
        assert await stop(pipeline, "worker") == 0  # leaves: everything moves to worker-2
        await feeder.done()
    await wait_complete(bus, load, database_url)
    await check_exactly_once(bus, load, database_url)
    # Both took part: the second worker answered events too before the test ends.
    pipeline.start_worker()
    await wait_log(pipeline, "worker", "assigned to partitions")
    assert await stop(pipeline, "worker-2") == 0
    assert handled_events(pipeline.log("worker-2")) > 0


async def test_a_worker_killed_mid_batch_and_restarted_loses_and_doubles_nothing(
    bus: Bus, sessions: Sessions, pipeline: PipelineProcesses, database_url: str
) -> None:
    load = await prepare_load(bus, sessions)
    async with Feeder(bus, load, chunks=40, held_back=20, pace_s=0.1).running() as feeder:
        await wait_answered(bus, feeder.published, 300, 120)
        await stop(pipeline, "worker", signal.SIGKILL)  # no offsets committed, no goodbye
        pipeline.start_worker()
        await feeder.done()
    await wait_complete(bus, load, database_url)
    await check_exactly_once(bus, load, database_url)


async def test_a_relay_killed_mid_publish_repeats_results_but_never_forks_them(
    bus: Bus, sessions: Sessions, pipeline: PipelineProcesses, database_url: str
) -> None:
    load = await prepare_load(bus, sessions)
    async with Feeder(bus, load, chunks=40, held_back=20, pace_s=0.1).running() as feeder:
        await wait_answered(bus, feeder.published, 300, 120)
        await stop(pipeline, "relay", signal.SIGKILL)  # published, perhaps not marked sent
        pipeline.start_relay()
        await feeder.done()
    await wait_complete(bus, load, database_url)
    await check_exactly_once(bus, load, database_url)


@pytest.mark.restarts_stack
async def test_a_broker_restart_during_a_load_loses_and_doubles_nothing(
    bus: Bus,
    sessions: Sessions,
    pipeline: PipelineProcesses,
    local_stack: LocalStack,
    database_url: str,
) -> None:
    await _restart_during_load(bus, sessions, pipeline, local_stack, database_url, "kafka")


@pytest.mark.restarts_stack
async def test_a_database_restart_during_a_load_loses_and_doubles_nothing(
    bus: Bus,
    sessions: Sessions,
    pipeline: PipelineProcesses,
    local_stack: LocalStack,
    database_url: str,
) -> None:
    await _restart_during_load(bus, sessions, pipeline, local_stack, database_url, "postgres")


async def _restart_during_load(
    bus: Bus,
    sessions: Sessions,
    pipeline: PipelineProcesses,
    local_stack: LocalStack,
    database_url: str,
    service: Literal["kafka", "postgres"],
) -> None:
    if not (local_stack.settings.uses_local_kafka and local_stack.settings.uses_local_database):
        pytest.fail("the restart tests need the local stack (external services are not ours)")
    load = await prepare_load(bus, sessions)
    # Nothing is published while the service is down: the load's first half is in flight
    # (being applied, its outputs relayed) when it goes, the second half comes after.
    async with Feeder(bus, load, chunks=2, held_back=1, pace_s=0).running() as feeder:
        await wait_answered(bus, feeder.published, 1, 120)
        await asyncio.to_thread(local_stack.restart, service)
        await feeder.done()
    await wait_complete(bus, load, database_url)
    await check_exactly_once(bus, load, database_url)
    # The session's own processes rode it out: none of them was restarted by the test.
    assert alive(pipeline, "worker") and alive(pipeline, "relay")


async def test_a_worker_stopped_with_sigterm_has_committed_the_offsets_of_what_it_applied(
    bus: Bus, pipeline: PipelineProcesses, stack: Settings
) -> None:
    # The worker commits offsets in the background after each batch's database commit; the
    # group must still end up past every record it answered, or a restart would redo work.
    store = unique_code("nowhere")
    messages = [enrolment(store) for _ in range(30)]
    assert bus.producer is not None
    sent = [
        await bus.producer.send_and_wait(
            topic_of(m).value, json.dumps(m).encode(), key=key_of(m).encode()
        )
        for m in messages
    ]
    await bus.wait_results([m["event_id"] for m in messages])
    assert await stop(pipeline, "worker") == 0
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(pipeline.env["LOYALTY_CONSUMER_GROUP"])
    finally:
        await admin.close()
    for meta in sent:
        tp = TopicPartition(meta.topic, meta.partition)
        assert tp in committed and committed[tp].offset > meta.offset, (tp, committed.get(tp))
