"""The statistics stay exact when the engine sums its own batches' ledger totals.

A random workload (enrolments, purchases, returns, redemptions, expiry runs) for a merchant in a
random time zone, applied through the engine in random batches and write-ahead chunks; then
the daily totals and card counts must equal a rebuild from the ledger and the cards
(``stats_rebuild``, the SQL every figure of the statistics comes from)."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from domain.engine import batch
from domain.engine.batch import process_batch
from tests.domain.test_ledger_properties import _events, _seed, history

ZONES = ["Europe/Luxembourg", "America/New_York", "Asia/Tokyo", "Pacific/Chatham", "UTC"]

_TOTALS = """
SELECT t.* FROM ledger_daily_totals t JOIN merchants m ON m.id = t.merchant_id
WHERE m.code = $1 ORDER BY merchant_id, program_id, store_id, day
"""
_CREATED = """
SELECT c.merchant_id, c.program_id, c.store_id, c.day, c.cards_created, c.active_cards_created
FROM card_daily_counts c JOIN merchants m ON m.id = c.merchant_id
WHERE m.code = $1 AND (cards_created, active_cards_created) <> (0, 0)
ORDER BY merchant_id, program_id, store_id, day
"""
# Last-activity counts as the statistics read them: summed over the 30 days up to a day (a
# count on a day further back may be left behind when a card comes back after months).
_RECENT = """
SELECT c.merchant_id, c.program_id, c.store_id, sum(c.last_active_cards)
FROM card_daily_counts c JOIN merchants m ON m.id = c.merchant_id
WHERE m.code = $1 AND c.day > $2::date - 30 AND c.day <= $2::date
GROUP BY 1, 2, 3 HAVING sum(c.last_active_cards) <> 0
ORDER BY 1, 2, 3
"""


async def _summaries(conn: asyncpg.Connection, code: str) -> list[list[Any]]:
    last = await conn.fetchval(
        "SELECT max((l.occurred_at AT TIME ZONE m.timezone)::date) FROM ledger_entries l"
        " JOIN merchants m ON m.id = l.merchant_id WHERE m.code = $1",
        code,
    )
    parts = [await conn.fetch(_TOTALS, code), await conn.fetch(_CREATED, code)]
    if last is not None:
        for days in (1, 10, 29):
            parts.append(await conn.fetch(_RECENT, code, last + timedelta(days=days)))
    return [[tuple(r) for r in part] for part in parts]


async def _run(
    database_url: str,
    steps: list[tuple[tuple[Any, ...], int]],
    cuts: list[int],
    zone: str,
    chunk: int,
    pending_days: int = 0,
) -> None:
    code = f"r{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(database_url)
    saved = batch.WRITE_CHUNK, batch.WRITE_CHUNKS
    batch.WRITE_CHUNK, batch.WRITE_CHUNKS = chunk, 10**9
    try:
        store = await _seed(conn, code)
        await conn.execute("UPDATE merchants SET timezone = $2 WHERE code = $1", code, zone)
        await conn.execute(
            "UPDATE loyalty_programs p SET pending_days = $2 FROM merchants m"
            " WHERE m.id = p.merchant_id AND m.code = $1",
            code,
            pending_days,
        )
        events = _events(code, store, steps)
        bounds = sorted({0, len(events), *(c % (len(events) + 1) for c in cuts)})
        for start, end in itertools.pairwise(bounds):
            async with conn.transaction():
                await process_batch(conn, events[start:end], datetime.now(UTC))
        kept = await _summaries(conn, code)
        merchant_id = await conn.fetchval("SELECT id FROM merchants WHERE code = $1", code)
        async with conn.transaction():
            await conn.execute("SELECT stats_rebuild($1)", merchant_id)
            rebuilt = await _summaries(conn, code)
        assert kept == rebuilt
        entries = await conn.fetchval(
            "SELECT count(*) FROM ledger_entries WHERE merchant_id = $1", merchant_id
        )
        assert sum(row[4] for row in kept[0]) == entries  # the "entries" column counts them all
    finally:
        batch.WRITE_CHUNK, batch.WRITE_CHUNKS = saved
        await conn.close()


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Pending points earned, half returned while pending, the rest released by a daily run.
@example(
    steps=[
        (("enrol", 0), 0),
        (("purchase", 0, 3000, 1), 10),
        (("purchase", 0, 2000, 1), 10),
        (("return", 1, 1000), 60),
        (("expire", 0), 60 * 24 * 2),
    ],
    cuts=[2, 4],
    zone="Europe/Luxembourg",
    chunk=1,
    pending_days=1,
)
@given(
    steps=history,
    cuts=st.lists(st.integers(0, 40), max_size=4),
    zone=st.sampled_from(ZONES),
    chunk=st.integers(1, 8),
    pending_days=st.sampled_from([0, 0, 1]),  # pending points: issued where earned (7.2)
)
def test_the_engines_totals_equal_a_rebuild_from_the_ledger(
    database_url: str,
    steps: list[tuple[tuple[Any, ...], int]],
    cuts: list[int],
    zone: str,
    chunk: int,
    pending_days: int,
) -> None:
    asyncio.run(_run(database_url, steps, cuts, zone, chunk, pending_days))


def test_a_batch_leaves_the_trigger_on_for_the_next_transaction(database_url: str) -> None:
    """The engine's setting is transaction-local: a later writer's rows are counted."""

    async def check() -> None:
        code = f"r{uuid.uuid4().hex[:10]}"
        conn = await asyncpg.connect(database_url)
        try:
            store = await _seed(conn, code)
            events = _events(code, store, [(("enrol", 0), 0), (("purchase", 0, 2500, 1), 5)])
            async with conn.transaction():
                await process_batch(conn, events, datetime.now(UTC))
            assert await conn.fetchval(
                "SELECT current_setting('loyalty.ledger_rollups', true)"
            ) in (None, "")
            card = await conn.fetchrow(
                "SELECT c.id, c.merchant_id FROM loyalty_cards c JOIN merchants m"
                " ON m.id = c.merchant_id WHERE m.code = $1",
                code,
            )
            assert card is not None
            # Rolled back: an adjustment without its card's update would trouble the audits
            # of the other tests sharing this database.
            later = conn.transaction()
            await later.start()
            try:
                await conn.execute(
                    "INSERT INTO ledger_entries (card_id, merchant_id, entry_type, stamps_delta,"
                    " points_delta, stamp_count_after, points_balance_after, occurred_at)"
                    " VALUES ($1, $2, 'points_adjusted', 0, 7, 0, 0, now())",
                    card["id"],
                    card["merchant_id"],
                )
                adjusted = await conn.fetchval(
                    "SELECT sum(points_adjusted) FROM ledger_daily_totals WHERE merchant_id = $1",
                    card["merchant_id"],
                )
                assert adjusted == 7
            finally:
                await later.rollback()
        finally:
            await conn.close()

    asyncio.run(check())
