"""Self-enrolment of a store: a card through the engine's rules (channel self), its QR code and
wallet buttons, the merchant's switch, and four languages."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from nicegui import ui
from nicegui.testing import User
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from admin_ui.i18n import pick_language
from domain.models import Customer, LedgerEntry, LoyaltyCard, Merchant
from tests.admin_ui.helpers import MAIN_FILE, WAIT, status_of, texts

pytestmark = MAIN_FILE


async def _submit(user: User, email: str, first_name: str = "") -> None:
    user.find(marker="enroll-email").type(email)
    if first_name:
        user.find(marker="enroll-first-name").type(first_name)
    user.find(marker="enroll-submit").click()


async def test_a_customer_enrols_and_gets_a_card_with_its_qr_code_and_wallet_buttons(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    store = people["a_store_codes"][0]
    await user.open(f"/enroll/{store}")
    await _submit(user, "Eva@Example.com", "Eva")
    await user.should_see("Welcome! Here is your card.", retries=WAIT)
    (number,) = texts(user, "enroll-card-number")
    card = (await db.scalars(select(LoyaltyCard).where(LoyaltyCard.card_number == number))).one()
    customer = await db.get(Customer, card.customer_id)
    assert customer is not None
    assert (customer.email, customer.first_name, customer.locale) == (
        "eva@example.com",
        "Eva",
        "en",
    )
    (qr,) = user.find(marker="enroll-qr").elements
    assert isinstance(qr, ui.image)
    assert qr.source.startswith("data:image/png;base64,")
    assert base64.b64decode(qr.source.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    (apple,) = user.find(marker="enroll-apple").elements
    assert apple.props["href"] == f"/card/{card.qr_token}/pass.pkpass"
    (page,) = user.find(marker="enroll-card-page").elements
    assert page.props["href"] == f"/card/{card.qr_token}"
    entries = (
        await db.scalars(select(LedgerEntry.actor).where(LedgerEntry.card_id == card.id))
    ).all()
    assert entries and set(entries) == {"self"}


async def test_enrolling_again_shows_the_same_card(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    store = people["a_store_codes"][0]
    await user.open(f"/enroll/{store}")
    await _submit(user, "finn@example.com")
    await user.should_see(marker="enroll-card-number", retries=WAIT)
    (first,) = texts(user, "enroll-card-number")
    await user.open(f"/enroll/{people['a_store_codes'][1]}")  # another store, same merchant
    await _submit(user, "FINN@example.com")
    await user.should_see("You already have a card: here it is.", retries=WAIT)
    assert texts(user, "enroll-card-number") == [first]
    assert await db.scalar(select(LoyaltyCard.id).where(LoyaltyCard.card_number != first)) is None


async def test_a_double_submit_enrols_once(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    await user.open(f"/enroll/{people['a_store_codes'][0]}")
    user.find(marker="enroll-email").type("gus@example.com")
    button = user.find(marker="enroll-submit")
    button.click()
    button.click()
    await user.should_see(marker="enroll-card-number", retries=WAIT)
    assert len((await db.scalars(select(LoyaltyCard.id))).all()) == 1


async def test_an_invalid_email_is_said_on_the_page(user: User, people: dict[str, Any]) -> None:
    await user.open(f"/enroll/{people['a_store_codes'][0]}?lang=de")
    await _submit(user, "not-an-email")
    await user.should_see("Bitte geben Sie eine gültige E-Mail-Adresse ein.", retries=WAIT)
    await user.should_not_see(marker="enroll-card-number")


async def test_self_enrolment_switched_off_says_why_in_the_asked_language(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    await db.execute(
        update(Merchant).where(Merchant.id == people["a"]).values(allow_self_enrollment=False)
    )
    await db.commit()
    await user.open(f"/enroll/{people['a_store_codes'][0]}?lang=fr")
    await user.should_see("L'inscription en ligne n'est pas disponible ici.", retries=WAIT)
    await user.should_not_see(marker="enroll-email")


async def test_the_browser_language_is_used_without_lang(
    user: User, people: dict[str, Any]
) -> None:
    user.http_client.headers["Accept-Language"] = "lb-LU,lb;q=0.9,de;q=0.8"
    await user.open(f"/enroll/{people['a_store_codes'][0]}")
    await user.should_see("Maacht mat bei eisem Treieprogramm", retries=WAIT)


async def test_an_unknown_store_is_not_found(user: User, people: dict[str, Any]) -> None:
    status, body = await status_of(user, "/enroll/NOPE?lang=fr")
    assert status == 404
    assert "Ce magasin n'existe pas." in body


@pytest.mark.parametrize(
    ("query", "header", "expected"),
    [
        ("fr", "de", "fr"),
        ("FR-lu", None, "fr"),
        ("xx", "de-DE,de;q=0.9,en;q=0.8", "de"),
        (None, "es,fr;q=0.5,de;q=0.7", "de"),
        (None, "fr;q=0,en;q=0.1", "en"),
        (None, "es", "en"),
        (None, None, "en"),
        (None, "lb", "lb"),
    ],
)
def test_the_language_is_picked_from_the_query_then_accept_language(
    query: str | None, header: str | None, expected: str
) -> None:
    assert pick_language(query, header) == expected
