"""A campaign's budget read without a lock: a batch whose awards no longer fit, because
others awarded after it read the budget, rolls back and is applied again with the campaign
locked (``engine.state.BudgetOvertaken``), against the real PostgreSQL.

The other writer here is a plain transaction on a second connection, committed between the
batch's read of the campaign and its end: with the row locked at the read (the engine before
2026-12-07) that transaction would wait for the batch instead, and these tests time out.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from admin_ui import domain_api
from domain.engine import state as engine_state
from domain.engine.batch import process_batch
from domain.engine.state import BudgetOvertaken
from tests.domain.test_ledger_properties import T0, _events, _seed


@pytest.fixture(autouse=True)
def no_campaign_locked(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process's campaigns locked after a race: none at each test's start, and the test's
    own are forgotten after it."""
    monkeypatch.setattr(engine_state, "_LOCKED_CAMPAIGNS", set())


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(database_url)
    try:
        yield c
    finally:
        await c.close()


async def _shop(conn: asyncpg.Connection, budget: int) -> tuple[str, str, int]:
    """A merchant with a 50-point bonus campaign under ``budget``, and one enrolled card."""
    code = f"b{uuid.uuid4().hex[:10]}"
    store = await _seed(conn, code)
    campaign_id = await conn.fetchval(
        "INSERT INTO campaigns (program_id, code, name, status, multiplier, bonus_points,"
        " min_basket_cents, budget_points, points_awarded)"
        " SELECT p.id, 'bonus', 'Bonus', 'active', 1, 50, 0, $2, 0"
        " FROM loyalty_programs p JOIN merchants m ON m.id = p.merchant_id WHERE m.code = $1"
        " RETURNING id",
        code,
        budget,
    )
    async with conn.transaction():
        await process_batch(conn, _events(code, store, [(("enrol", 1), 0)]), T0)
    return code, store, campaign_id


def _purchase(code: str, store: str) -> list[Any]:
    return _events(code, store, [(("purchase", 1, 1000, 0), 60)])


def _others_award(
    monkeypatch: pytest.MonkeyPatch, database_url: str, campaign_id: int, points: int
) -> list[int]:
    """Once, right after a batch read the campaigns: another transaction awards ``points``
    and commits. Returns the list that counts the times it did."""
    original: Callable[..., Any] = engine_state.load_stores
    done: list[int] = []

    async def load_stores(*args: Any) -> None:
        await original(*args)
        if not done:
            other = await asyncpg.connect(database_url)
            try:
                await asyncio.wait_for(
                    other.execute(
                        "UPDATE campaigns SET points_awarded = points_awarded + $2 WHERE id = $1",
                        campaign_id,
                        points,
                    ),
                    timeout=10,
                )
            finally:
                await other.close()
            done.append(points)

    monkeypatch.setattr("domain.engine.unit_of_work.load_stores", load_stores)
    return done


async def _awarded(conn: asyncpg.Connection, campaign_id: int) -> int:
    return int(
        await conn.fetchval("SELECT points_awarded FROM campaigns WHERE id = $1", campaign_id)
    )


async def test_a_batch_overtaken_on_the_budget_rolls_back_then_awards_what_remains(
    conn: asyncpg.Connection, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, store, campaign_id = await _shop(conn, budget=100)
    done = _others_award(monkeypatch, database_url, campaign_id, 90)
    events = _purchase(code, store)

    # It read 0 of 100 awarded and gave 50; 90 were awarded meanwhile.
    with pytest.raises(BudgetOvertaken):
        async with conn.transaction():
            await process_batch(conn, events, T0)
    assert done == [90]
    assert campaign_id in engine_state._LOCKED_CAMPAIGNS
    assert await _awarded(conn, campaign_id) == 90  # the batch's 50 rolled back

    async with conn.transaction():
        outcome = await process_batch(conn, events, T0)
    [result] = outcome.results
    assert result.campaigns == [{"id": "bonus", "points": 10}]
    assert await _awarded(conn, campaign_id) == 100


async def test_awards_made_meanwhile_that_leave_room_are_added_to(
    conn: asyncpg.Connection, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, store, campaign_id = await _shop(conn, budget=100)
    done = _others_award(monkeypatch, database_url, campaign_id, 30)

    async with conn.transaction():
        outcome = await process_batch(conn, _purchase(code, store), T0)

    assert done == [30]
    [result] = outcome.results
    assert result.campaigns == [{"id": "bonus", "points": 50}]
    assert await _awarded(conn, campaign_id) == 80
    assert not engine_state._LOCKED_CAMPAIGNS


async def test_a_campaign_locked_after_a_race_is_read_under_its_lock(
    conn: asyncpg.Connection, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, store, campaign_id = await _shop(conn, budget=100)
    original: Callable[..., Any] = engine_state.load_stores
    blocked: list[bool] = []

    async def load_stores(*args: Any) -> None:
        await original(*args)
        # Right after the read, before any award: does another writer of the row wait?
        other = await asyncpg.connect(database_url)
        try:
            await other.execute("SET lock_timeout = '200ms'")
            await other.execute(
                "UPDATE campaigns SET points_awarded = points_awarded WHERE id = $1", campaign_id
            )
            blocked.append(False)
        except asyncpg.LockNotAvailableError:
            blocked.append(True)
        finally:
            await other.close()

    monkeypatch.setattr("domain.engine.unit_of_work.load_stores", load_stores)
    first, second = _events(
        code, store, [(("purchase", 1, 1000, 0), 60), (("purchase", 1, 900, 0), 90)]
    )
    async with conn.transaction():
        await process_batch(conn, [first], T0)
    monkeypatch.setattr(engine_state, "_LOCKED_CAMPAIGNS", {campaign_id})
    async with conn.transaction():
        await process_batch(conn, [second], T0)

    assert blocked == [False, True]
    assert await _awarded(conn, campaign_id) == 100


async def test_the_staff_terminal_applies_an_overtaken_purchase_again_in_its_transaction(
    conn: asyncpg.Connection,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    code, store, campaign_id = await _shop(conn, budget=100)
    done = _others_award(monkeypatch, database_url, campaign_id, 90)

    async with db_sessions() as session, session.begin():
        outcome = await domain_api.apply_events(session, _purchase(code, store), T0)

    assert done == [90]
    [result] = outcome.results
    assert result.campaigns == [{"id": "bonus", "points": 10}]
    assert await _awarded(conn, campaign_id) == 100
    purchases = await conn.fetchval(
        "SELECT count(*) FROM purchases p JOIN merchants m ON m.id = p.merchant_id"
        " WHERE m.code = $1",
        code,
    )
    assert purchases == 1  # the first try's rows rolled back with its savepoint
