"""Self-enrolment of a store: a card through the engine's rules (channel self), the same
answer for a known and an unknown email, the card link by email through a real SMTP server on
loopback, rate limits, the merchant's switch, and four languages."""

from __future__ import annotations

import re
from email.message import EmailMessage
from typing import Any

import pytest
from nicegui.testing import User
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from admin_ui.i18n import pick_language
from domain.models import Customer, LedgerEntry, LoyaltyCard, LoyaltyProgram, Merchant
from tests.admin_ui.helpers import MAIN_FILE, WAIT, enrol, status_of, texts
from tests.support.smtp import Inbox

pytestmark = MAIN_FILE


async def _submit(user: User, email: str, first_name: str = "") -> None:
    user.find(marker="enroll-email").type(email)
    if first_name:
        user.find(marker="enroll-first-name").type(first_name)
    user.find(marker="enroll-submit").click()


def _link_in(message: EmailMessage) -> str:
    body = message.get_content()
    assert isinstance(body, str)
    found = re.search(r"https://loyalty\.example(/card/[A-Za-z0-9_-]+)", body)
    assert found, body
    return found.group(1)


async def test_a_new_customer_is_told_to_check_the_inbox_and_the_link_opens_the_card(
    mail_settings: Inbox,
    user: User,
    people: dict[str, Any],
    db: AsyncSession,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = people["a_store_codes"][0]
    await user.open(f"/enroll/{store}")
    await _submit(user, "Eva@Example.com", "Eva")
    await user.should_see("Check your inbox: we sent you a link to your card.", retries=WAIT)
    await user.should_not_see(marker="enroll-card-number")
    await user.should_not_see(marker="enroll-qr")
    card = (await db.scalars(select(LoyaltyCard))).one()
    customer = await db.get(Customer, card.customer_id)
    assert customer is not None
    assert (customer.email, customer.first_name, customer.locale) == (
        "eva@example.com",
        "Eva",
        "en",
    )
    entries = (
        await db.scalars(select(LedgerEntry.actor).where(LedgerEntry.card_id == card.id))
    ).all()
    assert entries and set(entries) == {"self"}
    (message,) = mail_settings.wait_for(1)
    assert mail_settings.recipients == [["Eva@Example.com"]]
    assert message["Subject"] == f"Your {people['a_name']} loyalty card"
    assert message["From"].addresses[0].addr_spec == "cards@shop.example"
    link = _link_in(message)
    assert link == f"/card/{card.link_token}"
    assert len(card.link_token) >= 43  # 256 bits, URL-safe base64 (or 64 hex characters)
    await user.open(link)
    await user.should_see(card.card_number, retries=WAIT)
    logged = "".join(capfd.readouterr()) + caplog.text
    for secret in ("eva@example.com", "Eva@Example.com", card.link_token):
        assert secret not in logged


async def test_a_known_email_gets_the_same_answer_and_no_card_on_the_page(
    mail_settings: Inbox, user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    number = await enrol(db, people["a_store_codes"][1], "finn@example.com", locale="de")
    card = (await db.scalars(select(LoyaltyCard))).one()
    await user.open(f"/enroll/{people['a_store_codes'][0]}")
    await _submit(user, "new.person@example.com")
    await user.should_see(marker="enroll-message", retries=WAIT)
    answer_new = texts(user, "enroll-message")
    await user.open(f"/enroll/{people['a_store_codes'][0]}")
    await _submit(user, "FINN@example.com")
    await user.should_see(marker="enroll-message", retries=WAIT)
    assert texts(user, "enroll-message") == answer_new
    await user.should_not_see(number)
    await user.should_not_see(card.qr_token)
    await user.should_not_see(card.link_token)
    messages = mail_settings.wait_for(2)
    assert _link_in(messages[1]) == f"/card/{card.link_token}"
    assert len((await db.scalars(select(LoyaltyCard.id))).all()) == 2  # one new card only


async def test_the_message_is_in_the_language_chosen_on_the_form(
    mail_settings: Inbox, user: User, people: dict[str, Any]
) -> None:
    await user.open(f"/enroll/{people['a_store_codes'][0]}?lang=fr")
    await _submit(user, "lea@example.com", "Léa")
    await user.should_see("Consultez votre boîte de réception", retries=WAIT)
    (message,) = mail_settings.wait_for(1)
    assert message["Subject"] == f"Votre carte de fidélité {people['a_name']}"
    assert message["Content-Language"] == "fr"
    assert "voici le lien vers votre carte" in message.get_content()


async def test_without_smtp_the_page_says_to_ask_at_the_counter(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    number = await enrol(db, people["a_store_codes"][0], "known@example.com")
    await user.open(f"/enroll/{people['a_store_codes'][0]}")
    await _submit(user, "known@example.com")
    await user.should_see("Please ask at the counter for your card", retries=WAIT)
    await user.should_not_see(number)


@pytest.fixture
def tight_limits(mail_settings: Inbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two answers per email, three per client address (read when ``user`` builds the app)."""
    from core.settings import get_settings

    monkeypatch.setenv("LOYALTY_ENROLL_LIMIT_PER_EMAIL", "2")
    monkeypatch.setenv("LOYALTY_ENROLL_LIMIT_PER_IP", "3")
    get_settings.cache_clear()


async def test_answers_are_rate_limited_per_email_and_per_client(
    tight_limits: None, mail_settings: Inbox, user: User, people: dict[str, Any]
) -> None:
    store = people["a_store_codes"][0]
    for _ in range(2):
        await user.open(f"/enroll/{store}")
        await _submit(user, "ida@example.com")
        await user.should_see("Check your inbox", retries=WAIT)
    await user.open(f"/enroll/{store}")
    await _submit(user, "IDA@example.com")
    await user.should_see("Too many requests. Please wait a while", retries=WAIT)
    await user.should_not_see("Check your inbox")
    await user.open(f"/enroll/{store}")
    await _submit(user, "jon@example.com")  # the address's third answer
    await user.should_see("Check your inbox", retries=WAIT)
    await user.open(f"/enroll/{store}")
    await _submit(user, "kim@example.com")  # a fourth from the same address
    await user.should_see("Too many requests. Please wait a while", retries=WAIT)
    assert len(mail_settings.wait_for(3)) == 3


async def test_a_double_submit_enrols_once(
    mail_settings: Inbox, user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    await user.open(f"/enroll/{people['a_store_codes'][0]}")
    user.find(marker="enroll-email").type("gus@example.com")
    button = user.find(marker="enroll-submit")
    button.click()
    button.click()
    await user.should_see(marker="enroll-message", retries=WAIT)
    assert len((await db.scalars(select(LoyaltyCard.id))).all()) == 1
    assert len(mail_settings.wait_for(1)) == 1


async def test_an_invalid_email_is_said_on_the_page(user: User, people: dict[str, Any]) -> None:
    await user.open(f"/enroll/{people['a_store_codes'][0]}?lang=de")
    await _submit(user, "not-an-email")
    await user.should_see("Bitte geben Sie eine gültige E-Mail-Adresse ein.", retries=WAIT)
    await user.should_not_see(marker="enroll-message")


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


async def test_the_page_has_a_language_switch_and_the_merchants_privacy_notice(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    await db.execute(
        update(LoyaltyProgram)
        .where(LoyaltyProgram.id == people["a_program"])
        .values(privacy_url="https://shop.example/privacy")
    )
    await db.commit()
    store = people["a_store_codes"][0]
    await user.open(f"/enroll/{store}?lang=de")
    await user.should_see("Treten Sie unserem Treueprogramm bei", retries=WAIT)
    (french,) = user.find(marker="lang-fr").elements
    assert french.props["href"] == f"/enroll/{store}?lang=fr"
    (privacy,) = user.find(marker="privacy-link").elements
    assert privacy.props["href"] == "https://shop.example/privacy"
    await user.should_see("Datenschutz")
