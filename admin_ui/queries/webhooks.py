"""A merchant's webhook endpoints and their deliveries as the panel lists and edits them
(issue 16), through the webhook service (``domain.webhooks``).

Every function takes the signed-in admin. An endpoint or a delivery of a merchant the admin
does not see is "not found" (``None``, an empty page, or a ``DomainRefusal`` for a write),
exactly as if it did not exist, whatever id a URL names; so are deleted endpoints and the
endpoints of a deleted merchant. A signing secret leaves this module only masked, except the
one a creation or a rotation returns to be shown that once. Writes flush; the caller commits.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import String, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from admin_ui.problems import DomainRefusal, FieldProblem, FieldsRefused
from admin_ui.queries.admins import Principal
from admin_ui.queries.common import PageRequest, Rows, like, page, scoped
from domain import webhooks
from domain.models import Merchant, WebhookDelivery, WebhookEndpoint

EVENT_TYPES: tuple[str, ...] = webhooks.WEBHOOK_EVENT_TYPES
"""The output types an endpoint may be sent, in the order the form offers them."""
EndpointSpec = webhooks.EndpointSpec
"""What the endpoint form holds (``secret`` is never set by the panel: the service makes it)."""

DeliveryStatus = Literal["pending", "parked", "delivered"]
DELIVERY_STATUSES: tuple[DeliveryStatus, ...] = ("pending", "parked", "delivered")
# How far back "delivered" counts on the list of endpoints; pending and parked ones count
# whatever their age, as they are what needs attention.
RECENT = timedelta(hours=24)
NOT_FOUND = "this webhook endpoint does not exist or is deleted"
NO_MERCHANT = "this merchant does not exist or is deleted"


@dataclass(frozen=True)
class WebhookMerchant:
    """The merchant whose endpoints a page shows, and the clock its times are shown on."""

    id: int
    code: str
    name: str
    timezone: str


@dataclass(frozen=True)
class EndpointRow:
    """An endpoint as its list and its page show it: its settings, its masked secret, and
    how its deliveries fare (``delivered_recently``: within ``RECENT``; the last error is the
    newest one of a delivery not delivered yet)."""

    id: int
    merchant_id: int
    url: str
    event_types: tuple[str, ...]
    description: str | None
    is_active: bool
    secret_hint: str
    created_at: datetime
    pending: int
    parked: int
    delivered_recently: int
    last_delivered_at: datetime | None
    last_error: str | None
    last_status: int | None


@dataclass(frozen=True)
class DeliveryRow:
    """One message for an endpoint, from queued to delivered or parked."""

    id: int
    event_id: str
    event_type: str
    card_number: str | None
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime


def mask_secret(secret: str) -> str:
    """A secret as the pages show it after its one showing: ``whsec_…abcd``."""
    head, sep, rest = secret.partition("_")
    if not (sep and head.isalpha() and len(head) <= 8):
        # No kind prefix: the random part may itself hold a "_".
        head, sep, rest = "", "", secret
    # The last four tell two secrets apart; of a short secret they would give too much away.
    tail = rest[-4:] if len(rest) >= 16 else ""
    return f"{head}{sep}…{tail}"


@contextmanager
def _refusals() -> Iterator[None]:
    # The service names the field it refuses: the form writes the sentence under it.
    try:
        yield
    except webhooks.WebhookError as exc:
        if exc.field == "endpoint":  # deleted meanwhile, by someone else
            raise DomainRefusal(NOT_FOUND) from None
        if exc.field == "merchant":
            raise DomainRefusal(NO_MERCHANT) from None
        raise FieldsRefused([FieldProblem(exc.field, exc.message)]) from None


async def webhook_merchant(
    session: AsyncSession, me: Principal, merchant_id: int
) -> WebhookMerchant | None:
    """The live merchant, when this admin may see it; else ``None``."""
    if not me.sees(merchant_id):
        return None
    merchant = await session.scalar(select(Merchant).where(Merchant.id == merchant_id))
    if merchant is None:
        return None
    return WebhookMerchant(merchant.id, merchant.code, merchant.name, merchant.timezone)


def _endpoints(me: Principal) -> Any:
    """Live endpoints of live merchants this admin sees, with their figures."""
    d = WebhookDelivery
    e = WebhookEndpoint

    def newest(column: Any, *where: Any) -> Any:
        # The newest delivery by id: the (endpoint, status, id) index reads it backwards.
        return (
            select(column)
            .where(d.endpoint_id == e.id, *where)
            .order_by(d.id.desc())
            .limit(1)
            .correlate(e)
            .scalar_subquery()
        )

    failing = (d.status.in_(("pending", "parked")), d.last_error.is_not(None))
    query = (
        select(
            e,
            newest(d.delivered_at, d.status == "delivered"),
            newest(d.last_error, *failing),
            newest(d.last_status, *failing),
        )
        .join(Merchant, Merchant.id == e.merchant_id)
        .where(e.deleted_at.is_(None))
    )
    return scoped(query, e.merchant_id, me)


async def _counts(
    session: AsyncSession, endpoint_ids: Sequence[int], now: datetime
) -> dict[int, tuple[int, int, int]]:
    """(pending, parked, delivered within ``RECENT``) per endpoint."""
    if not endpoint_ids:
        return {}
    d = WebhookDelivery
    since = now - RECENT
    rows = (
        await session.execute(
            select(
                d.endpoint_id,
                func.count().filter(d.status == "pending"),
                func.count().filter(d.status == "parked"),
                func.count().filter(d.status == "delivered"),
            )
            .where(
                d.endpoint_id.in_(endpoint_ids),
                or_(
                    d.status.in_(("pending", "parked")),
                    (d.status == "delivered") & (d.delivered_at >= since),
                ),
            )
            .group_by(d.endpoint_id)
        )
    ).all()
    return {r[0]: (int(r[1]), int(r[2]), int(r[3])) for r in rows}


async def _rows(session: AsyncSession, query: Any, now: datetime) -> list[EndpointRow]:
    found = (await session.execute(query.order_by(WebhookEndpoint.id))).all()
    counts = await _counts(session, [r[0].id for r in found], now)
    rows = []
    for endpoint, delivered_at, error, status in found:
        pending, parked, delivered = counts.get(endpoint.id, (0, 0, 0))
        rows.append(
            EndpointRow(
                id=endpoint.id,
                merchant_id=endpoint.merchant_id,
                url=endpoint.url,
                event_types=tuple(endpoint.event_types),
                description=endpoint.description,
                is_active=endpoint.is_active,
                secret_hint=mask_secret(endpoint.secret),
                created_at=endpoint.created_at,
                pending=pending,
                parked=parked,
                delivered_recently=delivered,
                last_delivered_at=delivered_at,
                last_error=error,
                last_status=status,
            )
        )
    return rows


async def list_endpoints(
    session: AsyncSession, me: Principal, merchant_id: int, *, now: datetime
) -> list[EndpointRow]:
    """The merchant's live endpoints in the order they were made (a merchant has a few);
    nothing for a merchant this admin does not see."""
    if not me.sees(merchant_id):
        return []
    query = _endpoints(me).where(WebhookEndpoint.merchant_id == merchant_id)
    return await _rows(session, query, now)


async def find_endpoint(
    session: AsyncSession, me: Principal, endpoint_id: int, *, now: datetime
) -> tuple[EndpointRow, WebhookMerchant] | None:
    """A live endpoint and its merchant, when this admin sees the merchant; else ``None``."""
    rows = await _rows(session, _endpoints(me).where(WebhookEndpoint.id == endpoint_id), now)
    if not rows:
        return None
    merchant = await webhook_merchant(session, me, rows[0].merchant_id)
    return (rows[0], merchant) if merchant is not None else None


async def list_deliveries(
    session: AsyncSession,
    me: Principal,
    endpoint_id: int,
    status: DeliveryStatus | None,
    request: PageRequest,
) -> Rows[DeliveryRow]:
    """The endpoint's deliveries, newest first, of one status (or all), matching the search
    (card number, event id or type); nothing when this admin does not see the endpoint."""
    d = WebhookDelivery
    query = (
        select(d)
        .join(WebhookEndpoint, WebhookEndpoint.id == d.endpoint_id)
        .join(Merchant, Merchant.id == WebhookEndpoint.merchant_id)
        .where(d.endpoint_id == endpoint_id, WebhookEndpoint.deleted_at.is_(None))
    )
    query = scoped(query, WebhookEndpoint.merchant_id, me)
    if status is not None:
        query = query.where(d.status == status)
    if request.search:
        pattern = like(request.search)
        query = query.where(
            or_(
                d.card_number.ilike(pattern),
                cast(d.event_id, String).ilike(pattern),
                d.event_type.ilike(pattern),
            )
        )
    found, total = await page(session, query, request, d.id.desc())
    return Rows([_delivery(r[0]) for r in found], total)


def _delivery(d: WebhookDelivery) -> DeliveryRow:
    return DeliveryRow(
        id=d.id,
        event_id=str(d.event_id),
        event_type=d.event_type,
        card_number=d.card_number,
        status=d.status,
        attempts=d.attempts,
        next_attempt_at=d.next_attempt_at,
        last_status=d.last_status,
        last_error=d.last_error,
        delivered_at=d.delivered_at,
        created_at=d.created_at,
    )


async def _writable(session: AsyncSession, me: Principal, endpoint_id: int) -> int:
    """The merchant of a live endpoint this admin may change; ``DomainRefusal`` otherwise."""
    query = (
        select(WebhookEndpoint.merchant_id)
        .join(Merchant, Merchant.id == WebhookEndpoint.merchant_id)
        .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.deleted_at.is_(None))
    )
    merchant_id = await session.scalar(scoped(query, WebhookEndpoint.merchant_id, me))
    if merchant_id is None:
        raise DomainRefusal(NOT_FOUND)
    return int(merchant_id)


async def create_endpoint(
    session: AsyncSession,
    me: Principal,
    merchant_id: int,
    spec: webhooks.EndpointSpec,
    *,
    allow_private: bool,
) -> tuple[int, str]:
    """A new endpoint of the merchant; its id and its secret, to be shown this once.
    ``FieldsRefused`` names a refused field (a URL that is not HTTPS, no type chosen)."""
    if await webhook_merchant(session, me, merchant_id) is None:
        raise DomainRefusal(NO_MERCHANT)
    with _refusals():
        endpoint = await webhooks.create_endpoint(
            session, merchant_id, spec, allow_private=allow_private
        )
    return endpoint.id, endpoint.secret


async def update_endpoint(
    session: AsyncSession,
    me: Principal,
    endpoint_id: int,
    spec: webhooks.EndpointSpec,
    *,
    allow_private: bool,
) -> None:
    """Save an endpoint's URL, types, description and switch; its secret stays."""
    await _writable(session, me, endpoint_id)
    with _refusals():
        await webhooks.update_endpoint(session, endpoint_id, spec, allow_private=allow_private)


async def rotate_secret(session: AsyncSession, me: Principal, endpoint_id: int) -> str:
    """A new secret for the endpoint (the old one stops signing at once), to be shown once."""
    await _writable(session, me, endpoint_id)
    with _refusals():
        return await webhooks.rotate_secret(session, endpoint_id)


async def delete_endpoint(session: AsyncSession, me: Principal, endpoint_id: int) -> None:
    """Soft-delete an endpoint: nothing more is queued for it."""
    await _writable(session, me, endpoint_id)
    with _refusals():
        await webhooks.delete_endpoint(session, endpoint_id, by=me.actor)


async def resend(
    session: AsyncSession, me: Principal, endpoint_id: int, delivery_ids: Sequence[int] | None
) -> int:
    """Queue parked deliveries of the endpoint again (these, or all of them with ``None``);
    how many were parked and are pending now."""
    await _writable(session, me, endpoint_id)
    with _refusals():
        return await webhooks.resend(session, endpoint_id, delivery_ids)
