"""The customer's card page and its pass download, through NiceGUI's simulated user."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from google.auth import jwt
from nicegui import ui
from nicegui.testing import User
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from admin_ui.card_page import TEXTS, qr_data_url
from admin_ui.card_texts import ENTRY_WORDS, expiry_words, tier_progress_words
from core.settings import get_settings
from domain.models import LedgerType, LoyaltyCard, Merchant, ProgramType
from domain.soft_delete import soft_delete
from domain.wallet_cards import TierStanding, tier_standing
from tests.support.pkpass_check import verified_files
from tests.support.wallet_fakes import GOOGLE_ISSUER, write_service_account
from tests.support.wallet_seed import LOGO_URL, add_entry, seed_card, seed_wallet_merchant
from tests.wallet.pki import PASS_TYPE_ID, TEAM_ID, ApplePki, Issued
from wallet import PKPASS_MIME_TYPE, SUPPORTED_LOCALES, get_wallet_settings

pytestmark = pytest.mark.nicegui_main_file("tests/wallet_web/card_page_main.py")

WALLET_ENV = "LOYALTY_WALLET_"


@pytest.fixture(autouse=True)
def page_env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """The page's database is this session's; no wallet set up unless a test says so."""
    import os

    for name in [n for n in os.environ if n.startswith(WALLET_ENV)]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("LOYALTY_DATABASE_URL", database_url)
    get_settings.cache_clear()
    get_wallet_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()
    get_wallet_settings.cache_clear()


@pytest.fixture
def wallets_on(
    page_env: pytest.MonkeyPatch, apple_pki: ApplePki, google_sa_key: Issued, tmp_path: Path
) -> None:
    """Apple pass signing and Google save links configured through the environment."""
    values = {
        "APPLE_PASS_TYPE_ID": PASS_TYPE_ID,
        "APPLE_TEAM_ID": TEAM_ID,
        "APPLE_SIGNER_CERT_PATH": str(apple_pki.signer_cert_path),
        "APPLE_SIGNER_KEY_PATH": str(apple_pki.signer_key_path),
        "APPLE_SIGNER_KEY_PASSWORD": apple_pki.signer_key_password,
        "APPLE_WWDR_CERT_PATH": str(apple_pki.wwdr_path),
        "APPLE_WEB_SERVICE_URL": "https://loyalty.example.lu/passkit",
        "GOOGLE_ISSUER_ID": GOOGLE_ISSUER,
        "GOOGLE_SERVICE_ACCOUNT_PATH": str(
            write_service_account(tmp_path, google_sa_key, "http://127.0.0.1:9/token")
        ),
        "GOOGLE_ORIGINS": '["https://loyalty.example.lu"]',
    }
    for name, value in values.items():
        page_env.setenv(WALLET_ENV + name, value)
    get_wallet_settings.cache_clear()


async def seeded_card(
    db_sessions: async_sessionmaker[AsyncSession], **card: Any
) -> tuple[Merchant, LoyaltyCard]:
    async with db_sessions() as db:
        merchant, program = await seed_wallet_merchant(db)
        row = await seed_card(db, merchant, program, **card)
        return merchant, row


def only(user: User, marker: str) -> Any:
    (element,) = user.find(marker=marker).elements
    return element


async def test_the_card_page_in_the_customers_language(
    user: User, db_sessions: async_sessionmaker[AsyncSession], wallets_on: None
) -> None:
    merchant, card = await seeded_card(db_sessions, stamp_count=3, points_balance=120, locale="fr")
    async with db_sessions() as db:
        when = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
        await add_entry(db, card, LedgerType.WELCOME_BONUS, points=50, occurred_at=when)
        await add_entry(
            db,
            card,
            LedgerType.STAMP_EARNED,
            stamps=1,
            points=70,
            occurred_at=when.replace(hour=10),
        )
        await add_entry(
            db,
            card,
            LedgerType.STAMP_REDEEMED,
            stamps=-10,
            reward_description="Free coffee",
            occurred_at=when.replace(hour=11),
        )

    await user.open(f"/card/{card.link_token}")
    await user.should_see("Café Lux")
    await user.should_see("Anna Muller")
    await user.should_see("Tampons")
    assert only(user, "stamps").text == "3 / 10"
    assert only(user, "points").text == "120"
    await user.should_see("À 10 tampons : Free coffee")
    await user.should_see(f"Numéro de carte: {card.card_number}")
    await user.should_see("Activité récente")
    # Newest first, in words, at the merchant's local time (Luxembourg: UTC+1 in March).
    rows = [
        label.text
        for label in sorted(user.find(kind=ui.label).elements, key=lambda e: e.id)
        if label.text.startswith(("Récompense", "Tampons obtenus", "Bonus"))
    ]
    assert rows == [
        "Récompense utilisée: −10 tampons, Free coffee",
        "Tampons obtenus: +1 tampon, +70 points",
        "Bonus de bienvenue: +50 points",
    ]
    await user.should_see("14/03/2026 12:30")
    assert only(user, "qr").source == qr_data_url(card.qr_token)
    assert only(user, "apple-wallet").props["href"] == f"/card/{card.link_token}/pass.pkpass"
    await user.should_see("Ajouter à Apple Wallet")

    google = only(user, "google-wallet").props["href"]
    assert google.startswith("https://pay.google.com/gp/v/save/")
    claims = jwt.decode(google.rsplit("/", 1)[1], verify=False)  # type: ignore[no-untyped-call]
    [document] = claims["payload"]["loyaltyObjects"]
    assert document["id"] == f"{GOOGLE_ISSUER}.{card.card_number}"
    assert document["barcode"]["value"] == card.qr_token
    [program] = claims["payload"]["loyaltyClasses"]
    assert program["id"] == f"{GOOGLE_ISSUER}.{merchant.code}"
    assert program["programLogo"]["sourceUri"]["uri"] == LOGO_URL


@pytest.mark.parametrize(
    ("lang", "history", "stamps"),
    [
        ("de", "Letzte Aktivitäten", "Stempel"),
        ("lb", "Lescht Aktivitéiten", "Stempelen"),
        ("en", "Recent activity", "Stamps"),
    ],
)
async def test_lang_overrides_the_customers_locale(
    user: User,
    db_sessions: async_sessionmaker[AsyncSession],
    lang: str,
    history: str,
    stamps: str,
) -> None:
    _, card = await seeded_card(db_sessions, locale="fr")
    await user.open(f"/card/{card.link_token}?lang={lang}")
    await user.should_see(history)
    await user.should_see(stamps)
    await user.should_not_see("Activité récente")


async def test_without_wallets_no_wallet_button_and_no_pass(
    user: User, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    _, card = await seeded_card(db_sessions, locale="en")
    await user.open(f"/card/{card.link_token}")
    await user.should_see("No activity yet.")
    await user.should_not_see(marker="apple-wallet")
    await user.should_not_see(marker="google-wallet")
    await user.should_not_see("Add to Google Wallet")
    answer = await user.http_client.get(f"/card/{card.link_token}/pass.pkpass")
    assert answer.status_code == 404
    assert "Apple Wallet is not available" in answer.text
    assert answer.headers["content-type"].startswith("text/html")


async def test_the_pass_download_is_a_signed_pass_of_the_current_card(
    user: User,
    db_sessions: async_sessionmaker[AsyncSession],
    wallets_on: None,
    apple_pki: ApplePki,
    tmp_path: Path,
) -> None:
    _, card = await seeded_card(db_sessions, stamp_count=7)
    answer = await user.http_client.get(f"/card/{card.link_token}/pass.pkpass")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == PKPASS_MIME_TYPE
    assert "attachment" in answer.headers["content-disposition"]
    assert "no-store" in answer.headers["cache-control"]
    files = verified_files(answer.content, tmp_path, apple_pki)
    document = json.loads(files["pass.json"])
    assert document["serialNumber"] == card.card_number
    assert document["authenticationToken"] == card.apple_authentication_token
    assert document["storeCard"]["primaryFields"][0]["value"] == "7 / 10"


async def test_unknown_and_deleted_cards_get_a_friendly_not_found(
    user: User, db_sessions: async_sessionmaker[AsyncSession], wallets_on: None
) -> None:
    _, card = await seeded_card(db_sessions)
    async with db_sessions() as db:
        await soft_delete(db, LoyaltyCard, [card.id], by="test")
        await db.commit()
    for token in ("no-such-token", card.link_token):
        page = await user.http_client.get(f"/card/{token}")
        assert page.status_code == 404
        assert "Card not found" in page.text
        assert card.card_number not in page.text
        download = await user.http_client.get(f"/card/{token}/pass.pkpass?lang=de")
        assert download.status_code == 404
        assert "Karte nicht gefunden" in download.text


async def test_a_wallet_set_up_with_unusable_files_shows_no_button(
    user: User,
    db_sessions: async_sessionmaker[AsyncSession],
    wallets_on: None,
    page_env: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # Every setting named, but the files cannot be read: a button would only lead to
    # "Apple Wallet is not available", so there is none; a direct hit still gets that page.
    page_env.setenv(WALLET_ENV + "APPLE_SIGNER_CERT_PATH", str(tmp_path / "missing.pem"))
    page_env.setenv(WALLET_ENV + "GOOGLE_SERVICE_ACCOUNT_PATH", str(tmp_path / "none.json"))
    get_wallet_settings.cache_clear()
    _, card = await seeded_card(db_sessions, locale="en")
    await user.open(f"/card/{card.link_token}")
    await user.should_see("No activity yet.")
    await user.should_not_see(marker="apple-wallet")
    await user.should_not_see(marker="google-wallet")
    answer = await user.http_client.get(f"/card/{card.link_token}/pass.pkpass")
    assert answer.status_code == 404
    assert "Apple Wallet is not available" in answer.text


async def test_the_stamp_grid_shows_the_stamps_collected_of_the_target(
    user: User, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    _, card = await seeded_card(db_sessions, stamp_count=7, locale="en")
    await user.open(f"/card/{card.link_token}")
    grid = only(user, "stamp-grid")
    assert grid.props["aria-label"] == "7 of 10 stamps"
    assert grid.props["role"] == "img"
    assert len(user.find(marker="stamp-filled").elements) == 7
    assert len(user.find(marker="stamp-empty").elements) == 2
    reward = only(user, "stamp-reward")
    # The last circle is the reward, named by its tooltip.
    [tooltip] = [e for e in reward.default_slot.children if isinstance(e, ui.tooltip)]
    assert tooltip.text == "Free coffee"
    # In the program's colours: its label colour draws what is still to collect.
    assert reward.style["border"] == "2px dashed #D1D5DB"
    assert reward.style["background-color"] == "transparent"
    filled = next(iter(user.find(marker="stamp-filled").elements))
    assert filled.style["background-color"] == "#FFFFFF"


async def test_a_full_card_fills_the_reward_and_a_french_grid_says_so(
    user: User, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    _, card = await seeded_card(db_sessions, stamp_count=10, locale="fr")
    await user.open(f"/card/{card.link_token}")
    assert only(user, "stamp-grid").props["aria-label"] == "10 sur 10 tampons"
    assert len(user.find(marker="stamp-filled").elements) == 9
    await user.should_not_see(marker="stamp-empty")
    assert only(user, "stamp-reward").style["background-color"] == "#FFFFFF"


async def test_beyond_thirty_stamps_the_number_alone(
    user: User, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with db_sessions() as db:
        merchant, program = await seed_wallet_merchant(db, stamps_target=31)
        card = await seed_card(db, merchant, program, stamp_count=4, locale="en")
    await user.open(f"/card/{card.link_token}")
    assert only(user, "stamps").text == "4 / 31"
    await user.should_not_see(marker="stamp-grid")


async def test_a_points_program_has_no_stamp_grid(
    user: User, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with db_sessions() as db:
        merchant, program = await seed_wallet_merchant(db, type=ProgramType.POINTS)
        card = await seed_card(db, merchant, program, points_balance=40, locale="en")
    await user.open(f"/card/{card.link_token}")
    assert only(user, "points").text == "40"
    await user.should_not_see(marker="stamps")
    await user.should_not_see(marker="stamp-grid")


async def test_the_language_switch_links_to_the_four_languages(
    user: User, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    _, card = await seeded_card(db_sessions, locale="en")
    await user.open(f"/card/{card.link_token}")
    names = {"en": "English", "fr": "Français", "de": "Deutsch", "lb": "Lëtzebuergesch"}
    for code, name in names.items():
        link = only(user, f"lang-{code}")
        assert link.text == name
        assert link.props["href"] == f"/card/{card.link_token}?lang={code}"
        assert link.props["lang"] == code
        assert ("aria-current" in link.props) == (code == "en")
    assert only(user, "language-switch").props["aria-label"] == "Language"

    user.find(marker="lang-fr").click()
    await user.should_see("Activité récente")
    await user.should_see("Tampons")
    await user.should_not_see("Recent activity")
    assert only(user, "lang-fr").props["aria-current"] == "page"
    assert "aria-current" not in only(user, "lang-en").props
    assert only(user, "language-switch").props["aria-label"] == "Langue"


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        ("en", "Privacy notice"),
        ("fr", "Protection des données"),
        ("de", "Datenschutz"),
        ("lb", "Dateschutz"),
    ],
)
async def test_the_privacy_link_when_the_program_has_a_notice(
    user: User, db_sessions: async_sessionmaker[AsyncSession], lang: str, words: str
) -> None:
    async with db_sessions() as db:
        merchant, program = await seed_wallet_merchant(
            db, privacy_url="https://cafe-lux.example.lu/privacy"
        )
        card = await seed_card(db, merchant, program)
    await user.open(f"/card/{card.link_token}?lang={lang}")
    link = only(user, "privacy-link")
    assert link.text == words
    assert link.props["href"] == "https://cafe-lux.example.lu/privacy"
    assert link.props["target"] == "_blank"
    # The page's address is the card's secret: it must not travel as a Referer.
    assert "noreferrer" in link.props["rel"]


@pytest.mark.parametrize("privacy_url", [None, "", "javascript:alert(1)"])
async def test_no_privacy_link_without_a_usable_notice(
    user: User, db_sessions: async_sessionmaker[AsyncSession], privacy_url: str | None
) -> None:
    async with db_sessions() as db:
        merchant, program = await seed_wallet_merchant(db, privacy_url=privacy_url)
        card = await seed_card(db, merchant, program, locale="en")
    await user.open(f"/card/{card.link_token}")
    await user.should_see("Recent activity")
    await user.should_not_see(marker="privacy-link")
    await user.should_not_see("Privacy notice")


@pytest.mark.parametrize(
    ("lang", "pending", "expiry", "released"),
    [
        (
            "fr",
            "40 points en attente",
            "120 points expirent le 31 déc. 2030",
            "Points en attente désormais disponibles: +40 points",
        ),
        (
            "en",
            "40 points pending",
            "120 points expire on 31 Dec 2030",
            "Pending points now available: +40 points",
        ),
        (
            "de",
            "40 Punkte ausstehend",
            "120 Punkte verfallen am 31. Dez. 2030",
            "Ausstehende Punkte jetzt verfügbar: +40 Punkte",
        ),
        (
            "lb",
            "40 Punkten ausstoend",
            "120 Punkte lafen den 31. Dez. 2030 of",
            "Ausstoend Punkten elo disponibel: +40 Punkten",
        ),
    ],
)
async def test_pending_points_and_the_next_expiry_beside_the_balance(
    user: User,
    db_sessions: async_sessionmaker[AsyncSession],
    lang: str,
    pending: str,
    expiry: str,
    released: str,
) -> None:
    # Calendar-year points going at the start of 2031, Luxembourg time (23:00 UTC the day
    # before): the last day to spend them is 31 December 2030.
    _, card = await seeded_card(
        db_sessions,
        points_balance=150,
        points_pending=40,
        dated_points=120,
        next_expiry_at=datetime(2030, 12, 31, 23, tzinfo=UTC),
        next_expiry_points=120,
        locale="fr",
    )
    async with db_sessions() as db:
        when = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
        await add_entry(
            db, card, LedgerType.POINTS_RELEASED, points=40, pending_delta=-40, occurred_at=when
        )
    await user.open(f"/card/{card.link_token}?lang={lang}")
    assert only(user, "points").text == "150"
    assert only(user, "points-pending").text == pending
    assert only(user, "points-expiry").text == expiry
    await user.should_see(released)


def history_words(user: User) -> list[str]:
    """What the recent activity says of each entry, newest first (the dates left out)."""
    (history,) = user.find(marker="history").elements
    labels = [e for e in history.descendants() if isinstance(e, ui.label)]
    return [label.text for label in labels if "whitespace-nowrap" not in label.classes]


@pytest.mark.parametrize(
    ("lang", "earned", "voided", "split", "released"),
    [
        (
            "en",
            "Points earned: +120 points (pending)",
            "Points cancelled (return): −50 points (pending)",
            "Points cancelled (return): −20 points, −1 point (pending)",
            "Pending points now available: +40 points",
        ),
        (
            "fr",
            "Points gagnés: +120 points (en attente)",
            "Points annulés (retour): −50 points (en attente)",
            "Points annulés (retour): −20 points, −1 point (en attente)",
            "Points en attente désormais disponibles: +40 points",
        ),
        (
            "de",
            "Punkte gesammelt: +120 Punkte (ausstehend)",
            "Punkte storniert (Rückgabe): −50 Punkte (ausstehend)",
            "Punkte storniert (Rückgabe): −20 Punkte, −1 Punkt (ausstehend)",
            "Ausstehende Punkte jetzt verfügbar: +40 Punkte",
        ),
        (
            "lb",
            "Punkte gesammelt: +120 Punkten (ausstoend)",
            "Punkte storniert (Retour): −50 Punkten (ausstoend)",
            "Punkte storniert (Retour): −20 Punkten, −1 Punkt (ausstoend)",
            "Ausstoend Punkten elo disponibel: +40 Punkten",
        ),
    ],
)
async def test_points_earned_or_voided_while_pending_show_their_amount(
    user: User,
    db_sessions: async_sessionmaker[AsyncSession],
    lang: str,
    earned: str,
    voided: str,
    split: str,
    released: str,
) -> None:
    # A purchase in a program with pending days earns pending points only (CONTRACT.md
    # 7.2): points_delta 0, pending_delta +120; a return voids them from that pending lot
    # first, the rest from the spendable balance; a release's words say the points were
    # pending, its amount is what became spendable.
    _, card = await seeded_card(db_sessions, points_balance=20, points_pending=29, locale="en")
    async with db_sessions() as db:
        when = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
        await add_entry(db, card, LedgerType.POINTS_EARNED, pending_delta=120, occurred_at=when)
        await add_entry(
            db,
            card,
            LedgerType.POINTS_VOIDED,
            pending_delta=-50,
            occurred_at=when.replace(hour=10),
        )
        await add_entry(
            db,
            card,
            LedgerType.POINTS_VOIDED,
            points=-20,
            pending_delta=-1,
            occurred_at=when.replace(hour=11),
        )
        await add_entry(
            db,
            card,
            LedgerType.POINTS_RELEASED,
            points=40,
            pending_delta=-40,
            occurred_at=when.replace(hour=12),
        )
    await user.open(f"/card/{card.link_token}?lang={lang}")
    await user.should_see(marker="history")
    assert history_words(user) == [released, split, voided, earned]


async def test_no_pending_or_expiry_line_without_them_or_without_points(
    user: User, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    _, card = await seeded_card(db_sessions, points_balance=150, locale="en")
    await user.open(f"/card/{card.link_token}")
    assert only(user, "points").text == "150"
    await user.should_not_see(marker="points-pending")
    await user.should_not_see(marker="points-expiry")
    async with db_sessions() as db:
        merchant, program = await seed_wallet_merchant(db, type=ProgramType.STAMPS)
        stamps = await seed_card(
            db,
            merchant,
            program,
            points_pending=5,
            next_expiry_at=datetime(2030, 6, 1, tzinfo=UTC),
            next_expiry_points=5,
            locale="en",
        )
    await user.open(f"/card/{stamps.link_token}")
    await user.should_see(marker="stamps")
    await user.should_not_see(marker="points-pending")
    await user.should_not_see(marker="points-expiry")


TIERS = [
    {"id": "bronze", "name": "Bronze", "threshold_points": 0, "multiplier": 1},
    {"id": "silver", "name": "Silver", "threshold_points": 500, "multiplier": 1.25},
    {"id": "gold", "name": "Gold", "threshold_points": 1000, "multiplier": 1.5},
]


async def tiered_card(
    db_sessions: async_sessionmaker[AsyncSession], **card: Any
) -> tuple[Merchant, LoyaltyCard]:
    async with db_sessions() as db:
        merchant, program = await seed_wallet_merchant(db, tiers=TIERS)
        return merchant, await seed_card(db, merchant, program, **card)


@pytest.mark.parametrize(
    ("lang", "title", "progress"),
    [
        ("fr", "Niveau", "Encore 230 points avant Gold"),
        ("en", "Tier", "230 points to Gold"),
        ("de", "Stufe", "Noch 230 Punkte bis Gold"),
        ("lb", "Niveau", "Nach 230 Punkten bis Gold"),
    ],
)
async def test_the_tier_and_what_the_next_takes_beside_the_balance(
    user: User,
    db_sessions: async_sessionmaker[AsyncSession],
    lang: str,
    title: str,
    progress: str,
) -> None:
    _, card = await tiered_card(
        db_sessions, points_balance=150, tier="silver", qualifying_points=770, locale="fr"
    )
    await user.open(f"/card/{card.link_token}?lang={lang}")
    assert only(user, "points").text == "150"
    assert only(user, "tier").text == "Silver"
    assert only(user, "tier-next").text == progress
    await user.should_see(title)


async def test_the_top_tier_alone_and_a_new_card_in_the_first_tier(
    user: User, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    _, gold = await tiered_card(db_sessions, tier="gold", qualifying_points=1400, locale="en")
    await user.open(f"/card/{gold.link_token}")
    assert only(user, "tier").text == "Gold"
    await user.should_not_see(marker="tier-next")
    # No purchase since the program gained tiers: where its points put it, the first tier.
    _, new = await tiered_card(db_sessions, qualifying_points=0, locale="en")
    await user.open(f"/card/{new.link_token}")
    assert only(user, "tier").text == "Bronze"
    assert only(user, "tier-next").text == "500 points to Silver"


async def test_no_tier_without_tiers_or_without_points(
    user: User, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    _, card = await seeded_card(db_sessions, points_balance=150, tier="silver", locale="en")
    await user.open(f"/card/{card.link_token}")
    assert only(user, "points").text == "150"
    await user.should_not_see(marker="tier")
    await user.should_not_see(marker="tier-next")
    await user.should_not_see("Tier")
    async with db_sessions() as db:
        merchant, program = await seed_wallet_merchant(db, type=ProgramType.STAMPS, tiers=TIERS)
        stamps = await seed_card(db, merchant, program, tier="silver", locale="en")
    await user.open(f"/card/{stamps.link_token}")
    await user.should_see(marker="stamps")
    await user.should_not_see(marker="tier")


async def test_the_pass_download_shows_the_tier(
    user: User,
    db_sessions: async_sessionmaker[AsyncSession],
    wallets_on: None,
    apple_pki: ApplePki,
    tmp_path: Path,
) -> None:
    _, card = await tiered_card(db_sessions, tier="silver", qualifying_points=770)
    answer = await user.http_client.get(f"/card/{card.link_token}/pass.pkpass")
    assert answer.status_code == 200
    files = verified_files(answer.content, tmp_path, apple_pki)
    store = json.loads(files["pass.json"])["storeCard"]
    assert [(f["key"], f["value"]) for f in store["auxiliaryFields"]] == [("tier", "Silver")]
    assert store["backFields"][0]["value"] == "230 points to Gold"
    assert "Encore 230 points avant Gold" in files["fr.lproj/pass.strings"].decode("utf-16")


def test_a_cards_tier_standing() -> None:
    assert tier_standing(TIERS, "silver", 770) == TierStanding("silver", "Silver", "Gold", 230)
    assert tier_standing(TIERS, "gold", 400) == TierStanding("gold", "Gold", None, None)
    # Not placed yet, or in a tier the program no longer has: where its points put it.
    assert tier_standing(TIERS, None, 0) == TierStanding("bronze", "Bronze", "Silver", 500)
    assert tier_standing(TIERS, "platinum", 600) == TierStanding("silver", "Silver", "Gold", 400)
    assert tier_standing([], "silver", 770) is None
    assert tier_standing(None, None, 0) is None
    assert tier_progress_words("de", 1, "Gold") == "Noch 1 Punkt bis Gold"


def test_the_year_of_an_expiry_is_said_only_when_it_is_not_this_one() -> None:
    today = date(2026, 12, 6)
    assert expiry_words("en", 120, date(2026, 12, 31), today) == "120 points expire on 31 Dec"
    assert expiry_words("fr", 1, date(2027, 1, 1), today) == "1 point expire le 1er janv. 2027"


def test_every_ledger_entry_has_words_in_all_four_languages() -> None:
    assert set(ENTRY_WORDS) == set(SUPPORTED_LOCALES)
    for words in ENTRY_WORDS.values():
        assert set(words) == set(LedgerType)


def test_every_text_of_the_page_is_in_all_four_languages() -> None:
    assert set(TEXTS) == set(SUPPORTED_LOCALES)
    for texts in TEXTS.values():
        assert texts.keys() == TEXTS["en"].keys()
        assert all(text.strip() for text in texts.values())
