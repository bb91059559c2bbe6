"""Merchants' webhook endpoints: create, change, rotate the secret, delete, re-send parked
deliveries. For the admin panel and the provisioning file alike.

Plain async functions over an ``AsyncSession``, in the caller's transaction (they flush, the
caller commits). Every URL goes through ``check_url`` with the caller's ``allow_private``
(``get_settings().webhook_allow_private``). A merchant has at most one live endpoint per URL,
which is how the provisioning file finds its endpoints again.

``WebhookEndpoint`` is not among the models the session hides when deleted, so every query
here says ``deleted_at IS NULL`` itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.models import Merchant, WebhookDelivery, WebhookEndpoint
from domain.webhooks.errors import EndpointNotFound, WebhookError
from domain.webhooks.queue import ENDPOINT_DELETED, NOTIFY_CHANNEL, PARKED, PENDING
from domain.webhooks.specs import EndpointSpec, check_spec, new_secret


async def list_endpoints(session: AsyncSession, merchant_id: int) -> list[WebhookEndpoint]:
    """The merchant's live endpoints, oldest first."""
    rows = await session.scalars(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.merchant_id == merchant_id, WebhookEndpoint.deleted_at.is_(None))
        .order_by(WebhookEndpoint.id)
    )
    return list(rows)


async def get_endpoint(session: AsyncSession, endpoint_id: int) -> WebhookEndpoint:
    """A live endpoint; ``EndpointNotFound`` when there is none with that id."""
    endpoint = await session.scalar(
        select(WebhookEndpoint).where(
            WebhookEndpoint.id == endpoint_id, WebhookEndpoint.deleted_at.is_(None)
        )
    )
    if endpoint is None:
        raise EndpointNotFound(endpoint_id)
    return endpoint


async def create_endpoint(
    session: AsyncSession, merchant_id: int, spec: EndpointSpec, *, allow_private: bool
) -> WebhookEndpoint:
    """A new endpoint of a live merchant, with a generated secret unless the spec has one.

    Raises ``WebhookError`` naming the field: the URL (form, address, already used by another
    endpoint of the merchant), the types (none, or unknown), the description, the secret.
    """
    checked = check_spec(spec, allow_private=allow_private)
    merchant = await session.scalar(
        select(Merchant.id).where(Merchant.id == merchant_id, Merchant.deleted_at.is_(None))
    )
    if merchant is None:
        raise WebhookError("merchant", f"no merchant {merchant_id} (deleted?)")
    await _refuse_taken_url(session, merchant_id, checked.url, None)
    endpoint = WebhookEndpoint(
        merchant_id=merchant_id,
        url=checked.url,
        secret=checked.secret or new_secret(),
        event_types=list(checked.event_types),
        description=checked.description,
        is_active=checked.is_active,
    )
    session.add(endpoint)
    await session.flush()
    return endpoint


async def update_endpoint(
    session: AsyncSession, endpoint_id: int, spec: EndpointSpec, *, allow_private: bool
) -> WebhookEndpoint:
    """Change a live endpoint to ``spec``; its secret stays unless the spec has one.

    Each attempt uses the URL and secret of the moment it is made. An inactive endpoint is
    paused: no message is queued for it, and deliveries already queued wait until it is
    active again.
    """
    checked = check_spec(spec, allow_private=allow_private)
    endpoint = await get_endpoint(session, endpoint_id)
    if checked.url != endpoint.url:
        await _refuse_taken_url(session, endpoint.merchant_id, checked.url, endpoint.id)
    endpoint.url = checked.url
    if list(checked.event_types) != list(endpoint.event_types):
        endpoint.event_types = list(checked.event_types)
    endpoint.description = checked.description
    endpoint.is_active = checked.is_active
    if checked.secret is not None:
        endpoint.secret = checked.secret
    await session.flush()
    return endpoint


async def rotate_secret(session: AsyncSession, endpoint_id: int) -> str:
    """Give a live endpoint a new generated secret, and return it.

    Attempts from then on are signed with the new one: the receiver should accept both for the
    few minutes a delivery under way may still carry the old one.
    """
    endpoint = await get_endpoint(session, endpoint_id)
    endpoint.secret = new_secret()
    await session.flush()
    return endpoint.secret


async def delete_endpoint(
    session: AsyncSession, endpoint_id: int, *, by: str, at: datetime | None = None
) -> None:
    """Soft-delete a live endpoint (``deleted_at``, ``deleted_by``); its pending deliveries
    are parked with the error ``endpoint deleted`` and never attempted again."""
    endpoint = await get_endpoint(session, endpoint_id)
    endpoint.deleted_at = at or datetime.now(UTC)
    endpoint.deleted_by = by
    endpoint.deletion_id = uuid.uuid4()
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.status == PENDING)
        .values(status=PARKED, lease_until=None, last_error=ENDPOINT_DELETED)
        .execution_options(synchronize_session=False)
    )
    await session.flush()


async def resend(
    session: AsyncSession, endpoint_id: int, delivery_ids: Sequence[int] | None
) -> int:
    """Put parked deliveries of a live endpoint back in the queue (all of them when
    ``delivery_ids`` is ``None``); returns how many.

    Each starts afresh: no attempts, a new retry window from now, due now. Ids that are not
    parked deliveries of this endpoint are ignored. The dispatchers are woken at commit.
    """
    await get_endpoint(session, endpoint_id)
    statement = update(WebhookDelivery).where(
        WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.status == PARKED
    )
    if delivery_ids is not None:
        if not delivery_ids:
            return 0
        statement = statement.where(WebhookDelivery.id.in_(list(delivery_ids)))
    requeued = await session.scalars(
        statement.values(
            status=PENDING,
            attempts=0,
            retry_from=func.now(),
            next_attempt_at=func.now(),
            lease_until=None,
        )
        .returning(WebhookDelivery.id)
        .execution_options(synchronize_session=False)
    )
    count = len(requeued.all())
    if count:
        await session.execute(select(func.pg_notify(NOTIFY_CHANNEL, "")))
    return count


async def _refuse_taken_url(
    session: AsyncSession, merchant_id: int, url: str, endpoint_id: int | None
) -> None:
    taken = await session.scalar(
        select(WebhookEndpoint.id).where(
            WebhookEndpoint.merchant_id == merchant_id,
            WebhookEndpoint.url == url,
            WebhookEndpoint.deleted_at.is_(None),
            WebhookEndpoint.id != (endpoint_id or 0),
        )
    )
    if taken is not None:
        raise WebhookError("url", "another endpoint of this merchant already has this address")
