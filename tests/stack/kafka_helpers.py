"""Small helpers for the broker tests: produce with an idempotent producer, consume a count."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

# Generous: a wait that ends early is no signal of speed, only of a hang.
WITHIN_S = 60.0


async def produce(
    bootstrap: str, topic: str, messages: Iterable[tuple[bytes | None, bytes, int | None]]
) -> None:
    """Publish every ``(key, value, partition)`` through one idempotent producer, then flush.

    A partition of ``None`` lets the producer choose by key, as the engine's producers do.
    """
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for key, value, partition in messages:
            await producer.send(topic, key=key, value=value, partition=partition)
        await producer.flush()
    finally:
        await producer.stop()


async def consume(consumer: AIOKafkaConsumer, count: int) -> list[ConsumerRecord]:
    """The next ``count`` records of ``consumer``; fails when they do not come."""
    records: list[ConsumerRecord] = []
    async with asyncio.timeout(WITHIN_S):
        while len(records) < count:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
    return records
