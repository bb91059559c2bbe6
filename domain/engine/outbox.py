"""The outbox as the engine writes it and the relay reads it: messages packed per shard.

A transaction's outputs are grouped by (shard, topic) into one row each, already encoded:
``keys`` is a JSON array of the message keys and ``payloads`` the JSON payloads joined by
newlines (compact JSON never holds a raw newline). A batch of 1,000 purchases then writes a
few dozen rows instead of 2,000, and the relay splits bytes instead of reading, decoding and
rewriting a row per message.

A key's messages always share a shard (``shard_of``; the same function in SQL is
``shard_sql``), and one relay at a time owns a shard, so order per key holds with several
relays running: within a row messages keep their order, and rows go out in id order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from domain.engine.conn import Conn

OUTBOX_COLUMNS = ("shard", "topic", "count", "keys", "payloads")

# How many shards the relays share out (``relay``); a message's is ``shard_of`` its key.
OUTBOX_SHARDS = 16

PackRow = tuple[int, str, int, bytes, bytes]


def shard_of(key: str) -> int:
    """The outbox shard of a message key: the first byte of its MD5 (``shard_sql`` in SQL)."""
    return hashlib.md5(key.encode(), usedforsecurity=False).digest()[0] % OUTBOX_SHARDS


def shard_sql(key: str) -> str:
    """``shard_of`` as SQL, over the text expression ``key``."""
    return f"get_byte(decode(md5({key}), 'hex'), 0) % {OUTBOX_SHARDS}"


def pack(messages: Iterable[tuple[str, str, bytes]]) -> list[PackRow]:
    """(topic, key, JSON payload) messages, in order, to outbox rows: one per shard and topic."""
    groups: dict[tuple[int, str], tuple[list[str], list[bytes]]] = {}
    for topic, key, payload in messages:
        if b"\n" in payload:  # only pretty-printed JSON has one; it would split a message
            raise ValueError("an outbox payload must be compact JSON, without a newline")
        group = groups.get((shard_of(key), topic))
        if group is None:
            group = groups[(shard_of(key), topic)] = ([], [])
        group[0].append(key)
        group[1].append(payload)
    return [
        (shard, topic, len(keys), orjson.dumps(keys), b"\n".join(payloads))
        for (shard, topic), (keys, payloads) in groups.items()
    ]


def pack_payloads(messages: Iterable[tuple[str, str, dict[str, Any]]]) -> list[PackRow]:
    """``pack`` for payloads still to be encoded."""
    return pack((topic, key, orjson.dumps(payload)) for topic, key, payload in messages)


def unpack(keys: bytes, payloads: bytes) -> list[tuple[bytes, bytes]]:
    """An outbox row's messages as (key, value) bytes, in order."""
    names: list[str] = orjson.loads(keys)
    values = payloads.split(b"\n")
    if len(names) != len(values):
        raise ValueError(f"outbox row with {len(names)} keys and {len(values)} payloads")
    return [(k.encode(), v) for k, v in zip(names, values, strict=True)]


async def write_packs(conn: Conn, rows: Sequence[PackRow]) -> None:
    """Insert packed rows; the table's trigger wakes the relays at commit (``NOTIFY
    loyalty_outbox``, migration ``outbox notify trigger``)."""
    if rows:
        await conn.copy_records_to_table("outbox", records=rows, columns=OUTBOX_COLUMNS)
