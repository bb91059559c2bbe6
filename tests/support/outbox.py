"""Reading and writing the packed outbox in tests (``domain.engine.outbox``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import orjson

from domain.engine.outbox import OUTBOX_COLUMNS, pack, unpack


async def outbox_messages(
    conn: asyncpg.Connection, topic: str | None = None, *, unsent_only: bool = False
) -> list[tuple[str, str, dict[str, Any]]]:
    """Every message in the outbox, in order: (topic, key, payload)."""
    rows = await conn.fetch(
        "SELECT topic, keys, payloads FROM outbox"
        " WHERE ($1::text IS NULL OR topic = $1) AND (NOT $2 OR sent_at IS NULL) ORDER BY id",
        topic,
        unsent_only,
    )
    return [
        (r["topic"], key.decode(), orjson.loads(value))
        for r in rows
        for key, value in unpack(r["keys"], r["payloads"])
    ]


async def insert_outbox(
    conn: asyncpg.Connection,
    messages: list[tuple[str, str, dict[str, Any]]],
    *,
    created_at: datetime | None = None,
) -> None:
    """Queue (topic, key, payload) messages as a writer of the engine would."""
    rows = pack((topic, key, orjson.dumps(payload)) for topic, key, payload in messages)
    await conn.copy_records_to_table("outbox", records=rows, columns=OUTBOX_COLUMNS)
    if created_at is not None:
        await conn.execute(
            "UPDATE outbox SET created_at = $1 WHERE sent_at IS NULL AND created_at > $1",
            created_at,
        )
