"""The expiry rule has two forms: ``domain.rules.expire.decide_expiry`` (one card, plain
values) and the set-based SQL of ``domain.engine.expiry`` (a million cards in one statement).
Over random cards on the real PostgreSQL, they must expire exactly the same balances."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.commands import CustomerDetails, Enrol, ExpiryRun
from core.enums import EnrollmentChannel, ProgramType, Topic
from domain.engine.batch import Inbound, process_batch
from domain.engine.expiry import expire_in_sql
from domain.rules.expire import decide_expiry
from domain.rules.values import CardBalance, ProgramTerms
from tests.domain.test_ledger_properties import _seed

AS_OF = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)
EXPIRATION_DAYS = 20  # the program of ``_seed``

# (points balance, hours idle before the run, or None: no activity yet)
card = st.tuples(
    st.integers(0, 500), st.one_of(st.none(), st.integers(0, 24 * (EXPIRATION_DAYS + 5)))
)


def _last(idle: int | None) -> datetime | None:
    return AS_OF - timedelta(hours=idle) if idle is not None else None


async def _check(database_url: str, cards: list[tuple[int, int | None]]) -> None:
    code = f"x{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(database_url)
    try:
        store = await _seed(conn, code)
        enrol = [
            Inbound(
                Topic.ENROLLMENTS.value,
                Enrol(
                    uuid.uuid4(),
                    AS_OF - timedelta(days=60),
                    store,
                    CustomerDetails(email=f"c{i}@example.com"),
                    EnrollmentChannel.STAFF,
                ),
            )
            for i in range(len(cards))
        ]
        async with conn.transaction():
            outcome = await process_batch(conn, enrol, datetime.now(UTC))
            numbers = [r.card_number for r in outcome.results]
            for number, (balance, idle) in zip(numbers, cards, strict=True):
                last = _last(idle)
                await conn.execute(
                    "UPDATE loyalty_cards SET points_balance = $2, last_activity_at = $3"
                    " WHERE card_number = $1",
                    number,
                    balance,
                    last,
                )
        terms = ProgramTerms(
            program_id=0,
            merchant_id=0,
            type=ProgramType.HYBRID,
            points_expiration_days=EXPIRATION_DAYS,
        )
        expected = {
            number: -sum(
                c.points_delta
                for c in decide_expiry(
                    terms,
                    CardBalance(
                        card_id=0,
                        points_balance=balance,
                        last_activity_at=AS_OF - timedelta(hours=idle)
                        if idle is not None
                        else None,
                    ),
                    AS_OF,
                ).changes
            )
            for number, (balance, idle) in zip(numbers, cards, strict=True)
        }
        async with conn.transaction():
            run = ExpiryRun(uuid.uuid4(), AS_OF, code)
            totals = await expire_in_sql(conn, run, datetime.now(UTC))
        rows = await conn.fetch(
            "SELECT card_number, points_expired, points_balance FROM loyalty_cards"
            " WHERE card_number = ANY($1::text[])",
            numbers,
        )
        got = {r["card_number"]: r["points_expired"] for r in rows}
        assert got == expected
        assert totals == (sum(1 for p in expected.values() if p), sum(expected.values()))
    finally:
        await conn.close()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(cards=st.lists(card, min_size=1, max_size=12))
def test_the_sql_expires_exactly_what_the_rule_expires(
    database_url: str, cards: list[tuple[int, int | None]]
) -> None:
    asyncio.run(_check(database_url, cards))
