"""The local broker does what the engine relies on: idempotent producers, consumer groups."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import defaultdict

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from core.settings import Settings
from loyalty.stack import wanted_topics
from tests.stack.conftest import ScratchTopic
from tests.stack.kafka_helpers import WITHIN_S, consume, produce


async def test_every_contract_topic_exists_with_its_partitions(stack: Settings) -> None:
    wanted = wanted_topics(stack)
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(list(wanted))
    finally:
        await admin.close()

    found = {t["topic"]: len(t["partitions"]) for t in described if t["error_code"] == 0}
    assert found == wanted
    assert min(found.values()) >= 6


async def test_an_idempotent_producer_reaches_a_consumer_group_once_and_in_key_order(
    stack: Settings, scratch_topic: ScratchTopic
) -> None:
    topic = await scratch_topic(6)
    sent = [(f"card-{seq % 5}", seq) for seq in range(50)]
    await produce(
        stack.bootstrap,
        topic,
        ((key.encode(), json.dumps({"seq": seq}).encode(), None) for key, seq in sent),
    )

    group = f"stack-test-{uuid.uuid4().hex[:8]}"
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=stack.bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        records = await consume(consumer, len(sent))
        await consumer.commit()
        partitions = [TopicPartition(topic, p) for p in range(6)]
        log_end = await consumer.end_offsets(partitions)
        committed = {tp: await consumer.committed(tp) for tp in partitions}
    finally:
        await consumer.stop()

    by_key: dict[str, list[int]] = defaultdict(list)
    for record in records:
        by_key[record.key.decode()].append(json.loads(record.value)["seq"])
    expected: dict[str, list[int]] = defaultdict(list)
    for key, seq in sent:
        expected[key].append(seq)
    # Each key keeps its order (one partition per key), and nothing came twice.
    assert by_key == expected
    # The log holds each message once, and the group's offsets cover all of them.
    assert sum(log_end.values()) == len(sent)
    assert {tp: committed[tp] for tp in partitions} == {tp: log_end[tp] for tp in partitions}


async def test_two_consumers_of_one_group_split_the_partitions(
    stack: Settings, scratch_topic: ScratchTopic
) -> None:
    topic = await scratch_topic(6)
    group = f"stack-test-{uuid.uuid4().hex[:8]}"
    first, second = (
        AIOKafkaConsumer(
            topic,
            bootstrap_servers=stack.bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
        )
        for _ in range(2)
    )
    await first.start()
    await second.start()
    try:
        async with asyncio.timeout(WITHIN_S):
            while True:
                mine, theirs = first.assignment(), second.assignment()
                if mine and theirs and len(mine | theirs) == 6 and not mine & theirs:
                    break
                # Polling keeps both members in the group while it rebalances.
                await asyncio.gather(first.getmany(timeout_ms=200), second.getmany(timeout_ms=200))

        # Ten messages per partition: each member gets those of its own partitions only.
        await produce(
            stack.bootstrap,
            topic,
            ((None, f"message-{n}".encode(), n % 6) for n in range(60)),
        )
        got_first, got_second = await _consume_split(first, second, 60)
    finally:
        await first.stop()
        await second.stop()

    assert {r.partition for r in got_first} <= {tp.partition for tp in mine}
    assert {r.partition for r in got_second} <= {tp.partition for tp in theirs}
    assert len(got_first) == 10 * len(mine)
    assert len(got_second) == 10 * len(theirs)


async def _consume_split(
    first: AIOKafkaConsumer, second: AIOKafkaConsumer, count: int
) -> tuple[list[ConsumerRecord], list[ConsumerRecord]]:
    got: tuple[list[ConsumerRecord], list[ConsumerRecord]] = ([], [])
    async with asyncio.timeout(WITHIN_S):
        while len(got[0]) + len(got[1]) < count:
            batches = await asyncio.gather(
                first.getmany(timeout_ms=200), second.getmany(timeout_ms=200)
            )
            for mine, batch in zip(got, batches, strict=True):
                for records in batch.values():
                    mine.extend(records)
    return got
