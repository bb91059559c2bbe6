"""The daily run has two forms: ``domain.rules.expire.decide_run`` (one card, plain values)
and the set-based SQL of ``domain.engine.expiry`` (a million cards in a few statements).
Over random cards with random lots on the real PostgreSQL, they must release and expire
exactly the same points from exactly the same lots; a second run changes nothing."""

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
from domain.engine.expiry import run_in_sql
from domain.rules.expire import decide_run
from domain.rules.lots import Lot
from domain.rules.values import CardBalance, ProgramTerms
from tests.domain.test_ledger_properties import _seed

AS_OF = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)
EXPIRATION_DAYS = 20  # the program of ``_seed``

# A lot: (remaining, pending, hours to its release (negative: past), hours to its expiry or
# None: kept by inactivity)
# None: kept by inactivity). The edges (an hour either side of the run) come often.
edge = st.sampled_from([-1, 0, 1])
lot = st.tuples(
    st.integers(1, 300),
    st.booleans(),
    st.one_of(edge, st.integers(-48, 48)),
    st.one_of(st.none(), edge, st.integers(-24 * 40, 24 * 40)),
)
# A card: its lots, and hours idle before the run (None: no activity yet)
idle_edge = st.sampled_from([24 * EXPIRATION_DAYS + d for d in (-1, 0, 1)])
card = st.tuples(
    st.lists(lot, max_size=5),
    st.one_of(st.none(), idle_edge, st.integers(0, 24 * (EXPIRATION_DAYS + 5))),
)


def _lots(card_id: int, spec: list[tuple[int, bool, int, int | None]]) -> list[Lot]:
    return [
        Lot(
            card_id=card_id,
            lot_no=no,
            points=remaining + 7,  # some of it spent before
            remaining=remaining,
            earned_at=AS_OF - timedelta(days=30),
            releases_at=AS_OF + timedelta(hours=release) if pending else None,
            expires_at=None if expiry is None else AS_OF + timedelta(hours=expiry),
            pending=pending,
        )
        for no, (remaining, pending, release, expiry) in enumerate(spec, 1)
    ]


async def _check(
    database_url: str, cards: list[tuple[list[tuple[int, bool, int, int | None]], int | None]]
) -> None:
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
        terms = ProgramTerms(
            program_id=0,
            merchant_id=0,
            type=ProgramType.HYBRID,
            points_expiration_days=EXPIRATION_DAYS,
        )
        expected: dict[str, tuple[int, int, dict[int, int]]] = {}
        async with conn.transaction():
            outcome = await process_batch(conn, enrol, datetime.now(UTC))
            numbers = [str(r.card_number) for r in outcome.results]
            for number, (spec, idle) in zip(numbers, cards, strict=True):
                card_id = await conn.fetchval(
                    "SELECT id FROM loyalty_cards WHERE card_number = $1", number
                )
                lots = _lots(card_id, spec)
                last = AS_OF - timedelta(hours=idle) if idle is not None else None
                balance = CardBalance(
                    card_id=card_id,
                    points_balance=sum(lo.remaining for lo in lots if not lo.pending),
                    points_pending=sum(lo.remaining for lo in lots if lo.pending),
                    last_activity_at=last,
                )
                await conn.execute("DELETE FROM point_lots WHERE card_id = $1", card_id)
                await conn.executemany(
                    "INSERT INTO point_lots (card_id, lot_no, merchant_id, points, remaining,"
                    " earned_at, releases_at, expires_at, pending)"
                    " SELECT $1, $2, merchant_id, $3, $4, $5, $6, $7, $8"
                    " FROM loyalty_cards WHERE id = $1",
                    [
                        (
                            card_id,
                            lo.lot_no,
                            lo.points,
                            lo.remaining,
                            lo.earned_at,
                            lo.releases_at,
                            lo.expires_at,
                            lo.pending,
                        )
                        for lo in lots
                    ],
                )
                await conn.execute(
                    "UPDATE loyalty_cards SET points_balance = $2, points_pending = $3,"
                    " last_activity_at = $4, lot_count = $5, points_expired = 0"
                    " WHERE id = $1",
                    card_id,
                    balance.points_balance,
                    balance.points_pending,
                    last,
                    len(lots),
                )
                run = decide_run(terms, balance, lots, AS_OF)
                gone = dict(run.expired_lots)
                left = {lo.lot_no: 0 if lo.lot_no in gone else lo.remaining for lo in lots}
                expected[number] = (run.released, run.expired, left)
        async with conn.transaction():
            run_event = ExpiryRun(uuid.uuid4(), AS_OF, code)
            totals = await run_in_sql(conn, run_event, datetime.now(UTC))
        async with conn.transaction():
            again = await run_in_sql(conn, ExpiryRun(uuid.uuid4(), AS_OF, code), AS_OF)
        got: dict[str, tuple[int, int, dict[int, int]]] = {}
        for number in numbers:
            row = await conn.fetchrow(
                "SELECT id, points_expired, points_pending FROM loyalty_cards"
                " WHERE card_number = $1",
                number,
            )
            assert row is not None
            released = await conn.fetchval(
                "SELECT coalesce(sum(points_delta), 0) FROM ledger_entries"
                " WHERE card_id = $1 AND entry_type = 'points_released'",
                row["id"],
            )
            lots_left = {
                r["lot_no"]: r["remaining"]
                for r in await conn.fetch(
                    "SELECT lot_no, remaining FROM point_lots WHERE card_id = $1", row["id"]
                )
            }
            got[number] = (int(released), row["points_expired"], lots_left)
        assert got == expected
        assert (totals.cards_expired, totals.points_expired) == (
            sum(1 for e in expected.values() if e[1]),
            sum(e[1] for e in expected.values()),
        )
        assert totals.points_released == sum(e[0] for e in expected.values())
        assert (again.cards_expired, again.cards_released, again.reminders) == (0, 0, 0)
    finally:
        await conn.close()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(cards=st.lists(card, min_size=1, max_size=8))
def test_the_sql_releases_and_expires_exactly_what_the_rule_does(
    database_url: str,
    cards: list[tuple[list[tuple[int, bool, int, int | None]], int | None]],
) -> None:
    asyncio.run(_check(database_url, cards))
