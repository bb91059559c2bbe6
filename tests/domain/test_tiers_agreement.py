"""The daily run's tiers have two forms: ``domain.rules.tiers.judge_daily`` over one card's
purchases, and the set-based SQL of ``domain.engine.expiry`` over every tiered card. Over
random cards (tiers held, since when below, purchases and returns around the window's edge)
on the real PostgreSQL, they must count the same qualifying points and give the same tiers."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.commands import CustomerDetails, Enrol, ExpiryRun
from core.enums import EnrollmentChannel, Topic
from domain.engine.batch import Inbound, process_batch
from domain.engine.expiry import run_in_sql
from domain.rules.tiers import judge_daily, qualifying_in_window, tier_plan, window_start
from tests.domain.test_ledger_properties import _seed

AS_OF = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)
ZONE = ZoneInfo("Europe/Luxembourg")  # the merchant of ``_seed``
TIERS = [
    {"id": "member", "name": "Member", "threshold_points": 0, "multiplier": 1},
    {"id": "silver", "name": "Silver", "threshold_points": 300, "multiplier": 1.5},
    {"id": "gold", "name": "Gold", "threshold_points": 1000, "multiplier": 2},
]

# A purchase: (days before the run, net points); the edges of both windows come often.
edge = st.sampled_from([365, 366, 364, 151, 152])  # a year; 1 Jan 2026 is 151 days before
purchase = st.tuples(st.one_of(edge, st.integers(0, 500)), st.integers(0, 700))
card = st.tuples(
    st.sampled_from([None, "member", "silver", "gold"]),
    # below its tier since so many days (the grace days' edges often)
    st.one_of(st.none(), st.sampled_from([0, 9, 10, 11, 29, 30, 31]), st.integers(0, 40)),
    st.lists(purchase, max_size=6),
)


async def _check(
    database_url: str,
    window: str,
    grace: int,
    cards: list[tuple[str | None, int | None, list[tuple[int, int]]]],
) -> None:
    code = f"t{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(database_url)
    try:
        store = await _seed(conn, code)
        await conn.execute(
            "UPDATE loyalty_programs p SET tiers = $2::jsonb, tier_window = $3,"
            " tier_grace_days = $4 FROM merchants m WHERE p.merchant_id = m.id AND m.code = $1",
            code,
            json.dumps(TIERS),
            window,
            grace,
        )
        plan = tier_plan(TIERS, window, grace)
        enrol = [
            Inbound(
                Topic.ENROLLMENTS.value,
                Enrol(
                    uuid.uuid4(),
                    AS_OF - timedelta(days=800),
                    store,
                    CustomerDetails(email=f"c{i}@example.com"),
                    EnrollmentChannel.STAFF,
                ),
            )
            for i in range(len(cards))
        ]
        expected: dict[str, tuple[str | None, datetime | None, int]] = {}
        async with conn.transaction():
            outcome = await process_batch(conn, enrol, datetime.now(UTC))
            numbers = [str(r.card_number) for r in outcome.results]
            start = window_start(plan, AS_OF, ZONE)
            for number, (tier, below, bought) in zip(numbers, cards, strict=True):
                since = AS_OF - timedelta(days=below) if below is not None else None
                row = await conn.fetchrow(
                    "UPDATE loyalty_cards SET tier = $2, tier_below_since = $3"
                    " WHERE card_number = $1 RETURNING id, merchant_id",
                    number,
                    tier,
                    since,
                )
                assert row is not None
                times = [(AS_OF - timedelta(days=d), net) for d, net in bought]
                await conn.executemany(
                    "INSERT INTO purchases (merchant_id, order_reference, card_id, amount_cents,"
                    " currency, points_earned, stamps_earned, refunded_cents, points_voided,"
                    " stamps_voided, source_event_id, occurred_at)"
                    " VALUES ($1, $2, $3, 0, 'EUR', $4, 0, 0, $5, 0, $6, $7)",
                    [
                        (
                            row["merchant_id"],
                            uuid.uuid4().hex,
                            row["id"],
                            net + 10,
                            10,  # a return took 10 back
                            uuid.uuid4(),
                            at,
                        )
                        for at, net in times
                    ],
                )
                points = qualifying_in_window(times, start, datetime.max.replace(tzinfo=UTC))
                verdict = judge_daily(plan, tier, points, since, AS_OF)
                expected[number] = (verdict.tier, verdict.below_since, points)
        async with conn.transaction():
            await run_in_sql(conn, ExpiryRun(uuid.uuid4(), AS_OF, code), datetime.now(UTC))
        got = {
            r["card_number"]: (r["tier"], r["tier_below_since"], r["qualifying_points"])
            for r in await conn.fetch(
                "SELECT card_number, tier, tier_below_since, qualifying_points"
                " FROM loyalty_cards WHERE card_number = ANY($1::text[])",
                numbers,
            )
        }
        assert got == expected
    finally:
        await conn.close()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    window=st.sampled_from(["rolling_12_months", "calendar_year"]),
    grace=st.sampled_from([0, 10, 30]),
    cards=st.lists(card, min_size=1, max_size=6),
)
def test_the_sql_judges_tiers_exactly_as_the_rule_does(
    database_url: str,
    window: str,
    grace: int,
    cards: list[tuple[str | None, int | None, list[tuple[int, int]]]],
) -> None:
    asyncio.run(_check(database_url, window, grace, cards))
