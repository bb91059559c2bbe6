"""The dispatcher's queue in SQL, without Kafka or HTTP: what a claim takes, what an outcome
writes, and two dispatchers claiming at once.

On the quiet database: the session's dispatcher process (``dispatcher`` fixture) would claim
these deliveries too if they were in the pipeline's database.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from consumers.pipeline import make_pool
from consumers.webhooks import Dispatcher
from core.settings import Settings
from domain.models import Merchant, WebhookDelivery, WebhookEndpoint
from domain.webhooks.http import Attempt

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
def sessions(quiet_sessions: Sessions) -> Sessions:
    """This module's tests run on the quiet database."""
    return quiet_sessions


MakeDispatcher = Callable[..., Awaitable[Dispatcher]]


@pytest.fixture
async def make_dispatcher(quiet_database: str) -> AsyncIterator[MakeDispatcher]:
    """``await make_dispatcher(per_endpoint=...)``: a dispatcher with a pool of its own and no
    Kafka, enough to claim and record."""
    made: list[Dispatcher] = []

    async def make(per_endpoint: int = 8) -> Dispatcher:
        settings = Settings(
            database_url=quiet_database,
            webhook_per_endpoint=per_endpoint,
            webhook_timeout_s=5,
            webhook_retry_first_s=10,
            webhook_retry_max_s=60,
            webhook_retry_window_s=3600,
        )
        dispatcher = Dispatcher(settings)
        dispatcher.pool = await make_pool(quiet_database, size=2)
        made.append(dispatcher)
        return dispatcher

    yield make
    for dispatcher in made:
        assert dispatcher.pool is not None
        await dispatcher.pool.close()


async def _endpoint(sessions: Sessions, *, active: bool = True) -> int:
    async with sessions.begin() as s:
        merchant = Merchant(code=f"m-{uuid.uuid4().hex[:8]}", name="M")
        s.add(merchant)
        await s.flush()
        endpoint = WebhookEndpoint(
            merchant_id=merchant.id,
            url="https://hooks.example/x",
            secret="whsec_" + "k" * 32,
            event_types=["card.balance_changed"],
            is_active=active,
        )
        s.add(endpoint)
        await s.flush()
        return endpoint.id


async def _queue(
    sessions: Sessions, endpoint_id: int, *cards: str | None, **fields: object
) -> list[int]:
    """Deliveries (pending unless ``fields`` say), one per card given, in that order; their
    ids."""
    async with sessions.begin() as s:
        rows = [
            WebhookDelivery(
                endpoint_id=endpoint_id,
                event_id=uuid.uuid4(),
                event_type="card.balance_changed",
                card_number=card,
                body=b"{}",
                **{"status": "pending", "attempts": 0, **fields},
            )
            for card in cards
        ]
        for row in rows:  # one at a time: ids in the order given
            s.add(row)
            await s.flush()
        return [r.id for r in rows]


async def _ids(dispatcher: Dispatcher, slots: int = 64) -> list[int]:
    return sorted(d.id for d in await dispatcher.claim(slots))


async def test_a_claim_takes_each_cards_oldest_delivery_only(
    sessions: Sessions, make_dispatcher: MakeDispatcher
) -> None:
    dispatcher = await make_dispatcher()
    endpoint = await _endpoint(sessions)
    a1, b1, a2, n1, n2, a3 = await _queue(sessions, endpoint, "A", "B", "A", None, None, "A")

    claimed = await dispatcher.claim(64)
    assert sorted(d.id for d in claimed) == [a1, b1, n1, n2]  # card-less ones are not ordered
    assert {d.attempts for d in claimed} == {1}
    assert await _ids(dispatcher) == []  # A and B have an attempt under way

    await _set(sessions, a1, status="delivered", lease_until=None)
    assert await _ids(dispatcher) == [a2]
    await _set(sessions, a2, status="parked", lease_until=None)  # parked: the next one goes
    assert await _ids(dispatcher) == [a3]


async def test_a_claim_keeps_to_the_endpoints_slots_and_the_free_ones(
    sessions: Sessions, make_dispatcher: MakeDispatcher
) -> None:
    dispatcher = await make_dispatcher(per_endpoint=2)
    one, two = await _endpoint(sessions), await _endpoint(sessions)
    first = await _queue(sessions, one, "A", "B", "C", "D")
    second = await _queue(sessions, two, "A", "B", "C")

    assert await _ids(dispatcher, slots=3) == [first[0], first[1], second[0]]
    assert await _ids(dispatcher) == [second[1]]  # endpoint one has its 2 under way
    await _set(sessions, first[0], status="delivered", lease_until=None)
    assert await _ids(dispatcher) == [first[2]]


async def test_a_claim_skips_what_is_not_due_leased_paused_or_deleted(
    sessions: Sessions, make_dispatcher: MakeDispatcher
) -> None:
    dispatcher = await make_dispatcher()
    now = datetime.now(UTC)
    live, paused = await _endpoint(sessions), await _endpoint(sessions, active=False)
    (later,) = await _queue(sessions, live, "A", next_attempt_at=now + timedelta(minutes=5))
    (leased,) = await _queue(sessions, live, "B", lease_until=now + timedelta(minutes=5))
    (expired,) = await _queue(sessions, live, "C", lease_until=now - timedelta(seconds=1))
    await _queue(sessions, paused, "D")
    deleted = await _endpoint(sessions)
    await _queue(sessions, deleted, "E")
    async with sessions.begin() as s:
        await s.execute(
            text("UPDATE webhook_endpoints SET deleted_at = now() WHERE id = :id"), {"id": deleted}
        )
    gone = await _endpoint(sessions)
    await _queue(sessions, gone, "F")
    async with sessions.begin() as s:
        await s.execute(
            text(
                "UPDATE merchants SET deleted_at = now()"
                " WHERE id = (SELECT merchant_id FROM webhook_endpoints WHERE id = :id)"
            ),
            {"id": gone},
        )

    # A lease that ran out (its dispatcher died) is taken again; the others wait.
    assert await _ids(dispatcher) == [expired]
    await _set(sessions, later, next_attempt_at=now - timedelta(seconds=1))
    assert await _ids(dispatcher) == [later]
    assert leased not in await _ids(dispatcher)


async def test_two_dispatchers_claiming_at_once_never_take_the_same_delivery(
    sessions: Sessions, make_dispatcher: MakeDispatcher
) -> None:
    one = await make_dispatcher(per_endpoint=100)
    two = await make_dispatcher(per_endpoint=100)
    endpoint = await _endpoint(sessions)
    queued = await _queue(sessions, endpoint, *(f"card-{i}" for i in range(60)))

    taken: list[int] = []
    for _ in range(8):
        first, second = await asyncio.gather(one.claim(8), two.claim(8))
        mine, theirs = {d.id for d in first}, {d.id for d in second}
        assert not mine & theirs
        taken += [*mine, *theirs]
    # Rows the other one holds are skipped, not waited for; by the eighth round all are taken.
    assert sorted(taken) == queued


async def test_outcomes_deliver_retry_or_park(
    sessions: Sessions, make_dispatcher: MakeDispatcher
) -> None:
    dispatcher = await make_dispatcher()
    endpoint = await _endpoint(sessions)
    long_ago = datetime.now(UTC) - timedelta(hours=2)  # past the 1 h window of these settings
    ok, retried, stale = await _queue(sessions, endpoint, "A", "B", "C")
    (old,) = await _queue(sessions, endpoint, "D", retry_from=long_ago)
    claimed = {d.id: d for d in await dispatcher.claim(64)}
    assert set(claimed) == {ok, retried, stale, old}

    await dispatcher._record(claimed[ok], Attempt(204, None))
    await dispatcher._record(claimed[retried], Attempt(503, "HTTP 503: busy"))
    await dispatcher._record(claimed[old], Attempt(None, "timed out after 5 s"))
    # An attempt whose lease ran out while another dispatcher tried again: its outcome is
    # not the latest and is dropped.
    await _set(sessions, stale, attempts=2)
    await dispatcher._record(claimed[stale], Attempt(500, "HTTP 500"))

    conn = await asyncpg.connect(dispatcher.settings.db_url)
    try:
        rows = {
            r["id"]: r
            for r in await conn.fetch(
                "SELECT id, status, attempts, lease_until, last_status, last_error, delivered_at,"
                " next_attempt_at - now() AS wait FROM webhook_deliveries"
            )
        }
    finally:
        await conn.close()
    assert (rows[ok]["status"], rows[ok]["last_status"], rows[ok]["lease_until"]) == (
        "delivered",
        204,
        None,
    )
    assert rows[ok]["delivered_at"] is not None
    row = rows[retried]
    assert (row["status"], row["attempts"], row["last_error"], row["lease_until"]) == (
        "pending",
        1,
        "HTTP 503: busy",
        None,
    )
    assert timedelta(seconds=4) < row["wait"] <= timedelta(seconds=10)  # the first step, jittered
    assert (rows[old]["status"], rows[old]["last_error"]) == ("parked", "timed out after 5 s")
    assert (rows[stale]["status"], rows[stale]["last_error"]) == ("pending", None)


async def _set(sessions: Sessions, delivery_id: int, **values: object) -> None:
    async with sessions.begin() as s:
        row = await s.get(WebhookDelivery, delivery_id)
        assert row is not None
        for name, value in values.items():
            setattr(row, name, value)


async def test_gauges_count_live_endpoints_and_prune_keeps_a_week(
    sessions: Sessions, make_dispatcher: MakeDispatcher
) -> None:
    dispatcher = await make_dispatcher()
    now = datetime.now(UTC)
    live, deleted = await _endpoint(sessions), await _endpoint(sessions)
    await _queue(sessions, live, "A", "B")
    await _queue(sessions, live, "C", status="parked")
    await _queue(sessions, deleted, "D")
    await _queue(sessions, deleted, "E", status="parked")
    old, recent = await _queue(sessions, live, "F", "G", status="delivered")
    await _set(sessions, old, delivered_at=now - timedelta(days=7, minutes=1))
    await _set(sessions, recent, delivered_at=now - timedelta(days=6, hours=23))
    async with sessions.begin() as s:
        await s.execute(
            text("UPDATE webhook_endpoints SET deleted_at = now() WHERE id = :id"), {"id": deleted}
        )

    await dispatcher.update_gauges()
    names = ("loyalty_webhook_pending", "loyalty_webhook_parked")
    assert [REGISTRY.get_sample_value(name) for name in names] == [2, 1]
    assert await dispatcher.prune() == 1
    async with sessions() as s:
        assert await s.get(WebhookDelivery, old) is None
        assert await s.get(WebhookDelivery, recent) is not None
