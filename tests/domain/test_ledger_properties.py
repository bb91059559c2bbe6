"""Property: whatever happens to a merchant's cards, the ledger explains every balance.

Random sequences of enrolments, purchases, returns, redemptions and expiry runs are split into
random batches and applied by the engine (``process_batch``) to the real PostgreSQL. After
each sequence the audit must be clean (every balance and lifetime counter equals its ledger
sums, running balances chain, nothing is negative, nothing was applied twice), and applying
the whole sequence again must change nothing.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.audit import run_audit
from domain.engine import batch
from domain.engine.batch import Inbound, process_batch
from streams.commands import to_command
from streams.parsing import ParseError, parse_input
from streams.topics import Topic

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
CUSTOMERS = 3

operation = st.one_of(
    st.tuples(st.just("enrol"), st.integers(0, CUSTOMERS - 1)),
    st.tuples(
        st.just("purchase"),
        st.integers(0, CUSTOMERS - 1),
        st.integers(0, 6000),
        st.integers(0, 3),
    ),
    st.tuples(st.just("return"), st.integers(0, 12), st.integers(1, 6000)),
    st.tuples(st.just("redeem_points"), st.integers(0, CUSTOMERS - 1)),
    st.tuples(st.just("redeem_stamps"), st.integers(0, CUSTOMERS - 1)),
    st.tuples(st.just("expire"), st.integers(0, 3)),
)
# (operation, minutes since the previous one)
history = st.lists(st.tuples(operation, st.integers(0, 60 * 24 * 12)), min_size=1, max_size=40)


async def _seed(conn: asyncpg.Connection, code: str) -> str:
    merchant_id = await conn.fetchval(
        "INSERT INTO merchants (code, name, timezone, allow_self_enrollment,"
        " allow_cross_location_redemption) VALUES ($1, 'P', 'Europe/Luxembourg', true, true)"
        " RETURNING id",
        code,
    )
    await conn.execute(
        "INSERT INTO stores (merchant_id, code, name, pin_failed_attempts)"
        " VALUES ($1, $2, 'Shop', 0)",
        merchant_id,
        f"{code}-s",
    )
    program_id = await conn.fetchval(
        """
        INSERT INTO loyalty_programs (merchant_id, name, type, currency, stamps_target,
            stamps_reward_value_cents, points_per_euro, points_expiration_days,
            welcome_bonus_points, minimum_redemption_points, minimum_purchase_cents,
            cooldown_minutes, max_daily_stamps, require_staff_pin, pin_max_attempts,
            pin_lockout_minutes, point_value_cents, background_color, foreground_color,
            label_color, is_active)
        VALUES ($1, 'P', 'hybrid', 'EUR', 4, 300, 10, 20, 25, 40, 100, 30, 3, false, 5, 30, 1,
                '#000000', '#FFFFFF', '#CCCCCC', true)
        RETURNING id
        """,
        merchant_id,
    )
    await conn.execute(
        "INSERT INTO rewards (program_id, code, name, points_required, is_active)"
        " VALUES ($1, 'coffee', 'Coffee', 60, true)",
        program_id,
    )
    return f"{code}-s"


def _events(code: str, store: str, steps: list[tuple[tuple[Any, ...], int]]) -> list[Inbound]:
    at = T0
    events: list[Inbound] = []
    for op, gap in steps:
        at += timedelta(minutes=gap)
        common: dict[str, Any] = {"event_id": str(uuid.uuid4()), "occurred_at": at.isoformat()}
        kind = op[0]
        if kind == "expire":
            topic = Topic.EXPIRY
            body: dict[str, Any] = {"type": "expiry.run_requested", "merchant_code": code}
            common["occurred_at"] = (at + timedelta(days=op[1] * 10)).isoformat()
        else:
            body = {"store_code": store}
            email = {"email": f"c{op[1]}@{code}.example"}
            if kind == "enrol":
                topic = Topic.ENROLLMENTS
                body |= {"type": "enrollment.requested", "customer": email, "channel": "staff"}
            elif kind == "purchase":
                topic = Topic.PURCHASES
                body |= {
                    "type": "purchase.completed",
                    "order_reference": f"O{len(events)}",
                    "amount_cents": op[2],
                    "stamps": op[3],
                    "card": email,
                }
            elif kind == "return":
                topic = Topic.RETURNS
                body |= {
                    "type": "purchase.returned",
                    "order_reference": f"O{op[1]}",
                    "refund_amount_cents": op[2],
                }
            else:
                topic = Topic.REDEMPTIONS
                reward = (
                    {"kind": "points", "reward_id": "coffee"}
                    if kind == "redeem_points"
                    else {"kind": "stamps"}
                )
                body |= {"type": "reward.redeem_requested", "card": email, "reward": reward}

        message = parse_input(topic.value, json.dumps(common | body).encode())
        assert not isinstance(message, ParseError), message
        events.append(Inbound(topic.value, to_command(message)))
    return events


async def _run(
    database_url: str, steps: list[tuple[tuple[Any, ...], int]], cuts: list[int]
) -> None:
    code = f"p{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(database_url)
    try:
        store = await _seed(conn, code)
        events = _events(code, store, steps)
        bounds = sorted({0, len(events), *(c % (len(events) + 1) for c in cuts)})
        for start, end in itertools.pairwise(bounds):
            async with conn.transaction():
                await process_batch(conn, events[start:end], datetime.now(UTC))
        report = await run_audit(conn, merchant_code=code, unsent_grace_s=3600)
        assert report.clean, [str(d) for d in report.differences]
        before = await conn.fetchval(
            "SELECT count(*) FROM ledger_entries l JOIN merchants m ON m.id = l.merchant_id"
            " WHERE m.code = $1",
            code,
        )
        async with conn.transaction():
            again = await process_batch(conn, events, datetime.now(UTC))
        assert len(again.duplicates) == len(events) and not again.results
        after = await conn.fetchval(
            "SELECT count(*) FROM ledger_entries l JOIN merchants m ON m.id = l.merchant_id"
            " WHERE m.code = $1",
            code,
        )
        assert after == before
    finally:
        await conn.close()


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=history, cuts=st.lists(st.integers(0, 40), max_size=4))
def test_the_ledger_explains_every_balance_whatever_happens(
    database_url: str, steps: list[tuple[tuple[Any, ...], int]], cuts: list[int]
) -> None:
    asyncio.run(_run(database_url, steps, cuts))


async def _outcomes(
    database_url: str, steps: list[tuple[tuple[Any, ...], int]], order: list[int], chunk: int
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Enrol every customer, then apply ``steps`` in ``order``, all in one batch, writing
    ahead every ``chunk`` events."""
    code = f"w{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(database_url)
    saved = batch.WRITE_CHUNK, batch.WRITE_CHUNKS
    batch.WRITE_CHUNK, batch.WRITE_CHUNKS = chunk, 10**9  # chunks of exactly ``chunk`` events
    try:
        store = await _seed(conn, code)
        enrol = [(("enrol", c), 0) for c in range(CUSTOMERS)]
        events = _events(code, store, enrol + steps)
        events = events[:CUSTOMERS] + [events[CUSTOMERS + i] for i in order]
        async with conn.transaction():
            outcome = await process_batch(conn, events, datetime.now(UTC))
        results = [
            (r.status, tuple(r.reasons), r.stamps_delta, r.points_delta, r.stamp_count,
             r.points_balance)
            for r in outcome.results
        ]  # fmt: skip
        cards = await conn.fetch(
            "SELECT c.stamp_count, c.points_balance, c.lifetime_stamps, c.version, c.stamp_day,"
            " c.stamp_day_count, c.last_stamp_at FROM loyalty_cards c"
            " JOIN merchants m ON m.id = c.merchant_id WHERE m.code = $1 ORDER BY c.id",
            code,
        )
        report = await run_audit(conn, merchant_code=code, unsent_grace_s=3600)
        assert report.clean, [str(d) for d in report.differences]
        return results, [tuple(r) for r in cards]
    finally:
        batch.WRITE_CHUNK, batch.WRITE_CHUNKS = saved
        await conn.close()


# Purchases with stamps, minutes apart (the cooldown is 30 minutes, the daily cap 3 stamps).
stamping = st.lists(
    st.tuples(
        st.tuples(
            st.just("purchase"),
            st.integers(0, CUSTOMERS - 1),
            st.integers(100, 3000),
            st.integers(1, 2),
        ),
        st.integers(0, 90),
    ),
    min_size=2,
    max_size=30,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=stamping, data=st.data())
def test_writing_ahead_in_chunks_changes_no_outcome(
    database_url: str, steps: list[tuple[tuple[Any, ...], int]], data: st.DataObject
) -> None:
    # Out of order, a purchase older than its card's last stamp makes the cooldown and the
    # daily cap read the ledger, where earlier chunks of the same batch are already written.
    order = data.draw(st.permutations(range(len(steps))))
    whole = asyncio.run(_outcomes(database_url, steps, order, chunk=10_000))
    chunked = asyncio.run(_outcomes(database_url, steps, order, chunk=1))
    assert chunked == whole
