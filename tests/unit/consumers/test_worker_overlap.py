"""The worker starts a batch while the batch before is still being written and committed
(``consumers.inflight``): offsets follow the commits in order, and a batch that fails late
is read again, with the batch after it.

The consumer and the pipeline are stand-ins here (the pipeline honours the engine's protocol:
its rules are done only once the batch before committed); the pipeline and fault tests run
every event through the real worker, broker and database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from faststream.message import AckStatus

import consumers.inflight as inflight_module
from consumers.pipeline import Counts
from consumers.worker import Worker
from domain.engine.batch import Flow
from domain.engine.overlap import BatchKeys
from tests.unit.consumers.test_worker_top_up import TOPIC, FakeConsumer, FakeMessage, _rec
from tests.unit.consumers.test_worker_top_up import _worker as _plain_worker


class Pipeline:
    """``apply_records`` as the worker sees it: decides, then commits when the test says."""

    def __init__(self) -> None:
        self.started: list[int] = []
        self.followed: list[bool] = []  # whether each batch had one in flight before it
        self.alone: list[bool] = []  # whether each batch ran without a flow (no overlap)
        self.gates: dict[int, asyncio.Future[bool]] = {}

    def gate(self, first: int) -> asyncio.Future[bool]:
        if first not in self.gates:
            self.gates[first] = asyncio.get_running_loop().create_future()
        return self.gates[first]

    def commit(self, first: int, *, ok: bool = True) -> None:
        self.gate(first).set_result(ok)

    async def __call__(
        self, pool: object, records: Sequence[ConsumerRecord[Any, Any]], flow: Flow | None = None
    ) -> Counts:
        first = records[0].offset
        self.started.append(first)
        self.followed.append(flow is not None and flow.previous is not None)
        self.alone.append(flow is None)
        if flow is not None and flow.previous is not None:
            await flow.previous.committed()
        if flow is not None and flow.decided is not None:
            flow.decided(BatchKeys())
        if not await self.gate(first):
            raise RuntimeError("the commit failed")
        return Counts(applied=len(records))


@pytest.fixture
def pipeline(monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    fake = Pipeline()
    monkeypatch.setattr(inflight_module, "apply_records", fake)
    return fake


async def _settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


def _worker(max_records: int) -> Worker:
    worker = _plain_worker(max_records)
    worker.settings = worker.settings.model_copy(update={"batch_overlap": True})
    return worker


async def _handled(worker: Worker, msg: FakeMessage) -> None:
    # Bounded: a handler that waited for a commit the test has not released would hang.
    await asyncio.wait_for(worker.handle(msg), 5)  # type: ignore[arg-type]


def _msg(consumer: FakeConsumer, *offsets: int) -> FakeMessage:
    return FakeMessage(tuple(_rec(0, o) for o in offsets), consumer)


async def test_the_next_batch_starts_before_the_batch_before_commits(pipeline: Pipeline) -> None:
    consumer = FakeConsumer(waiting=[])
    worker = _worker(max_records=2)
    await _handled(worker, _msg(consumer, 0, 1))
    await _settle()
    assert consumer.commits == []  # not committed yet: no offset either

    second = asyncio.ensure_future(worker.handle(_msg(consumer, 2, 3)))  # type: ignore[arg-type]
    await _settle()
    assert pipeline.started == [0, 2]  # started while the first commits
    assert pipeline.followed == [False, True]
    assert not second.done()  # its rules wait for that commit
    pipeline.commit(0)
    await asyncio.wait_for(second, 5)
    await _settle()
    assert consumer.commits == [{TopicPartition(TOPIC, 0): 2}]

    pipeline.commit(2)
    await worker.settle_commits()
    assert consumer.commits[-1] == {TopicPartition(TOPIC, 0): 4}
    assert worker.totals.applied == 4


async def test_when_the_batch_before_fails_both_are_read_again(pipeline: Pipeline) -> None:
    consumer = FakeConsumer(waiting=[])
    worker = _worker(max_records=2)
    await _handled(worker, _msg(consumer, 0, 1))
    second = _msg(consumer, 2, 3)
    handling = asyncio.ensure_future(worker.handle(second))  # type: ignore[arg-type]
    await _settle()
    pipeline.commit(0, ok=False)
    await asyncio.wait_for(
        handling, 5
    )  # no error for FastStream: it would seek to this batch's offsets only

    assert consumer.seeks == {TopicPartition(TOPIC, 0): 0}
    assert second.committed == AckStatus.ACKED
    await worker.settle_commits()
    assert consumer.commits == []

    # Read again from offset 0, as the next batch: applied alone (its retries and fallback
    # wait for no batch beside it), committed.
    pipeline.gates.pop(0)
    again = asyncio.ensure_future(worker.handle(_msg(consumer, 0, 1)))  # type: ignore[arg-type]
    await _settle()
    assert not again.done()  # alone, it ends with its own commit
    pipeline.commit(0)
    await asyncio.wait_for(again, 5)
    await worker.settle_commits()
    assert consumer.commits == [{TopicPartition(TOPIC, 0): 2}]
    assert pipeline.alone == [False, False, True]

    # The batch after it overlaps again.
    await _handled(worker, _msg(consumer, 2, 3))
    assert pipeline.alone[-1] is False


async def _idle_after_a_late_failure(pipeline: Pipeline) -> tuple[FakeConsumer, Worker]:
    """A worker whose batch (offsets 5-6) failed after its rules, with no batch after it:
    it has rewound that batch on its own."""
    consumer = FakeConsumer(waiting=[])
    worker = _worker(max_records=2)
    await _handled(worker, _msg(consumer, 5, 6))
    pipeline.commit(5, ok=False)
    await worker.settle_commits()
    await _settle()
    assert consumer.seeks == {TopicPartition(TOPIC, 0): 5}  # rewound, the worker idle
    return consumer, worker


async def test_an_idle_worker_rewinds_a_batch_that_fails_after_its_rules(
    pipeline: Pipeline,
) -> None:
    consumer, worker = await _idle_after_a_late_failure(pipeline)
    assert consumer.commits == []
    # Read again (the first batch handled after the rewind may have been fetched before
    # it: it is rewound too, unapplied), then applied alone.
    pipeline.gates.pop(5)
    pipeline.commit(5)
    await _handled(worker, _msg(consumer, 5, 6))
    await _handled(worker, _msg(consumer, 5, 6))
    assert pipeline.alone == [False, True]


async def test_without_overlap_a_batch_ends_with_its_commit(pipeline: Pipeline) -> None:
    consumer = FakeConsumer(waiting=[])
    worker = _worker(max_records=2)
    worker.settings = worker.settings.model_copy(update={"batch_overlap": False})
    handling = asyncio.ensure_future(worker.handle(_msg(consumer, 0, 1)))  # type: ignore[arg-type]
    await _settle()
    assert not handling.done()
    pipeline.commit(0)
    await asyncio.wait_for(handling, 5)
    await worker.settle_commits()
    assert consumer.commits == [{TopicPartition(TOPIC, 0): 2}]


async def test_a_batch_that_ended_without_deciding_makes_the_next_one_wait_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Dead letters only, or applied one by one after an error: no keys were handed over.
    async def apply_records(pool: object, records: object, flow: Flow | None = None) -> Counts:
        return Counts(dead_lettered=1)

    monkeypatch.setattr(inflight_module, "apply_records", apply_records)
    run = inflight_module.InFlight(object(), [_rec(0, 1)], None)  # type: ignore[arg-type]
    await run.decided()
    assert run.keys.exclusive


async def test_a_batch_that_is_not_full_waits_for_the_batch_before(pipeline: Pipeline) -> None:
    consumer = FakeConsumer(waiting=[])
    worker = _worker(max_records=2)
    await _handled(worker, _msg(consumer, 0, 1))  # full: overlaps
    handling = asyncio.ensure_future(worker.handle(_msg(consumer, 2)))  # type: ignore[arg-type]
    await _settle()
    assert pipeline.started == [0]  # not started until the batch before committed
    pipeline.commit(0)
    await _settle()
    assert pipeline.started == [0, 2]
    assert not handling.done()  # and, alone, it ends with its own commit
    pipeline.commit(2)
    await asyncio.wait_for(handling, 5)
    await worker.settle_commits()
    assert consumer.commits == [{TopicPartition(TOPIC, 0): 2}, {TopicPartition(TOPIC, 0): 3}]


async def test_a_batch_fetched_before_an_idle_rewind_is_not_applied_ahead_of_it(
    pipeline: Pipeline,
) -> None:
    consumer, worker = await _idle_after_a_late_failure(pipeline)
    # The next batch had been fetched before that rewind: applying it would put offsets 7-8
    # ahead of 5-6. It is dropped, and both are read again.
    consumer.seeks.clear()
    later = _msg(consumer, 7, 8)
    await _handled(worker, later)
    assert pipeline.started == [5]
    assert consumer.seeks == {TopicPartition(TOPIC, 0): 5}
    assert later.committed == AckStatus.ACKED


async def test_a_batch_after_one_that_has_committed_runs_alone(pipeline: Pipeline) -> None:
    consumer = FakeConsumer(waiting=[])
    worker = _worker(max_records=2)
    await _handled(worker, _msg(consumer, 0, 1))
    pipeline.commit(0)
    await worker.settle_commits()
    pipeline.commit(2)
    await _handled(worker, _msg(consumer, 2, 3))
    await worker.settle_commits()
    # Nothing to split against: the first had committed when the second started.
    assert pipeline.followed == [False, False]
    assert len(consumer.commits) == 2
