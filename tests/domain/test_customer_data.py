"""Customers' data (CONTRACT.md 7.6) against the real database: what an export holds and
leaves out, and what an erasure changes, keeps, and refuses; cards made by the engine itself."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from admin_ui.runtime import raw_connection
from domain.audit import run_audit
from domain.customers.erasure import ERASURE_NOTE, erase_customer
from domain.customers.export import EXPORT_FORMAT, export_customer, to_json
from domain.customers.finding import (
    AmbiguousCustomer,
    CustomerNotFound,
    ErasureRefused,
    find_customer,
)
from domain.customers.push_tokens import PUSH_GRACE, release_push_tokens
from domain.engine import admin_actions
from domain.engine.batch import Inbound, process_batch
from domain.lookup import UnknownMerchant
from domain.models import (
    AdminAuditLog,
    AppleDeviceRegistration,
    Customer,
    DeadLetter,
    HeldReturn,
    LedgerEntry,
    LoyaltyCard,
    Merchant,
    Store,
    WalletSyncState,
)
from domain.rules.admin import AdjustmentError
from domain.soft_delete import restore, soft_delete
from streams.commands import to_command
from streams.inputs import EnrollmentRequested, PurchaseCompleted
from streams.topics import Topic
from tests.support.outbox import outbox_messages
from tests.support.seed import seed_merchant

Sessions = async_sessionmaker[AsyncSession]
NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
PHONE_TOKEN = "a1" * 32


# --- cards made by the engine ---------------------------------------------------------------


async def enrol(session: AsyncSession, store: str, email: str, **details: Any) -> str:
    """A customer and their card, through the engine (committed); the card's number."""
    message = EnrollmentRequested.model_validate(
        {
            "event_id": str(uuid.uuid4()),
            "type": "enrollment.requested",
            "occurred_at": NOW.isoformat(),
            "store_code": store,
            "customer": {"email": email, **details},
            "channel": "staff",
        }
    )
    outcome = await process_batch(
        await raw_connection(session), [Inbound(Topic.ENROLLMENTS.value, to_command(message))], NOW
    )
    await session.commit()
    number = outcome.results[0].card_number
    assert number is not None, outcome.results
    return number


async def buy(session: AsyncSession, store: str, card: str, cents: int) -> None:
    """A purchase of the card, through the engine (committed)."""
    message = PurchaseCompleted.model_validate(
        {
            "event_id": str(uuid.uuid4()),
            "type": "purchase.completed",
            "occurred_at": NOW.isoformat(),
            "store_code": store,
            "order_reference": f"o-{uuid.uuid4().hex[:10]}",
            "amount_cents": cents,
            "card": {"card_number": card},
        }
    )
    outcome = await process_batch(
        await raw_connection(session), [Inbound(Topic.PURCHASES.value, to_command(message))], NOW
    )
    await session.commit()
    assert outcome.results[0].status == "applied", outcome.results


async def card_of(session: AsyncSession, number: str) -> LoyaltyCard:
    card = await session.scalar(
        select(LoyaltyCard)
        .where(LoyaltyCard.card_number == number)
        .execution_options(include_deleted=True, populate_existing=True)
    )
    assert card is not None
    return card


async def customer_of(session: AsyncSession, customer_id: int) -> Customer:
    customer = await session.scalar(
        select(Customer)
        .where(Customer.id == customer_id)
        .execution_options(include_deleted=True, populate_existing=True)
    )
    assert customer is not None
    return customer


async def erase(sessions: Sessions, customer_id: int, actor: str = "admin:root") -> Any:
    async with sessions() as session, session.begin():
        return await erase_customer(session, customer_id, actor=actor, now=NOW)


class Shop:
    """A merchant (points and stamps, a welcome bonus) with its store codes."""

    def __init__(self, merchant: Merchant, stores: list[Store]) -> None:
        self.merchant = merchant
        self.code = merchant.code
        self.store = stores[0].code


async def make_shop(db: AsyncSession) -> Shop:
    """A merchant whose program gives 20 points to a new card and 10 points per euro."""
    merchant, stores, _ = await seed_merchant(db, welcome_bonus_points=20, points_per_euro=10)
    return Shop(merchant, stores)


@pytest.fixture
async def shop(db: AsyncSession) -> Shop:
    return await make_shop(db)


@dataclass(frozen=True)
class Held:
    """A card as it was before the test acted (the ORM's rows change under a test's feet)."""

    id: int
    customer_id: int
    card_number: str
    qr_token: str
    link_token: str
    apple_authentication_token: str
    version: int


@pytest.fixture
async def ann(db: AsyncSession, shop: Shop) -> Held:
    return await make_ann(db, shop)


async def make_ann(db: AsyncSession, shop: Shop) -> Held:
    """Ann Smith's card, with 120 points and a stamp, and her phone registered for its pass."""
    number = await enrol(
        db,
        shop.store,
        "Ann.Smith@Example.com",
        first_name="Ann",
        last_name="Smith",
        phone="+352 621 000 111",
        customer_ref="crm-ann-1",
    )
    await buy(db, shop.store, number, 1000)
    card = await card_of(db, number)
    db.add(
        AppleDeviceRegistration(
            device_library_id="device-of-ann",
            pass_type_id="pass.lu.example.loyalty",
            push_token=PHONE_TOKEN,
            card_id=card.id,
        )
    )
    await db.commit()
    return Held(
        card.id,
        card.customer_id,
        card.card_number,
        card.qr_token,
        card.link_token,
        card.apple_authentication_token,
        card.version,
    )


# --- finding --------------------------------------------------------------------------------


async def test_a_customer_is_found_by_card_number_qr_text_or_email(
    db: AsyncSession, shop: Shop, ann: Held
) -> None:
    digits = ann.card_number.replace("-", "")
    for ref in (ann.card_number, f" {digits} ", ann.qr_token, "ANN.SMITH@example.com"):
        assert await find_customer(db, ref, shop.code) == ann.customer_id, ref
    assert await find_customer(db, "nobody@example.com", shop.code) is None
    assert await find_customer(db, "0000-0000-0000", shop.code) is None
    with pytest.raises(UnknownMerchant):
        await find_customer(db, ann.card_number, "no-such-merchant")
    # Another merchant's customer is never found.
    _, other_stores, _ = await seed_merchant(db)
    theirs = await enrol(db, other_stores[0].code, "ann.smith@example.com")
    assert await find_customer(db, theirs, shop.code) is None


async def test_deleted_customers_are_found_and_a_live_one_comes_first(
    db: AsyncSession, shop: Shop, ann: Held
) -> None:
    await soft_delete(db, Customer, [ann.customer_id], by="admin:root")
    await db.commit()
    assert await find_customer(db, ann.card_number, shop.code) == ann.customer_id
    assert await find_customer(db, "ann.smith@example.com", shop.code) == ann.customer_id
    again = await card_of(db, await enrol(db, shop.store, "ann.smith@example.com"))
    assert again.customer_id != ann.customer_id
    assert await find_customer(db, "ann.smith@example.com", shop.code) == again.customer_id
    await soft_delete(db, Customer, [again.customer_id], by="admin:root")
    await db.commit()
    with pytest.raises(AmbiguousCustomer, match="2 deleted customers"):
        await find_customer(db, "ann.smith@example.com", shop.code)


# --- export ---------------------------------------------------------------------------------


async def test_the_export_holds_the_customer_cards_ledger_and_devices_but_no_secret(
    db: AsyncSession, shop: Shop, ann: Held
) -> None:
    data = await export_customer(db, ann.customer_id)
    document = to_json(data)
    assert json.loads(document) == data
    assert data["format"] == EXPORT_FORMAT
    assert data["merchant"]["code"] == shop.code
    customer = data["customer"]
    assert (customer["email"], customer["first_name"], customer["last_name"]) == (
        "ann.smith@example.com",
        "Ann",
        "Smith",
    )
    assert (customer["phone"], customer["customer_ref"], customer["erased_at"]) == (
        "+352 621 000 111",
        "crm-ann-1",
        None,
    )
    (card,) = data["cards"]
    assert (card["card_number"], card["points_balance"], card["is_active"]) == (
        ann.card_number,
        120,
        True,
    )
    assert (card["store"], card["card_page_link"], card["google_wallet_object"]) == (
        shop.store,
        True,
        False,
    )
    assert [e["entry_type"] for e in card["ledger"]] == [
        "card_created",
        "welcome_bonus",
        "stamp_earned",
        "points_earned",
    ]
    assert [e["points_delta"] for e in card["ledger"]] == [0, 20, 0, 100]
    (bought,) = card["purchases"]
    assert (bought["amount_cents"], bought["points_earned"]) == (1000, 100)
    assert [lot["points"] for lot in card["point_lots"]] == [20, 100]
    assert card["tier_history"] == []
    (device,) = card["wallet_registrations"]
    assert device["device_library_id"] == "device-of-ann"
    assert device["push_token"] == "…" + PHONE_TOKEN[-4:]
    # What would open the card page or the pass is not given, nor who served her.
    for secret in (ann.qr_token, ann.link_token, ann.apple_authentication_token, PHONE_TOKEN):
        assert secret not in document
    assert "actor" not in card["ledger"][0] and "staff_ref" not in card["ledger"][0]


async def test_an_export_of_another_customer_holds_nothing_of_this_one(
    db: AsyncSession, shop: Shop, ann: Held
) -> None:
    bob = await card_of(db, await enrol(db, shop.store, "bob@example.com", first_name="Bob"))
    document = to_json(await export_customer(db, bob.customer_id))
    assert "bob@example.com" in document
    for hers in ("ann.smith@example.com", "Smith", "crm-ann-1", "621 000", ann.card_number):
        assert hers not in document
    with pytest.raises(CustomerNotFound):
        await export_customer(db, 999_999)


# --- erasure --------------------------------------------------------------------------------


async def test_erasure_replaces_personal_data_and_deactivates_through_the_engine(
    db: AsyncSession, db_sessions: Sessions, database_url: str, shop: Shop, ann: Held
) -> None:
    ledger_before = await _ledger(db, ann.id)
    outcome = await erase(db_sessions, ann.customer_id)

    assert (outcome.already_erased, outcome.deactivated, outcome.cards) == (
        False,
        (ann.card_number,),
        (ann.card_number,),
    )
    customer = await customer_of(db, ann.customer_id)
    assert customer.erased_at == NOW
    assert customer.email is not None and customer.email.startswith("erased-")
    assert customer.email.endswith("@erased.invalid") and customer.email == customer.email.lower()
    assert customer.customer_ref is not None and customer.customer_ref.startswith("erased-")
    assert (customer.first_name, customer.last_name, customer.phone) == (None, None, None)
    assert customer.locale == "en" and customer.deleted_at is None

    card = await card_of(db, ann.card_number)
    assert (card.is_active, card.version, card.points_balance, card.stamp_count) == (
        False,
        ann.version + 1,
        120,
        1,
    )
    # The public ways to the card are closed: a new page link and a new QR token.
    assert card.link_token != ann.link_token and card.qr_token != ann.qr_token
    assert card.apple_authentication_token == ann.apple_authentication_token
    # The ledger keeps every amount, and says why the card stopped.
    ledger_after = await _ledger(db, ann.id)
    assert ledger_after[:-1] == ledger_before
    assert ledger_after[-1] == ("card_deactivated", 0, 0, ERASURE_NOTE, "admin:root")
    # One card.balance_changed, is_active false, for the wallets and the outside world.
    conn = await raw_connection(db)
    assert isinstance(conn, asyncpg.Connection)
    updates = [
        p
        for _, key, p in await outbox_messages(conn, Topic.WALLET_UPDATES.value)
        if key == ann.card_number
    ]
    assert [(u["version"], u["is_active"], u["reason"]) for u in updates][-1] == (
        card.version,
        False,
        "card_deactivated",
    )
    await db.rollback()
    report = await _audit(database_url, shop.code)
    assert report.clean, [str(d) for d in report.differences]


async def test_erasing_twice_says_it_is_done_and_changes_nothing(
    db: AsyncSession, db_sessions: Sessions, ann: Held
) -> None:
    first = await erase(db_sessions, ann.customer_id)
    erased = await customer_of(db, ann.customer_id)
    card = await card_of(db, ann.card_number)
    second = await erase(db_sessions, ann.customer_id, actor="admin:other")
    assert (second.already_erased, second.erased_at, second.deactivated) == (True, NOW, ())
    assert first.erased_at == second.erased_at
    again = await customer_of(db, ann.customer_id)
    assert (again.email, again.customer_ref) == (erased.email, erased.customer_ref)
    after = await card_of(db, ann.card_number)
    assert (after.version, after.qr_token, after.link_token) == (
        card.version,
        card.qr_token,
        card.link_token,
    )


async def test_a_later_enrolment_with_the_same_email_is_a_new_customer(
    db: AsyncSession, db_sessions: Sessions, shop: Shop, ann: Held
) -> None:
    await erase(db_sessions, ann.customer_id)
    again = await card_of(db, await enrol(db, shop.store, "ann.smith@example.com"))
    assert again.customer_id != ann.customer_id and again.card_number != ann.card_number
    assert again.is_active and again.points_balance == 20  # a new welcome bonus
    assert await find_customer(db, "ann.smith@example.com", shop.code) == again.customer_id


async def test_a_soft_deleted_customer_is_erased_and_comes_back_erased(
    db: AsyncSession, db_sessions: Sessions, database_url: str, shop: Shop, ann: Held
) -> None:
    deletion = await soft_delete(db, Customer, [ann.customer_id], by="admin:root")
    await db.commit()
    outcome = await erase(db_sessions, ann.customer_id)
    assert outcome.deactivated == (ann.card_number,)
    card = await card_of(db, ann.card_number)
    # Deactivated through the engine, and still deleted by the same deletion.
    assert (card.is_active, card.version) == (False, ann.version + 1)
    assert (card.deleted_at is not None, card.deletion_id) == (True, deletion)
    customer = await customer_of(db, ann.customer_id)
    assert customer.deleted_at is not None and customer.erased_at == NOW
    # Its cards are never pushed while deleted: the push token goes at once.
    assert await _tokens(db, ann.id) == ["erased"]

    assert await restore(db, Customer, [ann.customer_id]) == 2
    await db.commit()
    back = await customer_of(db, ann.customer_id)
    assert back.deleted_at is None and back.erased_at == NOW
    assert back.email is not None and back.email.startswith("erased-")
    assert not (await card_of(db, ann.card_number)).is_active
    again = await erase(db_sessions, ann.customer_id)
    assert again.already_erased
    await db.rollback()
    report = await _audit(database_url, shop.code)
    assert report.clean, [str(d) for d in report.differences]


async def test_the_customer_of_a_deleted_merchant_is_not_erased(
    db: AsyncSession, db_sessions: Sessions, shop: Shop, ann: Held
) -> None:
    await soft_delete(db, Merchant, [shop.merchant.id], by="admin:root")
    await db.commit()
    with pytest.raises(ErasureRefused, match="restore the merchant first"):
        await erase(db_sessions, ann.customer_id)
    customer = await customer_of(db, ann.customer_id)
    assert (customer.email, customer.erased_at) == ("ann.smith@example.com", None)
    assert (await card_of(db, ann.card_number)).is_active


async def test_an_inactive_card_keeps_its_ledger_and_releases_its_tokens_at_once(
    db: AsyncSession, db_sessions: Sessions, ann: Held
) -> None:
    await db.execute(update(LoyaltyCard).where(LoyaltyCard.id == ann.id).values(is_active=False))
    await db.commit()
    before = await _ledger(db, ann.id)
    outcome = await erase(db_sessions, ann.customer_id)
    assert outcome.deactivated == ()
    assert await _ledger(db, ann.id) == before
    # Its pass was voided when it was deactivated: nothing to wait for.
    assert await _tokens(db, ann.id) == ["erased"]


async def test_push_tokens_wait_for_the_void_pass_to_be_pushed(
    db: AsyncSession, db_sessions: Sessions, ann: Held
) -> None:
    await erase(db_sessions, ann.customer_id)
    card = await card_of(db, ann.card_number)
    assert await _tokens(db, ann.id) == [PHONE_TOKEN]
    # The wallet sync pushed the version before the erasure only: still waiting.
    db.add(WalletSyncState(card_id=ann.id, wallet="apple", synced_version=card.version - 1))
    await db.commit()
    assert await _release(db_sessions) == 0
    assert await _tokens(db, ann.id) == [PHONE_TOKEN]
    # The deactivation is pushed: the token is replaced; the registration stays.
    await db.execute(
        update(WalletSyncState)
        .where(WalletSyncState.card_id == ann.id)
        .values(synced_version=card.version)
    )
    await db.commit()
    assert await _release(db_sessions) == 1
    assert await _tokens(db, ann.id) == ["erased"]
    assert await _release(db_sessions) == 0


async def test_push_tokens_go_after_the_grace_period_even_unpushed(
    db: AsyncSession, db_sessions: Sessions, ann: Held
) -> None:
    await erase(db_sessions, ann.customer_id)
    assert await _release(db_sessions) == 0
    await db.execute(
        update(Customer)
        .where(Customer.id == ann.customer_id)
        .values(erased_at=datetime.now(UTC) - PUSH_GRACE - timedelta(minutes=1))
    )
    await db.commit()
    assert await _release(db_sessions) == 1
    assert await _tokens(db, ann.id) == ["erased"]


async def test_tokens_of_customers_not_erased_are_never_touched(
    db: AsyncSession, db_sessions: Sessions, ann: Held
) -> None:
    async with db_sessions() as session, session.begin():
        assert await release_push_tokens(session, wait_for_push=False) == 0
    assert await _tokens(db, ann.id) == [PHONE_TOKEN]


async def test_held_returns_and_dead_letters_lose_the_email(
    db: AsyncSession, db_sessions: Sessions, shop: Shop, ann: Held
) -> None:
    def returned(card: dict[str, str]) -> dict[str, Any]:
        return {
            "event_id": str(uuid.uuid4()),
            "type": "purchase.returned",
            "occurred_at": NOW.isoformat(),
            "store_code": shop.store,
            "order_reference": f"o-{uuid.uuid4().hex[:8]}",
            "refund_amount_cents": 100,
            "card": card,
        }

    store_id = await db.scalar(select(Store.id).where(Store.code == shop.store))
    assert store_id is not None
    by_email = returned({"email": "ANN.SMITH@example.com"})
    by_ref = returned({"customer_ref": "crm-ann-1"})
    someone_else = returned({"email": "zoe@example.com"})
    for payload in (by_email, by_ref, someone_else):
        db.add(
            HeldReturn(
                merchant_id=shop.merchant.id,
                store_id=store_id,
                order_reference=payload["order_reference"],
                source_event_id=uuid.UUID(payload["event_id"]),
                payload=payload,
            )
        )
    letter = json.dumps(
        {"type": "enrollment.requested", "store_code": shop.store, "customer": "Ann.Smith@x"}
    ).replace("Ann.Smith@x", "Ann.Smith@Example.com")
    elsewhere = letter.replace(shop.store, "another-merchants-store")
    for n, text_ in enumerate((letter, elsewhere)):
        db.add(
            DeadLetter(
                event_id=uuid.uuid4(),
                source_topic="loyalty.enrollments.v1",
                partition=0,
                offset=n,
                key="ann.smith@example.com",
                payload=text_,
                error="customer: not an object",
            )
        )
    await db.commit()
    assert len((await export_customer(db, ann.customer_id))["held_returns"]) == 2

    await erase(db_sessions, ann.customer_id)
    pseudonym = (await customer_of(db, ann.customer_id)).email
    ref = (await customer_of(db, ann.customer_id)).customer_ref
    held = {
        h.order_reference: h.payload["card"]
        for h in (await db.scalars(select(HeldReturn).execution_options(populate_existing=True)))
    }
    assert held == {
        by_email["order_reference"]: {"email": pseudonym},
        by_ref["order_reference"]: {"customer_ref": ref},
        someone_else["order_reference"]: {"email": "zoe@example.com"},
    }
    letters = {
        d.offset: (d.key, d.payload)
        for d in await db.scalars(select(DeadLetter).execution_options(populate_existing=True))
    }
    assert letters[0] == (pseudonym, letter.replace("Ann.Smith@Example.com", str(pseudonym)))
    # Not from one of this merchant's stores: not this merchant's to change.
    assert letters[1] == ("ann.smith@example.com", elsewhere)


async def test_an_erasure_is_in_the_admin_audit_trail_without_personal_data(
    db: AsyncSession, db_sessions: Sessions, shop: Shop, ann: Held
) -> None:
    await erase(db_sessions, ann.customer_id)
    rows = (
        await db.scalars(
            select(AdminAuditLog).where(
                AdminAuditLog.action == "erase", AdminAuditLog.entity == "customer"
            )
        )
    ).all()
    assert [(str(r.entity_id), r.merchant_id) for r in rows] == [
        (str(ann.customer_id), shop.merchant.id)
    ]
    recorded = json.dumps([rows[0].before, rows[0].after, rows[0].summary], default=str)
    # Her phone as typed and as digits: a bare "621" also turned up inside a random card
    # number (2621-4717-5806), which the trail names on purpose.
    for hers in ("ann.smith", "Smith", "crm-ann-1", "621 000", "621000111"):
        assert hers not in recorded


async def test_erasure_logs_the_customer_id_only(
    db_sessions: Sessions, ann: Held, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    await erase(db_sessions, ann.customer_id)
    # Configured, the logs go to stderr; structlog's default prints to stdout.
    written = re.sub(r"\x1b\[[0-9;]*m", "", "".join(capsys.readouterr()))  # colours aside
    assert "customer_erased" in written and f"customer_id={ann.customer_id}" in written
    for hers in ("ann.smith", "Smith", "crm-ann-1", "621 000", "621000111", PHONE_TOKEN):
        assert hers not in written


# --- helpers --------------------------------------------------------------------------------


async def _ledger(db: AsyncSession, card_id: int) -> list[tuple[Any, ...]]:
    rows = await db.execute(
        select(
            LedgerEntry.entry_type,
            LedgerEntry.stamps_delta,
            LedgerEntry.points_delta,
            LedgerEntry.notes,
            LedgerEntry.actor,
        )
        .where(LedgerEntry.card_id == card_id)
        .order_by(LedgerEntry.id)
    )
    return [(t.value, s, p, n, a) for t, s, p, n, a in rows]


async def _tokens(db: AsyncSession, card_id: int) -> list[str]:
    tokens = await db.scalars(
        select(AppleDeviceRegistration.push_token)
        .where(AppleDeviceRegistration.card_id == card_id)
        .execution_options(populate_existing=True)
    )
    return ["erased" if t.startswith("erased-") else t for t in tokens]


async def _release(sessions: Sessions) -> int:
    async with sessions() as session, session.begin():
        return await release_push_tokens(session)


async def _audit(database_url: str, merchant_code: str) -> Any:
    conn = await asyncpg.connect(database_url)
    try:
        # No relay here: the outbox is not the check of this test.
        return await run_audit(conn, merchant_code=merchant_code, unsent_grace_s=10**9)
    finally:
        await conn.close()


async def test_an_erased_customers_card_cannot_be_reactivated(
    db: AsyncSession, db_sessions: Sessions, ann: Held
) -> None:
    await erase(db_sessions, ann.customer_id)
    card = await card_of(db, ann.card_number)
    assert not card.is_active
    # The refusal rolls the whole action back, as the panel's transaction does.
    with pytest.raises(AdjustmentError, match="customer was erased"):
        async with db_sessions() as session, session.begin():
            await admin_actions.set_card_active(
                await raw_connection(session),
                action_id=uuid.uuid4(),
                card_id=card.id,
                active=True,
                actor="admin:root",
                now=NOW,
            )
    assert not (await card_of(db, ann.card_number)).is_active
