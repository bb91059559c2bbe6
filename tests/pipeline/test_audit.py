"""The audit over a history the real pipeline wrote, then over that history corrupted by hand.

Each corruption happens in a transaction that is rolled back (the audit runs inside it), so
the session's database stays clean for the tests after; the ledger's immutability trigger
refuses updates and deletes, not inserts, which is how an event "applied twice" is forged.
The command line is tried on a committed corruption, undone right after.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.settings import REPO_ROOT
from domain.audit import AuditReport, Difference, audit_database, run_audit
from tests.pipeline.stories import (
    T0,
    enrol,
    event,
    outcomes,
    purchase,
    redeem,
    refund,
    send,
)
from tests.support.outbox import insert_outbox
from tests.support.pipeline import Bus
from tests.support.seed import seed_merchant

Sessions = async_sessionmaker[AsyncSession]


@dataclass(frozen=True)
class History:
    """A merchant whose cards went through every kind of event."""

    merchant: str
    card: str
    other_card: str
    purchase_event: str
    """The event id of the first card's first purchase."""


@pytest.fixture(scope="module")
async def history(bus: Bus, sessions: Sessions) -> History:
    async with sessions() as s:
        merchant, stores, _ = await seed_merchant(
            s,
            stamps_target=2,
            points_per_euro=10,
            welcome_bonus_points=20,
            points_expiration_days=30,
            rewards={"coffee": 50},
        )
    shop = stores[0].code
    card, other = await enrol(bus, shop), await enrol(bus, shop)
    first = purchase(shop, card, 1000, T0, stamps=2)
    second = purchase(shop, card, 400, T0 + timedelta(hours=1))
    early = refund(shop, second["order_reference"], 400, T0 + timedelta(hours=2))
    await outcomes(
        bus,
        first,
        redeem(shop, card, {"kind": "stamps"}),
        redeem(shop, card, {"kind": "points", "reward_id": "coffee"}),
        refund(shop, first["order_reference"], 500, card=card),  # a stamps shortfall
        early,  # held: its purchase comes next
    )
    await send(bus, second)
    await bus.wait_results([early["event_id"]], per_event=2)
    await outcomes(
        bus,
        purchase(shop, other, 300, T0 + timedelta(days=10)),
        event("expiry.run_requested", None, T0 + timedelta(days=35), merchant_code=merchant.code),
    )
    return History(merchant.code, card, other, first["event_id"])


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection in a transaction that is rolled back after the test."""
    connection = await asyncpg.connect(database_url)
    transaction = connection.transaction()
    await transaction.start()
    try:
        yield connection
    finally:
        await transaction.rollback()
        await connection.close()


async def audit(
    conn: asyncpg.Connection, history: History, unsent_grace_s: float = 60.0
) -> AuditReport:
    """The audit of the history's merchant, inside the test's transaction.

    The outbox is the whole session's: the running relay gets a minute for what the worker
    has just written (other sessions' traffic keeps it busy).
    """
    return await run_audit(conn, merchant_code=history.merchant, unsent_grace_s=unsent_grace_s)


async def card_value(conn: asyncpg.Connection, card: str, column: str) -> int:
    value = await conn.fetchval(f"SELECT {column} FROM loyalty_cards WHERE card_number = $1", card)  # noqa: S608
    assert isinstance(value, int)
    return value


async def test_the_history_the_pipeline_wrote_is_clean(history: History, database_url: str) -> None:
    mine = await audit_database(database_url, merchant_code=history.merchant, unsent_grace_s=60)
    assert mine.differences == [] and mine.clean
    assert (mine.cards, mine.ledger_entries) == (2, 16)
    # The whole session's database too: every story so far, and whatever other test
    # sessions' traffic this session's worker answered. Outputs get a minute to be relayed.
    everything = await audit_database(database_url, unsent_grace_s=60)
    assert everything.differences == [], everything.differences


async def test_a_balance_that_drifted_from_the_ledger_is_reported(
    history: History, conn: asyncpg.Connection
) -> None:
    points = await card_value(conn, history.card, "points_balance")
    stamps = await card_value(conn, history.card, "stamp_count")
    await conn.execute(
        "UPDATE loyalty_cards SET points_balance = points_balance + 7,"
        " stamp_count = stamp_count + 1 WHERE card_number = $1",
        history.card,
    )
    report = await audit(conn, history)
    assert not report.clean
    found = [(d.check, d.card_number, d.field, d.expected, d.actual) for d in report.differences]
    assert found == [
        ("balance", history.card, "points_balance", points, points + 7),
        ("balance", history.card, "stamp_count", stamps, stamps + 1),
        # The card's lots no longer hold its balance either (CONTRACT.md 7.3).
        ("lots", history.card, "points_balance (released lots)", points, points + 7),
    ]
    assert report.totals["balance"] == 2 and report.totals["lots"] == 1
    assert sum(report.totals.values()) == 3


async def test_a_lot_that_lost_points_the_ledger_never_took_is_reported(
    history: History, conn: asyncpg.Connection
) -> None:
    row = await conn.fetchrow(
        "SELECT l.card_id, l.lot_no, l.remaining FROM point_lots l"
        " JOIN loyalty_cards c ON c.id = l.card_id"
        " WHERE c.card_number = $1 AND l.remaining > 0 ORDER BY l.lot_no LIMIT 1",
        history.other_card,
    )
    assert row is not None
    await conn.execute(
        "UPDATE point_lots SET remaining = remaining - 1 WHERE card_id = $1 AND lot_no = $2",
        row["card_id"],
        row["lot_no"],
    )
    report = await audit(conn, history)
    found = {(d.check, d.field) for d in report.differences}
    assert found == {
        ("lots", f"lot {row['lot_no']} remaining"),
        ("lots", "points_balance (released lots)"),
    }


async def test_lifetime_counters_and_a_version_gone_back_are_reported(
    history: History, conn: asyncpg.Connection
) -> None:
    earned = await card_value(conn, history.card, "lifetime_points_earned")
    await conn.execute(
        "UPDATE loyalty_cards SET lifetime_points_earned = lifetime_points_earned + 5,"
        " points_voided = 0, version = 2 WHERE card_number = $1",
        history.card,
    )
    report = await audit(conn, history)
    found = {(d.check, d.field): (d.expected, d.actual) for d in report.differences}
    assert found[("balance", "lifetime_points_earned")] == (earned, earned + 5)
    assert found[("balance", "points_voided")][1] == 0
    # enrolment, 2 purchases, 2 redemptions, 2 returns and the expiry run changed the card.
    assert found[("version", "version")] == (">= 8", 2)
    assert {d.card_number for d in report.differences} == {history.card}


async def test_an_event_applied_twice_is_reported(
    history: History, conn: asyncpg.Connection
) -> None:
    # A second points_earned row for the first purchase, with a card and a chain that agree:
    # only the double application itself (and what the purchase record says) gives it away.
    await conn.execute(
        """
        WITH card AS (
            UPDATE loyalty_cards SET points_balance = points_balance + 100,
                lifetime_points_earned = lifetime_points_earned + 100
            WHERE card_number = $1
            RETURNING id, merchant_id, stamp_count, points_balance)
        INSERT INTO ledger_entries (card_id, merchant_id, entry_type, stamps_delta, points_delta,
            stamp_count_after, points_balance_after, source_event_id, occurred_at)
        SELECT id, merchant_id, 'points_earned', 0, 100, stamp_count, points_balance, $2, now()
        FROM card
        """,
        history.card,
        uuid.UUID(history.purchase_event),
    )
    report = await audit(conn, history)
    checks = {d.check: d for d in report.differences}
    # The card's lots do not hold the extra 100 points either (CONTRACT.md 7.3).
    assert set(checks) == {"double_applied", "purchase", "lots"}
    twice = checks["double_applied"]
    assert (twice.card_number, twice.expected, twice.actual) == (history.card, 1, 2)
    assert twice.field == f"points_earned rows of event {history.purchase_event}"
    assert (checks["purchase"].expected, checks["purchase"].actual) == (200, 100)


async def test_an_effect_whose_event_left_the_inbox_is_reported(
    history: History, conn: asyncpg.Connection
) -> None:
    # Without its inbox row, a redelivery of the purchase would be applied a second time.
    await conn.execute(
        "DELETE FROM processed_events WHERE event_id = $1", uuid.UUID(history.purchase_event)
    )
    report = await audit(conn, history)
    (missing,) = report.differences
    assert (missing.check, missing.card_number, missing.actual) == (
        "unrecorded_event",
        history.card,
        "not in the inbox",
    )


async def test_an_inbox_row_without_an_outcome_is_reported(
    history: History, conn: asyncpg.Connection
) -> None:
    stuck, held = uuid.uuid4(), uuid.uuid4()
    await conn.execute(
        "INSERT INTO processed_events (event_id, topic, status) VALUES"
        " ($1, 'loyalty.purchases.v1', 'pending'), ($2, 'loyalty.returns.v1', 'held')",
        stuck,
        held,
    )
    report = await audit(conn, history)
    assert sorted((d.check, d.field, d.actual) for d in report.differences) == sorted(
        [
            ("inbox", f"status of event {stuck} (loyalty.purchases.v1)", "pending"),
            ("inbox", f"held_return of event {held} (loyalty.returns.v1)", "none"),
        ]
    )


async def test_a_broken_ledger_chain_is_reported(
    history: History, conn: asyncpg.Connection
) -> None:
    # An adjustment row whose "balance after" does not follow from the rows before it.
    row = await conn.fetchrow(
        """
        WITH card AS (
            UPDATE loyalty_cards SET points_balance = points_balance + 1, version = version + 1
            WHERE card_number = $1 RETURNING id, merchant_id, stamp_count, points_balance)
        INSERT INTO ledger_entries (card_id, merchant_id, entry_type, stamps_delta, points_delta,
            stamp_count_after, points_balance_after, occurred_at)
        SELECT id, merchant_id, 'points_adjusted', 0, 1, stamp_count, points_balance + 10, now()
        FROM card
        RETURNING id, points_balance_after
        """,
        history.card,
    )
    assert row is not None
    report = await audit(conn, history)
    assert {d.check for d in report.differences} == {"ledger_chain", "lots"}
    (broken,) = [d for d in report.differences if d.check == "ledger_chain"]
    assert broken.card_number == history.card
    assert f"ledger entry {row['id']} " in broken.field
    assert broken.actual[1] == row["points_balance_after"] == broken.expected[1] + 10


async def test_a_negative_balance_is_reported(history: History, conn: asyncpg.Connection) -> None:
    # The check constraint forbids it; a migration that dropped it by mistake would not.
    await conn.execute(
        "ALTER TABLE loyalty_cards DROP CONSTRAINT ck_loyalty_cards_points_balance_non_negative"
    )
    await conn.execute(
        "UPDATE loyalty_cards SET points_balance = -5 WHERE card_number = $1", history.other_card
    )
    report = await audit(conn, history)
    found = {(d.check, d.field): d.actual for d in report.differences}
    assert found == {
        ("negative", "points_balance"): -5,
        ("balance", "points_balance"): -5,
        ("lots", "points_balance (released lots)"): -5,
    }


async def test_an_output_left_unsent_is_reported_after_the_grace_period(
    history: History, conn: asyncpg.Connection
) -> None:
    await insert_outbox(
        conn,
        [("loyalty.results.v1", "k", {})],
        created_at=datetime.now(UTC) - timedelta(minutes=10),
    )
    late = await audit(conn, history, unsent_grace_s=60)
    (unsent,) = late.differences
    assert (unsent.check, unsent.field, unsent.actual) == (
        "outbox",
        "unsent loyalty.results.v1",
        1,
    )
    assert (await audit(conn, history, unsent_grace_s=3600)).clean


async def test_the_command_exits_1_listing_differences_and_0_when_clean(
    history: History, database_url: str
) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "UPDATE loyalty_cards SET stamp_count = stamp_count + 3 WHERE card_number = $1",
            history.other_card,
        )
        try:
            dirty = await _loyalty_audit(database_url, history.merchant, "--json")
        finally:
            await conn.execute(
                "UPDATE loyalty_cards SET stamp_count = stamp_count - 3 WHERE card_number = $1",
                history.other_card,
            )
    finally:
        await conn.close()
    assert dirty.returncode == 1, dirty.stderr
    report = json.loads(dirty.stdout)
    assert report["clean"] is False and report["totals"]["balance"] == 1
    (difference,) = report["differences"]
    assert set(difference) == {f.name for f in dataclasses.fields(Difference)}
    assert {k: difference[k] for k in ("check", "card_number", "merchant_code", "field")} == {
        "check": "balance",
        "card_number": history.other_card,
        "merchant_code": history.merchant,
        "field": "stamp_count",
    }
    assert difference["actual"] == difference["expected"] + 3

    clean = await _loyalty_audit(database_url, history.merchant)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert clean.stdout.strip().endswith(": clean")


async def _loyalty_audit(
    database_url: str, merchant: str, *args: str
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, LOYALTY_DATABASE_URL=database_url)
    command = [sys.executable, "-m", "loyalty", "audit", "--merchant", merchant]
    command += ["--unsent-grace", "60", *args]
    return await asyncio.to_thread(
        subprocess.run, command, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
