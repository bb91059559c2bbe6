"""The customer page's data section (CONTRACT.md 7.6): the export as a JSON download, and the
erasure behind a typed confirmation that refuses anything but the customer's email or one of
their card numbers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from nicegui.testing import User
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from admin_ui.problems import DomainRefusal
from admin_ui.queries.admins import Principal
from admin_ui.queries.customers import erasure_target
from domain.models import AdminAuditLog, Customer, LedgerEntry, LoyaltyCard, UserRole
from domain.soft_delete import soft_delete
from tests.admin_ui.helpers import ALICE, BOB, MAIN_FILE, WAIT, enrol, sign_in

pytestmark = MAIN_FILE


async def _customer(db: AsyncSession, email: str) -> Customer:
    customer = await db.scalar(select(Customer).where(Customer.email == email))
    assert customer is not None
    return customer


async def _fresh(db: AsyncSession, customer_id: int) -> Customer:
    customer = await db.scalar(
        select(Customer)
        .where(Customer.id == customer_id)
        .execution_options(include_deleted=True, populate_existing=True)
    )
    assert customer is not None
    return customer


async def test_the_export_downloads_everything_held_as_json(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    number = await enrol(db, people["a_store_codes"][0], "rita@example.com", first_name="Rita")
    customer = await _customer(db, "rita@example.com")
    await sign_in(user, ALICE, to=f"/customers/{customer.id}")
    await user.should_see(marker="customer-export", retries=WAIT)
    user.find(marker="customer-export").click()
    download = await user.download.next(timeout=10)
    data = json.loads(download.content)
    assert (data["customer"]["email"], data["customer"]["first_name"]) == (
        "rita@example.com",
        "Rita",
    )
    assert [c["card_number"] for c in data["cards"]] == [number]


async def test_erasure_needs_the_email_or_a_card_number_typed(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    number = await enrol(
        db, people["a_store_codes"][0], "tom@example.com", first_name="Tom", last_name="Kirsch"
    )
    customer = await _customer(db, "tom@example.com")
    await sign_in(user, ALICE, to=f"/customers/{customer.id}")
    await user.should_see(marker="customer-erase", retries=WAIT)

    for wrong in ("", "Tom Kirsch", "someone@example.com", "0000-0000-0000"):
        user.find(marker="customer-erase").click()
        await user.should_see(marker="erase-submit", retries=WAIT)
        if wrong:
            user.find(marker="erase-confirm-text").type(wrong)
        user.find(marker="erase-submit").click()
        await user.should_see("type their email or one of their card numbers", retries=WAIT)
        user.find(marker="erase-cancel").click()
        await user.should_not_see(marker="erase-submit", retries=WAIT)
        assert (await _fresh(db, customer.id)).erased_at is None, wrong

    user.find(marker="customer-erase").click()
    await user.should_see(marker="erase-submit", retries=WAIT)
    user.find(marker="erase-confirm-text").type(number.replace("-", " "))
    user.find(marker="erase-submit").click()
    await user.should_see("Customer erased: 1 card(s) deactivated.", retries=WAIT)
    await user.should_see(marker="erased-banner", retries=WAIT)
    await user.should_not_see(marker="customer-erase")
    await user.should_not_see(marker="customer-save")  # no contact details to edit any more

    erased = await _fresh(db, customer.id)
    assert erased.erased_at is not None
    assert (erased.first_name, erased.last_name) == (None, None)
    assert erased.email is not None and erased.email.startswith("erased-")
    card = await db.scalar(
        select(LoyaltyCard)
        .where(LoyaltyCard.card_number == number)
        .execution_options(populate_existing=True)
    )
    assert card is not None and not card.is_active
    actor = await db.scalar(
        select(LedgerEntry.actor)
        .where(LedgerEntry.card_id == card.id)
        .order_by(LedgerEntry.id.desc())
        .limit(1)
    )
    assert actor == f"admin:{ALICE[0]}"
    trail = (await db.scalars(select(AdminAuditLog).where(AdminAuditLog.action == "erase"))).all()
    assert [(r.entity, r.entity_id, r.actor) for r in trail] == [
        ("customer", str(customer.id), ALICE[0])
    ]


async def test_a_deleted_customer_is_erased_by_email_and_an_erased_one_says_so(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    await enrol(db, people["a_store_codes"][0], "ida@example.com", first_name="Ida")
    customer = await _customer(db, "ida@example.com")
    await soft_delete(db, Customer, [customer.id], by="admin:root")
    await db.commit()
    await sign_in(user, ALICE, to=f"/customers/{customer.id}")
    await user.should_see(marker="customer-restore", retries=WAIT)
    user.find(marker="customer-erase").click()
    await user.should_see(marker="erase-submit", retries=WAIT)
    user.find(marker="erase-confirm-text").type("IDA@example.com ")
    user.find(marker="erase-submit").click()
    await user.should_see(marker="erased-banner", retries=WAIT)
    erased = await _fresh(db, customer.id)
    assert erased.erased_at is not None and erased.deleted_at is not None

    # Restored, it stays erased.
    user.find(marker="customer-restore").click()
    await user.should_see("Customer restored.", retries=WAIT)
    await user.should_see(marker="erased-banner", retries=WAIT)
    await user.should_see(f"Erased customer #{customer.id}")
    back = await _fresh(db, customer.id)
    assert back.deleted_at is None and back.erased_at == erased.erased_at


async def test_only_an_admin_of_the_merchant_may_erase(
    people: dict[str, Any], db: AsyncSession
) -> None:
    await enrol(db, people["a_store_codes"][0], "eve@example.com")
    customer = await _customer(db, "eve@example.com")
    bob = Principal(0, BOB[0], UserRole.MERCHANT_ADMIN, people["b"])
    alice = Principal(0, ALICE[0], UserRole.MERCHANT_ADMIN, people["a"])
    with pytest.raises(DomainRefusal, match="does not exist"):
        await erasure_target(db, bob, customer.id, "eve@example.com")
    with pytest.raises(DomainRefusal, match="type their email"):
        await erasure_target(db, alice, customer.id, "eve@example.co")
    found = await erasure_target(db, alice, customer.id, " EVE@example.com")
    assert found.id == customer.id
