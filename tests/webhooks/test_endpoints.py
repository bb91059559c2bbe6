"""The endpoints service against the real database: create, update, rotate, delete, re-send.

On the quiet database (no dispatcher claims the deliveries these tests queue), emptied for
each test.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain import webhooks
from domain.models import Merchant, WebhookDelivery, WebhookEndpoint
from domain.soft_delete import soft_delete
from domain.webhooks import EndpointNotFound, EndpointSpec, WebhookError
from domain.webhooks.queue import NOTIFY_CHANNEL
from tests.support.seed import seed_merchant

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
def sessions(quiet_sessions: Sessions) -> Sessions:
    """This module's tests run on the quiet database."""
    return quiet_sessions


URL = "http://127.0.0.1:9/hooks"
ALL = webhooks.WEBHOOK_EVENT_TYPES


async def _merchant(sessions: Sessions) -> int:
    async with sessions() as s:
        merchant, _, _ = await seed_merchant(s, stores=1)
    return merchant.id


async def test_create_gives_a_secret_and_stores_the_normalised_settings(
    sessions: Sessions,
) -> None:
    merchant_id = await _merchant(sessions)
    async with sessions.begin() as s:
        spec = EndpointSpec("HTTP://127.0.0.1:9/hooks#x", ("tier.changed", "event.processed"))
        endpoint = await webhooks.create_endpoint(s, merchant_id, spec, allow_private=True)
        own = await webhooks.create_endpoint(
            s,
            merchant_id,
            EndpointSpec(URL + "/2", ALL, " Shop ", is_active=False, secret="x" * 20),
            allow_private=True,
        )
    assert endpoint.url == URL
    assert endpoint.event_types == ["event.processed", "tier.changed"]
    assert endpoint.secret.startswith("whsec_") and len(endpoint.secret) >= 40
    assert (endpoint.description, endpoint.is_active) == (None, True)
    assert (own.secret, own.description, own.is_active) == ("x" * 20, "Shop", False)
    async with sessions() as s:
        listed = await webhooks.list_endpoints(s, merchant_id)
    assert [e.id for e in listed] == [endpoint.id, own.id]


async def test_create_refuses_with_the_field_named(sessions: Sessions) -> None:
    merchant_id = await _merchant(sessions)
    async with sessions.begin() as s:
        await webhooks.create_endpoint(s, merchant_id, EndpointSpec(URL, ALL), allow_private=True)
    cases = [
        (EndpointSpec(URL, ALL), True, "url", "another endpoint of this merchant"),
        (EndpointSpec("http://127.0.0.1/x", ALL), False, "url", "must be an https://"),
        (EndpointSpec("https://127.0.0.1/x", ALL), False, "url", "127.0.0.1, a loopback"),
        (EndpointSpec(URL + "/x", ("card.created",)), True, "event_types", "unknown type"),
    ]
    for spec, allow_private, field, message in cases:
        async with sessions() as s:
            with pytest.raises(WebhookError) as refused:
                await webhooks.create_endpoint(s, merchant_id, spec, allow_private=allow_private)
        assert refused.value.field == field
        assert refused.value.message.startswith(message), refused.value.message
    async with sessions.begin() as s:
        await soft_delete(s, Merchant, [merchant_id], by="test")
    async with sessions() as s:
        with pytest.raises(WebhookError) as refused:
            await webhooks.create_endpoint(
                s, merchant_id, EndpointSpec(URL + "/y", ALL), allow_private=True
            )
    assert refused.value.field == "merchant"


async def test_update_keeps_the_secret_unless_given_and_rotate_replaces_it(
    sessions: Sessions,
) -> None:
    merchant_id = await _merchant(sessions)
    async with sessions.begin() as s:
        endpoint = await webhooks.create_endpoint(
            s, merchant_id, EndpointSpec(URL, ALL), allow_private=True
        )
        other = await webhooks.create_endpoint(
            s, merchant_id, EndpointSpec(URL + "/other", ALL), allow_private=True
        )
    secret = endpoint.secret
    async with sessions.begin() as s:
        changed = await webhooks.update_endpoint(
            s,
            endpoint.id,
            EndpointSpec(URL + "/new", ("card.balance_changed",), "Till", is_active=False),
            allow_private=True,
        )
    assert (changed.url, changed.event_types, changed.description, changed.is_active) == (
        URL + "/new",
        ["card.balance_changed"],
        "Till",
        False,
    )
    assert changed.secret == secret
    async with sessions.begin() as s:
        given = await webhooks.update_endpoint(
            s, endpoint.id, EndpointSpec(URL, ALL, secret="y" * 32), allow_private=True
        )
    assert given.secret == "y" * 32
    async with sessions.begin() as s:
        rotated = await webhooks.rotate_secret(s, endpoint.id)
    async with sessions() as s:
        stored = await webhooks.get_endpoint(s, endpoint.id)
    assert rotated == stored.secret and rotated.startswith("whsec_") and rotated != "y" * 32
    async with sessions() as s:
        with pytest.raises(WebhookError) as refused:
            await webhooks.update_endpoint(
                s, endpoint.id, EndpointSpec(other.url, ALL), allow_private=True
            )
    assert refused.value.field == "url"


async def test_delete_hides_the_endpoint_and_parks_its_pending_deliveries(
    sessions: Sessions,
) -> None:
    merchant_id = await _merchant(sessions)
    async with sessions.begin() as s:
        endpoint = await webhooks.create_endpoint(
            s, merchant_id, EndpointSpec(URL, ALL), allow_private=True
        )
        pending, delivered = _delivery(endpoint.id), _delivery(endpoint.id, status="delivered")
        s.add_all([pending, delivered])
    async with sessions.begin() as s:
        await webhooks.delete_endpoint(s, endpoint.id, by="admin@cafe")
    async with sessions() as s:
        gone = await s.get(WebhookEndpoint, endpoint.id)
        rows = {
            d.id: d
            for d in await s.scalars(
                select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
            )
        }
        assert gone is not None and gone.deleted_at is not None
        assert gone.deleted_by == "admin@cafe"
        assert await webhooks.list_endpoints(s, merchant_id) == []
        with pytest.raises(EndpointNotFound):
            await webhooks.get_endpoint(s, endpoint.id)
        with pytest.raises(EndpointNotFound):
            await webhooks.resend(s, endpoint.id, None)
        with pytest.raises(EndpointNotFound):
            await webhooks.delete_endpoint(s, endpoint.id, by="again")
    assert (rows[pending.id].status, rows[pending.id].last_error) == ("parked", "endpoint deleted")
    assert rows[delivered.id].status == "delivered"


async def test_resend_puts_parked_deliveries_back_one_by_one_or_all(
    sessions: Sessions, quiet_database: str
) -> None:
    merchant_id = await _merchant(sessions)
    long_ago = datetime.now(UTC) - timedelta(days=2)
    async with sessions.begin() as s:
        endpoint = await webhooks.create_endpoint(
            s, merchant_id, EndpointSpec(URL, ALL), allow_private=True
        )
        neighbour = await webhooks.create_endpoint(
            s, merchant_id, EndpointSpec(URL + "/n", ALL), allow_private=True
        )
        parked = [
            _delivery(endpoint.id, status="parked", attempts=9, retry_from=long_ago)
            for _ in range(3)
        ]
        others = [
            _delivery(endpoint.id, status="delivered"),
            _delivery(endpoint.id, status="pending", attempts=2),
            _delivery(neighbour.id, status="parked", attempts=4),
        ]
        s.add_all([*parked, *others])
    listener = await asyncpg.connect(quiet_database)
    woken = asyncio.Event()
    await listener.add_listener(NOTIFY_CHANNEL, lambda *_: woken.set())
    try:
        async with sessions.begin() as s:
            # Only parked deliveries of this endpoint count; the others' ids are ignored.
            one = await webhooks.resend(s, endpoint.id, [parked[0].id, *(o.id for o in others)])
        await asyncio.wait_for(woken.wait(), 10)
        async with sessions.begin() as s:
            rest = await webhooks.resend(s, endpoint.id, None)
            again = await webhooks.resend(s, endpoint.id, None)
            nothing = await webhooks.resend(s, endpoint.id, [])
    finally:
        await listener.close()
    assert (one, rest, again, nothing) == (1, 2, 0, 0)
    async with sessions() as s:
        rows = {
            d.id: d
            for d in await s.scalars(
                select(WebhookDelivery).where(
                    WebhookDelivery.id.in_([d.id for d in (*parked, *others)])
                )
            )
        }
    for d in parked:
        row = rows[d.id]
        assert (row.status, row.attempts, row.lease_until) == ("pending", 0, None)
        assert row.retry_from > long_ago + timedelta(days=1)
        assert row.next_attempt_at <= datetime.now(UTC)
        assert row.last_error == "HTTP 500"  # kept: what went wrong before the re-send
    assert [rows[o.id].status for o in others] == ["delivered", "pending", "parked"]
    assert rows[others[1].id].attempts == 2


def _delivery(
    endpoint_id: int,
    *,
    status: str = "pending",
    attempts: int = 0,
    retry_from: datetime | None = None,
) -> WebhookDelivery:
    delivery = WebhookDelivery(
        endpoint_id=endpoint_id,
        event_id=uuid.uuid4(),
        event_type="card.balance_changed",
        card_number="1234-5678-9012",
        body=b"{}",
        status=status,
        attempts=attempts,
        last_error="HTTP 500" if status == "parked" else None,
        last_status=500 if status == "parked" else None,
    )
    if retry_from is not None:
        delivery.retry_from = retry_from
    return delivery
