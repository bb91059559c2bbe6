"""Throw-away Kafka topics, so the stack's tests never touch the contract topics."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from core.settings import Settings
from loyalty.stack import ensure_topics

ScratchTopic = Callable[[int], Awaitable[str]]


@pytest.fixture
async def scratch_topic(stack: Settings) -> AsyncIterator[ScratchTopic]:
    """Creates topics with the given partition count; deletes them after the test."""
    created: list[str] = []

    async def create(partitions: int = 6) -> str:
        name = f"stack-test.{uuid.uuid4().hex[:12]}"
        await ensure_topics(stack.bootstrap, {name: partitions}, replication_factor=1)
        created.append(name)
        return name

    yield create
    if created:
        admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap)
        await admin.start()
        try:
            await admin.delete_topics(created)
        finally:
            await admin.close()
