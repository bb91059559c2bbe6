"""The finance report's totals equal a recomputation from the ledger and the cards.

A random workload (enrolments, purchases, returns, redemptions, expiry runs; some of it
delivered late, out of order) for a merchant in a random time zone, applied through the engine
(``process_batch``) in random batches and write-ahead chunks; then admin adjustments dated in
the past (late months), cards whose creation moves to their enrolment and cards deleted at a
past instant. For random periods (whole months and days inside months), every figure of
``finance_report`` must equal the same figure summed straight from ``ledger_entries`` and
``loyalty_cards`` here; the liability must roll forward exactly; and the activity tables the
triggers keep must equal their rebuild from the ledger.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import asyncpg
import msgspec
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from core.settings import Settings, asyncpg_url
from domain.db import make_engine, make_sessionmaker
from domain.engine import batch
from domain.engine.admin_actions import adjust_card
from domain.engine.batch import process_batch
from domain.finance import ACTIVITY_TYPES, FinanceReport, finance_report
from domain.rules.admin import AdjustmentError
from tests.domain.test_ledger_properties import T0, _events, _seed, history

ZONES = ["Europe/Luxembourg", "America/New_York", "Asia/Tokyo", "Pacific/Chatham", "UTC"]
STAMP_CENTS = Decimal(300) / 4  # the seeded program: a 300-cent reward for 4 stamps
POINT_CENTS = Decimal("0.37")  # set below: a value whose sums need rounding

# (first day as days after T0, length in days, snapped to whole months)
period = st.tuples(st.integers(-40, 560), st.integers(0, 400), st.booleans())
adjustment = st.tuples(
    st.integers(0, 5), st.integers(-2, 4), st.integers(-40, 90), st.integers(0, 500)
)
deletion = st.tuples(st.integers(0, 5), st.integers(0, 500))


@dataclass(frozen=True)
class Extras:
    """What happens after the events: adjustments (card, stamps, points, days after T0),
    deletions (card, days after T0), and whether cards' creation moves to their first entry."""

    adjustments: list[tuple[int, int, int, int]]
    deletions: list[tuple[int, int]]
    move_created: bool


def _cents(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _period(first: int, length: int, whole: bool) -> tuple[date, date]:
    start = T0.date() + timedelta(days=first)
    end = start + timedelta(days=length)
    if whole:
        start = start.replace(day=1)
        end = (end.replace(day=1) + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    return start, end


def _month(day: date, add: int = 0) -> date:
    index = day.year * 12 + day.month - 1 + add
    return date(index // 12, index % 12 + 1, 1)


_LOCAL = "(l.occurred_at AT TIME ZONE $2)::date"

# What the cards not deleted at the start of day $3 held then (spendable and pending points).
_HELD_BEFORE = f"""
SELECT coalesce(sum(l.stamps_delta), 0), coalesce(sum(l.points_delta), 0),
       coalesce(sum(l.pending_delta), 0)
FROM ledger_entries l JOIN loyalty_cards c ON c.id = l.card_id
WHERE l.merchant_id = $1 AND {_LOCAL} < $3
  AND NOT (c.deleted_at IS NOT NULL AND (c.deleted_at AT TIME ZONE $2)::date < $3)
"""  # noqa: S608 - fragments are this module's constants
# What the cards deleted before day $3 held then.
_GONE_BEFORE = f"""
SELECT coalesce(sum(l.stamps_delta), 0), coalesce(sum(l.points_delta + l.pending_delta), 0)
FROM ledger_entries l JOIN loyalty_cards c ON c.id = l.card_id
WHERE l.merchant_id = $1 AND {_LOCAL} < $3
  AND c.deleted_at IS NOT NULL AND (c.deleted_at AT TIME ZONE $2)::date < $3
"""  # noqa: S608 - fragments are this module's constants
_BY_TYPE = f"""
SELECT l.entry_type, sum(l.stamps_delta), sum(l.points_delta), sum(l.pending_delta)
FROM ledger_entries l
WHERE l.merchant_id = $1 AND {_LOCAL} >= $3 AND {_LOCAL} <= $4
GROUP BY l.entry_type
"""  # noqa: S608 - fragments are this module's constants
_ACTIVE = f"""
SELECT count(DISTINCT l.card_id) FROM ledger_entries l
WHERE l.merchant_id = $1 AND {_LOCAL} >= $3 AND {_LOCAL} <= $4
  AND l.entry_type = ANY($5::text[])
"""  # noqa: S608 - fragments are this module's constants
_NEW = """
SELECT count(*) FROM loyalty_cards c
WHERE c.merchant_id = $1 AND (c.created_at AT TIME ZONE $2)::date >= $3
  AND (c.created_at AT TIME ZONE $2)::date <= $4
"""
_COHORT_SIZES = """
SELECT date_trunc('month', c.created_at AT TIME ZONE $2)::date, count(*)
FROM loyalty_cards c WHERE c.merchant_id = $1 GROUP BY 1
"""
_COHORT_ACTIVE = """
SELECT date_trunc('month', c.created_at AT TIME ZONE $2)::date,
       date_trunc('month', l.occurred_at AT TIME ZONE $2)::date, count(DISTINCT c.id)
FROM ledger_entries l JOIN loyalty_cards c ON c.id = l.card_id
WHERE l.merchant_id = $1 AND l.entry_type = ANY($3::text[])
GROUP BY 1, 2
"""
_SUMMARY = """
SELECT card_id, month FROM card_active_months a JOIN loyalty_cards c ON c.id = a.card_id
WHERE c.merchant_id = $1 ORDER BY 1, 2
"""
_COUNTS = """
SELECT cohort, previous, month, sum(cards) FROM active_month_counts WHERE merchant_id = $1
GROUP BY 1, 2, 3 HAVING sum(cards) <> 0 ORDER BY 1, 2, 3
"""


async def _recomputed(
    conn: asyncpg.Connection, merchant_id: int, zone: str, start: date, end: date
) -> dict[str, Any]:
    """Every figure of the report, summed from the ledger and the cards."""
    after_end = end + timedelta(days=1)
    opening = await conn.fetchrow(_HELD_BEFORE, merchant_id, zone, start)
    closing = await conn.fetchrow(_HELD_BEFORE, merchant_id, zone, after_end)
    gone_start = await conn.fetchrow(_GONE_BEFORE, merchant_id, zone, start)
    gone_end = await conn.fetchrow(_GONE_BEFORE, merchant_id, zone, after_end)
    assert opening and closing and gone_start and gone_end
    moved: dict[str, tuple[int, int]] = {}
    for kind, stamps, points, pending in await conn.fetch(_BY_TYPE, merchant_id, zone, start, end):
        moved[kind] = (int(stamps), int(points) + int(pending))

    def of(kind: str) -> tuple[int, int]:
        return moved.get(kind, (0, 0))

    # Only these kinds move stamps or points held (a release moves points from pending).
    assert set(moved) <= {
        "stamp_earned", "stamp_redeemed", "stamp_voided", "stamp_adjusted", "points_earned",
        "welcome_bonus", "points_redeemed", "points_voided", "points_expired",
        "points_adjusted", "points_released", "card_created", "card_deactivated",
        "card_reactivated",
    }, moved  # fmt: skip
    assert of("points_released")[1] == 0
    activity = sorted(t.value for t in ACTIVITY_TYPES)
    sizes = {r[0]: int(r[1]) for r in await conn.fetch(_COHORT_SIZES, merchant_id, zone)}
    active = {
        (r[0], r[1]): int(r[2])
        for r in await conn.fetch(_COHORT_ACTIVE, merchant_id, zone, activity)
    }
    last = _month(end)
    cohorts = []
    for i in range(-11, 1):
        month = _month(end, i)
        following = []
        later = month
        while later <= last:
            following.append(active.get((month, later), 0))
            later = _month(later, 1)
        cohorts.append((month, sizes.get(month, 0), tuple(following)))
    return {
        "opening": (int(opening[0]), int(opening[1]), int(opening[2])),
        "closing": (int(closing[0]), int(closing[1]), int(closing[2])),
        "issued": (of("stamp_earned")[0], of("points_earned")[1] + of("welcome_bonus")[1]),
        "redeemed": (-of("stamp_redeemed")[0], -of("points_redeemed")[1]),
        "expired": (0, -of("points_expired")[1]),
        "voided": (-of("stamp_voided")[0], -of("points_voided")[1]),
        "adjusted": (of("stamp_adjusted")[0], of("points_adjusted")[1]),
        "deleted": (
            int(gone_end[0]) - int(gone_start[0]),
            int(gone_end[1]) - int(gone_start[1]),
        ),
        "active": int(await conn.fetchval(_ACTIVE, merchant_id, zone, start, end, activity)),
        "new": int(await conn.fetchval(_NEW, merchant_id, zone, start, end)),
        "cohorts": cohorts,
    }


def _check(report: FinanceReport, expected: dict[str, Any]) -> None:
    o, c = report.opening, report.closing
    assert (o.stamps, o.points, o.points_pending) == expected["opening"]
    assert (c.stamps, c.points, c.points_pending) == expected["closing"]
    lines = dict(report.movements())
    for name in ("issued", "redeemed", "expired", "voided", "adjusted", "deleted"):
        line = lines[name]
        assert (line.stamps, line.points) == expected[name], name
        assert line.cents == _cents(line.stamps * STAMP_CENTS + line.points * POINT_CENTS), name
    # The liability rolls forward exactly, stamps and points (spendable and pending).
    for unit in ("stamps", "points"):
        opening = o.stamps if unit == "stamps" else o.points_total
        closing = c.stamps if unit == "stamps" else c.points_total
        flows = [getattr(lines[n], unit) for n in lines]
        issued, redeemed, expired, voided, adjusted, deleted = flows
        assert closing == opening + issued - redeemed - expired - voided + adjusted - deleted
    for h in (o, c):
        assert h.stamps_cents == _cents(h.stamps * STAMP_CENTS)
        assert h.points_cents == _cents(h.points_total * POINT_CENTS)
    assert report.active_members == expected["active"]
    assert report.new_members == expected["new"]
    assert [(k.month, k.cards, k.active) for k in report.cohorts] == expected["cohorts"]
    issued = lines["issued"]
    if issued.points:
        assert report.points_redemption_rate == lines["redeemed"].points / issued.points
        assert report.points_breakage_rate == lines["expired"].points / issued.points
    else:
        assert report.points_redemption_rate is None and report.points_breakage_rate is None


async def _run(
    stack: Settings,
    database_url: str,
    steps: list[tuple[tuple[Any, ...], int]],
    cuts: list[int],
    zone: str,
    chunk: int,
    pending_days: int,
    late: int,
    extras: Extras,
    periods: list[tuple[int, int, bool]],
) -> None:
    code = f"f{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(database_url)
    engine = make_engine(stack, pool_size=1, url=asyncpg_url(database_url))
    saved = batch.WRITE_CHUNK, batch.WRITE_CHUNKS
    batch.WRITE_CHUNK, batch.WRITE_CHUNKS = chunk, 10**9
    try:
        store = await _seed(conn, code)
        merchant_id = await conn.fetchval("SELECT id FROM merchants WHERE code = $1", code)
        await conn.execute("UPDATE merchants SET timezone = $2 WHERE id = $1", merchant_id, zone)
        await conn.execute(
            "UPDATE loyalty_programs SET pending_days = $2, point_value_cents = $3"
            " WHERE merchant_id = $1",
            merchant_id,
            pending_days,
            POINT_CENTS,
        )
        events = _events(code, store, steps)
        # Some events delivered late: each of the last ``late`` moves to a random earlier place.
        shuffler = random.Random(late)
        for _ in range(min(late, len(events))):
            events.insert(shuffler.randrange(len(events)), events.pop())
        bounds = sorted({0, len(events), *(c % (len(events) + 1) for c in cuts)})
        for first, last in itertools.pairwise(bounds):
            async with conn.transaction():
                await process_batch(conn, events[first:last], datetime.now(UTC))

        cards = [
            r[0]
            for r in await conn.fetch(
                "SELECT id FROM loyalty_cards WHERE merchant_id = $1 ORDER BY id", merchant_id
            )
        ]
        for which, stamps, points, days in extras.adjustments if cards else []:
            at = T0 + timedelta(days=days, hours=7)
            try:
                async with conn.transaction():
                    await adjust_card(
                        conn,
                        action_id=uuid.uuid4(),
                        card_id=cards[which % len(cards)],
                        stamps=stamps,
                        points=points,
                        reason="test",
                        actor="test",
                        now=at,
                    )
            except AdjustmentError:
                pass  # nothing to change, or a balance that would go negative
        if extras.move_created:
            # Cards issued when enrolled (the engine dates a card by the database's clock).
            await conn.execute(
                "UPDATE loyalty_cards c SET created_at = f.at FROM ("
                "  SELECT card_id, min(occurred_at) AS at FROM ledger_entries"
                "  WHERE merchant_id = $1 GROUP BY card_id) f WHERE c.id = f.card_id",
                merchant_id,
            )
        for which, days in extras.deletions if cards else []:
            await conn.execute(
                "UPDATE loyalty_cards SET deleted_at = $2, deleted_by = 'test'"
                " WHERE id = $1 AND deleted_at IS NULL",
                cards[which % len(cards)],
                T0 + timedelta(days=days, hours=13),
            )

        # The triggers' activity tables equal their rebuild from the ledger (rolled back: the
        # report below reads what the triggers kept).
        kept = [await conn.fetch(q, merchant_id) for q in (_SUMMARY, _COUNTS)]
        rebuild = conn.transaction()
        await rebuild.start()
        try:
            await conn.execute("SELECT stats_rebuild($1)", merchant_id)
            rebuilt = [await conn.fetch(q, merchant_id) for q in (_SUMMARY, _COUNTS)]
        finally:
            await rebuild.rollback()
        assert [[tuple(r) for r in part] for part in kept] == [
            [tuple(r) for r in part] for part in rebuilt
        ]

        last_day = await conn.fetchval(
            "SELECT max((occurred_at AT TIME ZONE $2)::date) FROM ledger_entries"
            " WHERE merchant_id = $1",
            merchant_id,
            zone,
        )
        asked = [_period(*p) for p in periods]
        asked.append((T0.date() - timedelta(days=3), (last_day or T0.date()) + timedelta(days=3)))
        async with make_sessionmaker(engine)() as session:
            for start, end in asked:
                report = await finance_report(session, code, start, end)
                _check(report, await _recomputed(conn, merchant_id, zone, start, end))
    finally:
        batch.WRITE_CHUNK, batch.WRITE_CHUNKS = saved
        await engine.dispose()
        await conn.close()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Two customers over a year and a half: pending points, a return while pending, a redemption,
# expiry runs, late events, adjustments dated back, a card deleted mid-way.
@example(
    steps=[
        (("enrol", 0), 0),
        (("purchase", 0, 3000, 1), 10),
        (("enrol", 1), 60 * 24 * 3),
        (("purchase", 1, 2500, 2), 60 * 24 * 40),
        (("purchase", 0, 4000, 1), 60 * 24 * 50),
        (("return", 1, 1000), 60),
        (("redeem_points", 0), 60 * 24 * 70),
        (("expire", 2), 60 * 24 * 200),
        (("purchase", 1, 900, 1), 60 * 24 * 10),
    ],
    cuts=[3, 6],
    zone="Pacific/Chatham",
    chunk=1,
    pending_days=1,
    late=2,
    # Adjustments dated back: in a month between two of the first card's (July), and before
    # the second card's first month (February).
    extras=Extras([(0, 1, 25, 130), (1, 1, 0, -20), (1, 0, -10, 300)], [(1, 200)], True),
    periods=[(0, 30, True), (15, 45, False), (100, 300, False)],
)
@given(
    steps=history,
    cuts=st.lists(st.integers(0, 40), max_size=4),
    zone=st.sampled_from(ZONES),
    chunk=st.integers(1, 8),
    pending_days=st.sampled_from([0, 0, 1]),
    late=st.integers(0, 6),
    extras=st.builds(
        Extras,
        st.lists(adjustment, max_size=3),
        st.lists(deletion, max_size=2),
        st.booleans(),
    ),
    periods=st.lists(period, min_size=1, max_size=3),
)
def test_the_finance_report_equals_the_ledger(
    stack: Settings,
    database_url: str,
    steps: list[tuple[tuple[Any, ...], int]],
    cuts: list[int],
    zone: str,
    chunk: int,
    pending_days: int,
    late: int,
    extras: Extras,
    periods: list[tuple[int, int, bool]],
) -> None:
    asyncio.run(
        _run(
            stack,
            database_url,
            steps,
            cuts,
            zone,
            chunk,
            pending_days,
            late,
            extras,
            periods,
        )
    )


async def test_months_of_cards_made_near_a_month_change_count_in_their_local_cohort(
    database_url: str,
) -> None:
    """The engine counts the months of an existing card itself (``rollups._RECORD_IN_ORDER``):
    a card made on 31 January at 20:00 UTC is a February card in Tokyo, and its April and
    May purchases (after its welcome bonus of March) must count in that cohort, as the
    rebuild from the ledger says."""
    code = f"k{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(database_url)
    try:
        store = await _seed(conn, code)
        merchant_id = await conn.fetchval(
            "UPDATE merchants SET timezone = 'Asia/Tokyo' WHERE code = $1 RETURNING id", code
        )
        steps: list[tuple[tuple[Any, ...], int]] = [(("enrol", 0), 0), (("enrol", 1), 0)]
        async with conn.transaction():
            await process_batch(conn, _events(code, store, steps), datetime.now(UTC))
        await conn.execute(
            "UPDATE loyalty_cards SET created_at = '2026-01-31T20:00:00Z' WHERE merchant_id = $1",
            merchant_id,
        )
        assert T0.month == 3  # the welcome bonus, and so the last month recorded before April
        for month, order in ((4, "A"), (5, "M")):
            at = datetime(2026, month, 2, 3, 0, tzinfo=UTC)
            events = [
                ev for i in (0, 1) for ev in _events(code, store, [(("purchase", i, 500, 1), 0)])
            ]
            events = [
                type(ev)(
                    ev.topic,
                    msgspec.structs.replace(
                        ev.command, occurred_at=at, order_reference=f"{order}{n}"
                    ),
                )
                for n, ev in enumerate(events)
            ]
            async with conn.transaction():
                outcome = await process_batch(conn, events, datetime.now(UTC))
            assert [r.status for r in outcome.results] == ["applied", "applied"]
        counted = [tuple(r) for r in await conn.fetch(_COUNTS, merchant_id)]
        feb = date(2026, 2, 1)
        assert (feb, date(2026, 3, 1), date(2026, 4, 1), 2) in counted
        assert (feb, date(2026, 4, 1), date(2026, 5, 1), 2) in counted
        await conn.execute("SELECT activity_rebuild($1)", merchant_id)
        assert [tuple(r) for r in await conn.fetch(_COUNTS, merchant_id)] == counted
    finally:
        await conn.close()


async def test_a_month_recorded_by_a_writer_the_batch_waited_for_is_its_previous_month(
    database_url: str,
) -> None:
    """Two transactions on one card: the second waits for the first's lock on the card while
    loading it, so the card's latest month it read with the card predates the first's
    November; its December must still count after November, as the rebuild says."""
    code = f"w{uuid.uuid4().hex[:10]}"
    first = await asyncpg.connect(database_url)
    second = await asyncpg.connect(database_url)
    try:
        store = await _seed(first, code)
        merchant_id = await first.fetchval("SELECT id FROM merchants WHERE code = $1", code)
        async with first.transaction():
            await process_batch(first, _events(code, store, [(("enrol", 0), 0)]), datetime.now(UTC))

        def purchase_at(month: int) -> list[Any]:
            (ev,) = _events(code, store, [(("purchase", 0, 500, 1), 0)])
            at = datetime(2026, month, 2, 9, 0, tzinfo=UTC)
            order = f"P{month}"
            command = msgspec.structs.replace(ev.command, occurred_at=at, order_reference=order)
            return [type(ev)(ev.topic, command)]

        holding = first.transaction()
        await holding.start()
        await process_batch(first, purchase_at(11), datetime.now(UTC))

        async def later() -> None:
            async with second.transaction():
                await process_batch(second, purchase_at(12), datetime.now(UTC))

        waiting = asyncio.create_task(later())
        await asyncio.sleep(1.0)
        assert not waiting.done(), "the second batch did not wait for the card"
        await holding.commit()
        await asyncio.wait_for(waiting, 30)

        counted = [tuple(r) for r in await first.fetch(_COUNTS, merchant_id)]
        assert [c[1:3] for c in counted if c[2] >= date(2026, 11, 1)] == [
            (date(2026, 3, 1), date(2026, 11, 1)),
            (date(2026, 11, 1), date(2026, 12, 1)),
        ]
        await first.execute("SELECT activity_rebuild($1)", merchant_id)
        assert [tuple(r) for r in await first.fetch(_COUNTS, merchant_id)] == counted
    finally:
        await first.close()
        await second.close()
