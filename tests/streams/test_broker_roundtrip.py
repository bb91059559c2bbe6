"""A message built from the models survives the real Kafka of the test stack unchanged."""

from __future__ import annotations

import asyncio
from uuid import uuid4

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from core.settings import Settings
from streams.broker import consumer_config, make_broker
from streams.messages import PurchaseCompleted
from streams.parsing import parse_input, record_for
from streams.topics import Topic
from tests.unit.streams import samples


async def test_a_purchase_goes_through_kafka_and_reads_back_equal(stack: Settings) -> None:
    # The contract's topics belong to the engine under test; a throw-away topic keeps this
    # test from feeding its workers.
    topic = f"test.streams.roundtrip.{uuid4().hex}"
    purchase = PurchaseCompleted.model_validate({**samples.purchase(), "event_id": str(uuid4())})
    record = record_for(purchase)
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap, client_id="loyalty-test")
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])

        async with make_broker(stack, role="test") as broker:
            await broker.publish(record.value, topic=topic, key=record.key)

        consumer = AIOKafkaConsumer(
            topic, **consumer_config(stack, "test", group_id=f"test-{uuid4().hex}")
        )
        await consumer.start()
        try:
            received = await asyncio.wait_for(consumer.getone(), timeout=60)
        finally:
            await consumer.stop()
    finally:
        await admin.delete_topics([topic])
        await admin.close()

    assert received.key == b"AB12-CD34-EF56"
    assert received.value == record.value
    assert parse_input(Topic.PURCHASES, received.value) == purchase
