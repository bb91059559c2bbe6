"""The stack manager against the real test stack: idempotent `up`, data kept across restarts."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer

from core.settings import Settings, with_database
from loyalty.stack import LocalStack
from tests.stack.conftest import ScratchTopic
from tests.stack.kafka_helpers import consume, produce


def test_up_again_keeps_the_running_processes(local_stack: LocalStack) -> None:
    before = local_stack.status()
    after = local_stack.up()

    assert after.running
    assert (after.postgres.pid, after.kafka.pid) == (before.postgres.pid, before.kafka.pid)


def test_status_json_prints_the_contract_urls_and_that_the_stack_runs(stack: Settings) -> None:
    # The console script itself, in a process of its own, as people and scripts call it.
    loyalty = Path(sys.executable).with_name("loyalty")
    result = subprocess.run(
        [str(loyalty), "stack", "status", "--json"], capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert {k: printed[k] for k in ("kafka_bootstrap", "database_url", "admin_url")} == {
        "kafka_bootstrap": stack.bootstrap,
        "database_url": stack.db_url,
        "admin_url": stack.admin_url,
    }
    assert printed["running"] is True
    assert {name: s["running"] for name, s in printed["services"].items()} == {
        "postgres": True,
        "kafka": True,
    }


@pytest.mark.restarts_stack
async def test_data_survives_down_and_up(
    local_stack: LocalStack, stack: Settings, scratch_topic: ScratchTopic
) -> None:
    if not (stack.uses_local_database and stack.uses_local_kafka):
        pytest.skip("external services are not this stack's to restart")
    marker = uuid.uuid4().hex
    topic = await scratch_topic(6)
    check_db = "stack_restart_check"
    server = await asyncpg.connect(with_database(stack.db_url, "postgres"))
    try:
        await server.execute(f"DROP DATABASE IF EXISTS {check_db}")
        await server.execute(f"CREATE DATABASE {check_db}")
    finally:
        await server.close()
    db_url = with_database(stack.db_url, check_db)
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute("CREATE TABLE kept (note text NOT NULL)")
        await conn.execute("INSERT INTO kept VALUES ($1)", marker)
    finally:
        await conn.close()
    await produce(stack.bootstrap, topic, [(b"restart", marker.encode(), None)])
    before = local_stack.status()

    stopped = await asyncio.to_thread(local_stack.down)
    assert (stopped.postgres.state, stopped.kafka.state) == ("stopped", "stopped")
    started = await asyncio.to_thread(local_stack.up)
    assert started.running
    assert started.kafka.pid != before.kafka.pid
    assert started.postgres.pid != before.postgres.pid

    conn = await asyncpg.connect(db_url)
    try:
        assert await conn.fetchval("SELECT note FROM kept") == marker
    finally:
        await conn.close()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=stack.bootstrap,
        group_id=f"stack-test-{marker[:8]}",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        [record] = await consume(consumer, 1)
    finally:
        await consumer.stop()
    assert (record.key, record.value) == (b"restart", marker.encode())

    server = await asyncpg.connect(with_database(stack.db_url, "postgres"))
    try:
        await server.execute(f"DROP DATABASE {check_db}")
    finally:
        await server.close()
