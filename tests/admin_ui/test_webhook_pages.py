"""The panel's webhooks (issue 16): the queries against the real database (figures, filters,
pages, another merchant's endpoints out of reach whatever id is given), and the pages as a
merchant uses them: add after refusals, the secret shown once then masked, rotate, edit,
delete, and parked deliveries re-sent one by one and in bulk."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from nicegui import ui
from nicegui.testing import User
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from admin_ui.problems import DomainRefusal, FieldsRefused
from admin_ui.queries import webhooks
from admin_ui.queries.admins import Principal
from admin_ui.queries.common import PageRequest
from admin_ui.texts import printable
from core.settings import get_settings
from domain.models import UserRole, WebhookDelivery, WebhookEndpoint
from tests.admin_ui.helpers import (
    ALICE,
    MAIN_FILE,
    PLATFORM,
    WAIT,
    element_error,
    set_value,
    sign_in,
    status_of,
    texts,
)

pytestmark = MAIN_FILE

ROOT = Principal(1, "root", UserRole.PLATFORM_ADMIN, None)
EVERY = PageRequest("", "live", 0, 50)
URL = "https://hooks.example.com/loyalty"
TYPES = ("event.processed", "card.balance_changed")
ESCAPED = "bad gateway\\r\\n\\x1b[31mred"


@pytest.fixture(autouse=True)
def allow_private(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app's settings allow endpoints on loopback, as every test of webhooks does; an
    example.com name is then taken as given, not looked up."""
    monkeypatch.setenv("LOYALTY_WEBHOOK_ALLOW_PRIVATE", "true")
    get_settings.cache_clear()


def _admins(people: dict[str, Any]) -> tuple[Principal, Principal]:
    return (
        Principal(2, "alice", UserRole.MERCHANT_ADMIN, people["a"]),
        Principal(3, "bob", UserRole.MERCHANT_ADMIN, people["b"]),
    )


def _spec(url: str = URL, types: tuple[str, ...] = TYPES, **more: Any) -> Any:
    return webhooks.EndpointSpec(url=url, event_types=types, **more)


async def _endpoint(
    db: AsyncSession, merchant_id: int, url: str = URL, **more: Any
) -> tuple[int, str]:
    """An endpoint made through the panel's service; its id and secret."""
    made = await webhooks.create_endpoint(
        db, ROOT, merchant_id, _spec(url, **more), allow_private=True
    )
    await db.commit()
    return made


async def _delivery(
    db: AsyncSession,
    endpoint_id: int,
    status: str,
    *,
    card: str | None = "1000-0000-0001",
    error: str | None = None,
    reply: int | None = None,
    attempts: int = 0,
    delivered_at: datetime | None = None,
    event_type: str = "card.balance_changed",
) -> int:
    """A delivery row written directly, as the dispatcher leaves it."""
    row = WebhookDelivery(
        endpoint_id=endpoint_id,
        event_id=uuid.uuid4(),
        event_type=event_type,
        card_number=card,
        body=b'{"type": "card.balance_changed"}',
        status=status,
        attempts=attempts,
        last_error=error,
        last_status=reply,
        delivered_at=delivered_at,
    )
    db.add(row)
    await db.commit()
    return row.id


async def _statuses(db: AsyncSession, *ids: int) -> list[str]:
    db.expire_all()
    rows = (await db.scalars(select(WebhookDelivery).where(WebhookDelivery.id.in_(ids)))).all()
    by_id = {r.id: r.status for r in rows}
    return [by_id[i] for i in ids]


async def _stored(db: AsyncSession, endpoint_id: int) -> WebhookEndpoint:
    db.expire_all()
    endpoint = await db.get(WebhookEndpoint, endpoint_id)
    assert endpoint is not None
    return endpoint


# --- the queries ----------------------------------------------------------------------------


def test_secrets_are_masked_and_errors_escaped() -> None:
    assert webhooks.mask_secret("whsec_" + "k" * 28 + "abcd") == "whsec_…abcd"
    # No kind prefix (or a "_" inside the random part): only the tail shows.
    assert webhooks.mask_secret("Zm9v_YmFy" + "x" * 20 + "wxyz") == "…wxyz"
    assert webhooks.mask_secret("whsec_short") == "whsec_…"
    assert printable("bad gateway\r\n\x1b[31mred") == ESCAPED
    assert printable("a\u202eb\u2028c d") == "a\\u202eb\\u2028c d"
    assert printable("x" * 400, 300) == "x" * 299 + "…"


async def test_the_list_counts_deliveries_and_keeps_the_secret_masked(
    db: AsyncSession, people: dict[str, Any]
) -> None:
    alice, _ = _admins(people)
    endpoint_id, secret = await _endpoint(db, people["a"], description="Shop")
    now = datetime.now(UTC)
    await _delivery(db, endpoint_id, "delivered", delivered_at=now - timedelta(hours=30))
    recent = now - timedelta(hours=1)
    await _delivery(db, endpoint_id, "delivered", delivered_at=recent)
    await _delivery(db, endpoint_id, "pending", attempts=2, error="timed out")
    await _delivery(db, endpoint_id, "pending")
    await _delivery(db, endpoint_id, "parked", attempts=14, error="HTTP 500", reply=500)
    quiet, _ = await _endpoint(db, people["a"], "https://hooks.example.com/quiet")

    rows = await webhooks.list_endpoints(db, alice, people["a"], now=now)
    assert [r.id for r in rows] == [endpoint_id, quiet]
    row = rows[0]
    assert (row.pending, row.parked, row.delivered_recently) == (2, 1, 1)
    assert row.last_delivered_at == recent
    # The newest error of a delivery not delivered yet: the parked one.
    assert (row.last_error, row.last_status) == ("HTTP 500", 500)
    assert (row.url, row.event_types, row.description) == (URL, TYPES, "Shop")
    assert row.secret_hint == webhooks.mask_secret(secret) and secret[-4:] in row.secret_hint
    assert secret not in repr(rows)
    assert (rows[1].pending, rows[1].parked, rows[1].delivered_recently) == (0, 0, 0)
    assert (rows[1].last_delivered_at, rows[1].last_error) == (None, None)
    found = await webhooks.find_endpoint(db, alice, endpoint_id, now=now)
    assert found is not None and found[0] == row and found[1].timezone == "Europe/Luxembourg"


async def test_deliveries_are_filtered_by_status_paged_and_searched(
    db: AsyncSession, people: dict[str, Any]
) -> None:
    alice, _ = _admins(people)
    endpoint_id, _ = await _endpoint(db, people["a"])
    parked = [
        await _delivery(db, endpoint_id, "parked", card=f"1000-0000-000{i}", error="refused")
        for i in range(3)
    ]
    pending = await _delivery(db, endpoint_id, "pending", event_type="tier.changed")
    delivered = await _delivery(db, endpoint_id, "delivered", delivered_at=datetime.now(UTC))

    def ids(rows: Any) -> list[int]:
        return [r.id for r in rows.items]

    everything = await webhooks.list_deliveries(db, alice, endpoint_id, None, EVERY)
    assert ids(everything) == [delivered, pending, *reversed(parked)]  # newest first
    only = await webhooks.list_deliveries(db, alice, endpoint_id, "parked", EVERY)
    assert (ids(only), only.total) == (list(reversed(parked)), 3)
    second = await webhooks.list_deliveries(
        db, alice, endpoint_id, "parked", PageRequest("", "live", 2, 2)
    )
    assert (ids(second), second.total) == ([parked[0]], 3)
    assert ids(await webhooks.list_deliveries(db, alice, endpoint_id, "pending", EVERY)) == [
        pending
    ]
    by_card = PageRequest("0000-0001", "live", 0, 50)
    assert ids(await webhooks.list_deliveries(db, alice, endpoint_id, "parked", by_card)) == [
        parked[1]
    ]
    by_type = PageRequest("tier.", "live", 0, 50)
    assert ids(await webhooks.list_deliveries(db, alice, endpoint_id, None, by_type)) == [pending]
    row = only.items[0]
    assert (row.status, row.card_number, row.last_error) == ("parked", "1000-0000-0002", "refused")


async def test_a_merchant_admin_never_reaches_another_merchants_endpoint(
    db: AsyncSession, people: dict[str, Any]
) -> None:
    alice, bob = _admins(people)
    mine, _ = await _endpoint(db, people["a"])
    theirs, their_secret = await _endpoint(db, people["b"], "https://b.example.com/hook")
    their_parked = await _delivery(db, theirs, "parked", error="down")
    now = datetime.now(UTC)

    assert await webhooks.find_endpoint(db, alice, theirs, now=now) is None
    assert await webhooks.webhook_merchant(db, alice, people["b"]) is None
    assert await webhooks.list_endpoints(db, alice, people["b"], now=now) == []
    nothing = await webhooks.list_deliveries(db, alice, theirs, None, EVERY)
    assert (nothing.items, nothing.total) == ([], 0)
    for write in (
        webhooks.update_endpoint(db, alice, theirs, _spec(), allow_private=True),
        webhooks.rotate_secret(db, alice, theirs),
        webhooks.delete_endpoint(db, alice, theirs),
        webhooks.resend(db, alice, theirs, None),
        webhooks.resend(db, alice, theirs, [their_parked]),
    ):
        with pytest.raises(DomainRefusal, match="does not exist"):
            await write
        await db.rollback()
    with pytest.raises(DomainRefusal, match="does not exist"):
        await webhooks.create_endpoint(db, alice, people["b"], _spec(), allow_private=True)
    await db.rollback()
    # Her own endpoint with his delivery's id re-sends nothing of his.
    assert await webhooks.resend(db, alice, mine, [their_parked]) == 0
    await db.commit()
    assert await _statuses(db, their_parked) == ["parked"]
    stored = await _stored(db, theirs)
    assert (stored.url, stored.secret, stored.deleted_at) == (
        "https://b.example.com/hook",
        their_secret,
        None,
    )
    # Bob and the platform admin reach it.
    assert await webhooks.find_endpoint(db, bob, theirs, now=now) is not None
    assert [r.id for r in await webhooks.list_endpoints(db, ROOT, people["b"], now=now)] == [theirs]


async def test_refusals_name_their_field_and_deleted_endpoints_are_gone(
    db: AsyncSession, people: dict[str, Any]
) -> None:
    alice, _ = _admins(people)
    for spec, private, field in (
        (_spec("ftp://hooks.example.com/x"), True, "url"),
        (_spec("http://127.0.0.1:9000/hook"), False, "url"),
        (_spec(types=()), True, "event_types"),
    ):
        with pytest.raises(FieldsRefused) as refused:
            await webhooks.create_endpoint(db, alice, people["a"], spec, allow_private=private)
        await db.rollback()
        assert [p.path for p in refused.value.problems] == [field], spec
        assert refused.value.problems[0].message
    endpoint_id, _ = await _endpoint(db, people["a"])
    await webhooks.delete_endpoint(db, alice, endpoint_id)
    await db.commit()
    assert (await _stored(db, endpoint_id)).deleted_by == "admin:alice"
    now = datetime.now(UTC)
    assert await webhooks.find_endpoint(db, alice, endpoint_id, now=now) is None
    assert await webhooks.list_endpoints(db, alice, people["a"], now=now) == []
    with pytest.raises(DomainRefusal, match="does not exist"):
        await webhooks.rotate_secret(db, alice, endpoint_id)


# --- the pages ------------------------------------------------------------------------------


async def test_an_endpoint_is_added_after_its_refusals_and_its_secret_shown_once(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    await sign_in(user, ALICE, to="/webhooks")  # the navigation leads to her merchant's
    await user.should_see(marker="webhooks-empty", retries=WAIT)
    user.find(marker="new-webhook").click()
    await user.should_see(marker="webhook-create", retries=WAIT)
    user.find(marker="webhook-url").type("ftp://hooks.example.com/loyalty")
    set_value(user, "webhook-type-card.balance_changed", True)
    user.find(marker="webhook-create").click()
    await user.should_see(marker="webhook-errors", retries=WAIT)
    assert element_error(user, "webhook-url") == "must be an https:// or http:// address"
    await user.should_not_see("Traceback")

    user.find(marker="webhook-url").clear()
    user.find(marker="webhook-url").type(URL)
    set_value(user, "webhook-type-card.balance_changed", False)
    user.find(marker="webhook-create").click()
    await user.should_see(marker="webhook-types-error", retries=WAIT)
    assert element_error(user, "webhook-url") is None
    assert texts(user, "webhook-types-error") == ["choose at least one type"]
    # The summary names the field as the form does, not as the service does ("event_types").
    assert texts(user, "webhook-errors") == ["Please correct: Send: choose at least one type"]
    assert (await db.scalars(select(WebhookEndpoint))).all() == []

    set_value(user, "webhook-type-card.balance_changed", True)
    set_value(user, "webhook-type-tier.changed", True)
    user.find(marker="webhook-description").type("Shop backend")
    user.find(marker="webhook-create").click()
    await user.should_see("Endpoint created.", retries=WAIT)
    await user.should_see(marker="webhook-secret", retries=WAIT)
    endpoint = (await db.scalars(select(WebhookEndpoint))).one()
    assert texts(user, "webhook-secret") == [endpoint.secret]
    assert endpoint.event_types == ["card.balance_changed", "tier.changed"]
    assert (endpoint.url, endpoint.description, endpoint.is_active) == (URL, "Shop backend", True)

    # Anywhere else the secret is masked.
    user.find(marker="webhook-opened").click()
    await user.should_see(marker="webhook-secret-hint", retries=WAIT)
    assert texts(user, "webhook-secret-hint") == [webhooks.mask_secret(endpoint.secret)]
    await user.should_not_see(endpoint.secret)
    status, body = await status_of(user, f"/merchants/{people['a']}/webhooks")
    assert status == 200 and URL in body and endpoint.secret not in body

    # The list says what the endpoint is sent in words; the types' codes are in tooltips.
    await user.open(f"/merchants/{people['a']}/webhooks")
    await user.should_see(marker="webhook-type-chip", retries=WAIT)
    chips = [
        e.text for e in user.find(marker="webhook-type-chip").elements if isinstance(e, ui.badge)
    ]
    assert sorted(chips) == ["A card moved to another tier", "A card's balance changed"]


async def test_rotate_edit_and_delete(user: User, people: dict[str, Any], db: AsyncSession) -> None:
    endpoint_id, secret = await _endpoint(db, people["a"])
    await sign_in(user, ALICE, to=f"/webhooks/{endpoint_id}")
    await user.should_see(marker="webhook-rotate", retries=WAIT)
    user.find(marker="webhook-rotate").click()
    await user.should_see(marker="confirm-dialog", retries=WAIT)
    user.find(marker="confirm-yes").click()
    await user.should_see(marker="webhook-secret", retries=WAIT)
    rotated = (await _stored(db, endpoint_id)).secret
    assert rotated != secret and texts(user, "webhook-secret") == [rotated]

    user.find(marker="webhook-url").clear()
    user.find(marker="webhook-url").type("not a url")
    user.find(marker="webhook-save").click()
    await user.should_see(marker="webhook-errors", retries=WAIT)
    assert element_error(user, "webhook-url") == "must not contain spaces or control characters"
    assert (await _stored(db, endpoint_id)).url == URL

    user.find(marker="webhook-url").clear()
    user.find(marker="webhook-url").type("https://hooks.example.com/v2")
    set_value(user, "webhook-type-event.processed", False)
    set_value(user, "webhook-active", False)
    user.find(marker="webhook-save").click()
    await user.should_see("Endpoint saved.", retries=WAIT)
    saved = await _stored(db, endpoint_id)
    assert (saved.url, saved.event_types, saved.is_active) == (
        "https://hooks.example.com/v2",
        ["card.balance_changed"],
        False,
    )
    assert saved.secret == rotated  # saving keeps the secret

    user.find(marker="webhook-delete").click()
    await user.should_see(marker="confirm-dialog", retries=WAIT)
    user.find(marker="confirm-no").click()
    await user.should_not_see(marker="confirm-dialog", retries=WAIT)
    assert (await _stored(db, endpoint_id)).deleted_at is None
    user.find(marker="webhook-delete").click()
    await user.should_see(marker="confirm-yes", retries=WAIT)
    user.find(marker="confirm-yes").click()
    await user.should_see(marker="webhooks-empty", retries=WAIT)  # back on the list
    assert (await _stored(db, endpoint_id)).deleted_by == "admin:alice"
    status, _ = await status_of(user, f"/webhooks/{endpoint_id}")
    assert status == 404


async def test_parked_deliveries_are_re_sent_one_by_one_and_in_bulk(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    endpoint_id, _ = await _endpoint(db, people["a"])
    first = await _delivery(
        db, endpoint_id, "parked", error="bad gateway\r\n\x1b[31mred", reply=502, attempts=14
    )
    second = await _delivery(db, endpoint_id, "parked", card="1000-0000-0002", error="timeout")
    third = await _delivery(db, endpoint_id, "parked", card="1000-0000-0003", error="refused")
    done = await _delivery(db, endpoint_id, "delivered", delivered_at=datetime.now(UTC))
    await sign_in(user, ALICE, to=f"/merchants/{people['a']}/webhooks")
    await user.should_see(marker="webhook-parked", content="3 parked", retries=WAIT)
    assert texts(user, "webhook-last-error")[0].endswith("refused")

    await user.open(f"/webhooks/{endpoint_id}")
    # Parked ones are shown first: they need someone.
    await user.should_see(marker=f"webhook-resend-{first}", retries=WAIT)
    assert len(user.find(marker="webhook-deliveries-row").elements) == 3
    assert texts(user, f"webhook-delivery-error-{first}") == [ESCAPED]
    await user.should_see("A card's balance changed")  # the delivery's type, in words
    user.find(marker=f"webhook-resend-{first}").click()
    await user.should_see("Delivery queued again", retries=WAIT)
    await user.should_not_see(marker=f"webhook-resend-{first}", retries=WAIT)
    assert await _statuses(db, first, second, third) == ["pending", "parked", "parked"]

    set_value(user, "webhook-status-filter", "all")
    await user.should_see(marker=f"webhook-delivery-status-{done}", retries=WAIT)
    assert len(user.find(marker="webhook-deliveries-row").elements) == 4

    user.find(marker="webhook-resend-all").click()
    await user.should_see(marker="confirm-dialog", retries=WAIT)
    await user.should_see("Re-send all 2 parked deliveries?")
    user.find(marker="confirm-yes").click()
    await user.should_see("2 deliveries queued again.", retries=WAIT)
    assert await _statuses(db, first, second, third, done) == [
        "pending",
        "pending",
        "pending",
        "delivered",
    ]
    await user.should_not_see(marker="webhook-resend-all", retries=WAIT)


async def test_another_merchants_webhooks_are_not_found(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    theirs, _ = await _endpoint(db, people["b"], "https://secret-b.example.com/hook")
    mine, _ = await _endpoint(db, people["a"])
    await sign_in(user, ALICE)
    for path in (
        f"/webhooks/{theirs}",
        f"/merchants/{people['b']}/webhooks",
        f"/merchants/{people['b']}/webhooks/new",
        "/webhooks/999999",
        "/webhooks/not-a-number",
    ):
        status, body = await status_of(user, path)
        assert status == 404, path
        assert "not allowed to see it" in body, path
        assert "secret-b" not in body and people["b_code"] not in body, path
    for path in (
        f"/webhooks/{mine}",
        f"/merchants/{people['a']}/webhooks",
        f"/merchants/{people['a']}/webhooks/new",
    ):
        status, _ = await status_of(user, path)
        assert status == 200, path


async def test_a_platform_admin_chooses_the_merchant_and_the_merchant_page_links_here(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    await _endpoint(db, people["b"], "https://b.example.com/hook")
    await sign_in(user, PLATFORM, to="/webhooks")
    await user.should_see(marker="webhook-merchants-list", retries=WAIT)
    user.find(people["b_code"]).click()
    await user.should_see("https://b.example.com/hook", retries=WAIT)
    await user.open(f"/merchants/{people['a']}")
    await user.should_see(marker="webhooks-link", retries=WAIT)
    user.find(marker="webhooks-link").click()
    await user.should_see(marker="webhooks-empty", retries=WAIT)
