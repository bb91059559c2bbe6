"""The worker tops a batch up with what reached the broker meanwhile, commits it all, and
rewinds it all when the batch fails.

The consumer and the pipeline are stand-ins here; the pipeline tests run every event through
the real worker, broker and database, top-up included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import IllegalStateError

import consumers.inflight as inflight_module
import consumers.worker as worker_module
from consumers.pipeline import Counts
from consumers.worker import Worker
from core.settings import Settings

TOPIC = "loyalty.purchases.v1"


def _rec(partition: int, offset: int) -> ConsumerRecord[Any, Any]:
    return ConsumerRecord(TOPIC, partition, offset, 0, 0, b"k", b"{}", None, 1, 2, [])


@dataclass
class FakeConsumer:
    """What the worker asks of aiokafka's consumer: ``getmany``, ``seek`` and ``commit``."""

    waiting: list[ConsumerRecord[Any, Any]]
    asked: list[tuple[int, int]] = field(default_factory=list)
    seeks: dict[TopicPartition, int] = field(default_factory=dict)
    commits: list[dict[TopicPartition, int]] = field(default_factory=list)

    async def getmany(
        self, timeout_ms: int, max_records: int
    ) -> dict[TopicPartition, list[ConsumerRecord[Any, Any]]]:
        self.asked.append((timeout_ms, max_records))
        taken, self.waiting = self.waiting[:max_records], self.waiting[max_records:]
        out: dict[TopicPartition, list[ConsumerRecord[Any, Any]]] = {}
        for rec in taken:
            out.setdefault(TopicPartition(rec.topic, rec.partition), []).append(rec)
        return out

    revoked: set[TopicPartition] = field(default_factory=set)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        if tp in self.revoked:
            raise IllegalStateError(f"No current assignment for partition {tp}")
        self.seeks[tp] = offset

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(offsets)


@dataclass
class FakeMessage:
    raw_message: tuple[ConsumerRecord[Any, Any], ...]
    consumer: FakeConsumer
    committed: Any = None


def _worker(max_records: int) -> Worker:
    worker = Worker(
        Settings(database_url="postgresql://nobody@127.0.0.1:1/none", batch_max_records=max_records)
    )
    worker.pool = object()  # type: ignore[assignment]  # the pipeline is a stand-in
    return worker


def _applying(
    monkeypatch: pytest.MonkeyPatch, fail: BaseException | None = None
) -> list[list[tuple[int, int]]]:
    applied: list[list[tuple[int, int]]] = []

    async def apply_records(
        pool: object, records: Sequence[ConsumerRecord[Any, Any]], flow: object = None
    ) -> Counts:
        applied.append([(r.partition, r.offset) for r in records])
        if fail is not None:
            raise fail
        return Counts(applied=len(records))

    monkeypatch.setattr(inflight_module, "apply_records", apply_records)
    monkeypatch.setattr(worker_module, "TRANSIENT_BACKOFF_S", 0.0)
    return applied


async def test_a_batch_takes_what_reached_the_broker_since_and_commits_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    applied = _applying(monkeypatch)
    consumer = FakeConsumer(waiting=[_rec(0, 5), _rec(1, 7), _rec(0, 6)])
    worker = _worker(max_records=4)
    await worker.handle(FakeMessage((_rec(0, 4),), consumer))  # type: ignore[arg-type]
    await worker.settle_commits()

    # Room for three more: asked for at most three, briefly; applied in the consumer's
    # order per partition after the batch's own record.
    assert consumer.asked == [(worker_module.TOP_UP_MS, 3)]
    assert applied == [[(0, 4), (0, 5), (0, 6), (1, 7)]]
    assert consumer.commits == [{TopicPartition(TOPIC, 0): 7, TopicPartition(TOPIC, 1): 8}]


async def test_a_full_batch_does_not_wait_for_more(monkeypatch: pytest.MonkeyPatch) -> None:
    applied = _applying(monkeypatch)
    consumer = FakeConsumer(waiting=[_rec(0, 9)])
    worker = _worker(max_records=2)
    await worker.handle(FakeMessage((_rec(0, 7), _rec(0, 8)), consumer))  # type: ignore[arg-type]
    await worker.settle_commits()
    assert consumer.asked == []
    assert applied == [[(0, 7), (0, 8)]]
    assert consumer.commits == [{TopicPartition(TOPIC, 0): 9}]


@pytest.mark.parametrize("failure", [ConnectionError("database away"), RuntimeError("bug")])
async def test_a_failed_batch_rewinds_the_partitions_it_topped_up(
    monkeypatch: pytest.MonkeyPatch, failure: BaseException
) -> None:
    _applying(monkeypatch, fail=failure)
    consumer = FakeConsumer(waiting=[_rec(0, 5), _rec(2, 11), _rec(2, 12)])
    worker = _worker(max_records=10)
    with pytest.raises(type(failure)):
        await worker.handle(FakeMessage((_rec(0, 4),), consumer))  # type: ignore[arg-type]

    # Partition 2 came only with the top-up: the worker rewinds it (FastStream rewinds the
    # records it handed over, partition 0 to offset 4, after the handler raised).
    assert consumer.seeks == {TopicPartition(TOPIC, 0): 5, TopicPartition(TOPIC, 2): 11}
    assert consumer.commits == []


async def test_a_partition_revoked_meanwhile_is_left_to_its_next_owner(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _applying(monkeypatch, fail=ConnectionError("database away"))
    consumer = FakeConsumer(waiting=[_rec(1, 3), _rec(2, 11)])
    consumer.revoked.add(TopicPartition(TOPIC, 1))
    worker = _worker(max_records=10)
    # The batch's own failure is what FastStream sees, not the seek's.
    with pytest.raises(ConnectionError):
        await worker.handle(FakeMessage((_rec(0, 4),), consumer))  # type: ignore[arg-type]
    assert consumer.seeks == {TopicPartition(TOPIC, 2): 11}
