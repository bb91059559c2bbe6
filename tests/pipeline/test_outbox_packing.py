"""The packed outbox: messages go in and come out in order, a key always lands in the same
shard whoever computes it (Python or SQL), and the migration carries unsent rows over."""

from __future__ import annotations

import asyncio
import json
import os
from collections import defaultdict
from datetime import UTC, datetime

import asyncpg
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.settings import Settings
from domain.engine.outbox import pack, shard_of, shard_sql, unpack, write_packs
from loyalty import migrate
from tests.support.db import fresh_database
from tests.support.outbox import outbox_messages

topics = st.sampled_from(["loyalty.results.v1", "loyalty.wallet-updates.v1", "loyalty.dlq.v1"])
keys = st.text(max_size=40)  # DLQ keys are whatever a producer sent, newlines included
payloads = st.dictionaries(st.text(max_size=10), st.text(max_size=30), max_size=4)


@given(st.lists(st.tuples(topics, keys, payloads), max_size=60))
def test_what_is_packed_unpacks_in_order_per_topic_and_key(
    messages: list[tuple[str, str, dict[str, str]]],
) -> None:
    rows = pack((t, k, orjson.dumps(p)) for t, k, p in messages)
    assert sum(r[2] for r in rows) == len(messages)
    got: dict[tuple[str, str], list[object]] = defaultdict(list)
    for shard, topic, count, packed_keys, packed_payloads in rows:
        unpacked = unpack(packed_keys, packed_payloads)
        assert len(unpacked) == count
        for key, value in unpacked:
            assert shard_of(key.decode()) == shard
            got[(topic, key.decode())].append(orjson.loads(value))
    want: dict[tuple[str, str], list[object]] = defaultdict(list)
    for t, k, p in messages:
        want[(t, k)].append(p)
    assert got == want


def test_a_payload_with_a_raw_newline_is_refused() -> None:
    with pytest.raises(ValueError, match="compact JSON"):
        pack([("loyalty.results.v1", "k", json.dumps({"a": 1}, indent=2).encode())])


@settings(max_examples=20, deadline=None)
@given(st.lists(st.text(min_size=0, max_size=30).filter(lambda k: "\x00" not in k), max_size=50))
def test_python_and_sql_put_a_key_in_the_same_shard(database_url: str, keys: list[str]) -> None:
    async def check() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            rows = await conn.fetch(
                f"SELECT k, {shard_sql('k')} AS s FROM unnest($1::text[]) AS u(k)",  # noqa: S608 - no outside input
                keys,
            )
        finally:
            await conn.close()
        assert {r["k"]: r["s"] for r in rows} == {k: shard_of(k) for k in keys}

    asyncio.run(check())


async def test_an_outbox_insert_wakes_the_relays_once_at_its_commit(database_url: str) -> None:
    listener = await asyncpg.connect(database_url)
    writer = await asyncpg.connect(database_url)
    woken: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener("loyalty_outbox", lambda *args: woken.put_nowait(args[2]))
    messages = [("loyalty.results.v1", f"k{i}", b'{"n": 1}') for i in range(3)]
    try:
        async with writer.transaction():
            await write_packs(writer, pack(messages))
            await write_packs(writer, pack(messages))
            await asyncio.sleep(0.3)
            assert woken.empty(), "woken before the commit: the relay would find nothing"
        assert await asyncio.wait_for(woken.get(), 5) == "loyalty_outbox"
        await asyncio.sleep(0.3)
        assert woken.empty(), "two inserts of one transaction wake the relays once"
        tx = writer.transaction()
        await tx.start()
        await write_packs(writer, pack(messages))
        await tx.rollback()
        await asyncio.sleep(0.3)
        assert woken.empty(), "a rolled-back insert woke the relays"
    finally:
        await listener.close()
        await writer.close()


SENT = datetime(2026, 1, 1, tzinfo=UTC)


def test_the_migration_carries_unsent_messages_over_in_order(stack: Settings) -> None:
    async def old_rows(url: str) -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.executemany(
                "INSERT INTO outbox (topic, key, payload, sent_at) VALUES ($1, $2, $3::json, $4)",
                [
                    ("loyalty.wallet-updates.v1", "card-1", '{"version": 1}', None),
                    ("loyalty.results.v1", "e-1", '{\n  "pretty": true\n}', None),
                    ("loyalty.wallet-updates.v1", "card-1", '{"version": 2}', SENT),
                    ("loyalty.wallet-updates.v1", "card-1", '{"version": 3}', None),
                    ("loyalty.wallet-updates.v1", "card\n2", '{"version": 1}', None),
                ],
            )
        finally:
            await conn.close()

    async def new_rows(url: str) -> list[tuple[str, str, dict[str, object]]]:
        conn = await asyncpg.connect(url)
        try:
            return await outbox_messages(conn)
        finally:
            await conn.close()

    with fresh_database(stack.db_url, f"loyalty_outbox_migration_{os.getpid()}") as url:
        migrate.downgrade(url, "a3c1e5f7b9d2")
        asyncio.run(old_rows(url))
        migrate.upgrade(url)
        messages = asyncio.run(new_rows(url))
    by_key: dict[str, list[dict[str, object]]] = defaultdict(list)
    for _, key, payload in messages:
        by_key[key].append(payload)
    # The sent row is not carried over; the pretty-printed one is, as compact JSON.
    assert dict(by_key) == {
        "card-1": [{"version": 1}, {"version": 3}],
        "e-1": [{"pretty": True}],
        "card\n2": [{"version": 1}],
    }
