"""The plain values and the settings the wallets are built from."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

import pytest

from wallet import i18n
from wallet.cards import SUPPORTED_LOCALES, PassCard, PassProgram, ProgramType, normalize_locale
from wallet.settings import WalletSettings


def test_card_takes_strings_from_the_database_and_normalises_them(
    make_card: Callable[..., PassCard],
) -> None:
    card = make_card(program_type="points", background_color="#abc", locale="de_LU")
    assert card.program_type is ProgramType.POINTS
    assert card.background_color == "#AABBCC"
    assert card.locale == "de"
    assert card.serial_number == card.card_number


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"authentication_token": "short"}, "at least 16"),
        ({"qr_token": "qr-€uro"}, "ISO-8859-1"),
        ({"qr_token": ""}, "qr_token"),
        ({"updated_at": datetime(2026, 1, 1)}, "time zone"),
        ({"stamps_target": 0}, "stamps_target"),
        ({"points_balance": -1}, ">= 0"),
        ({"points_pending": -1}, "points_pending"),
        ({"next_expiry_points": -5}, "next_expiry_points"),
        (
            {"tier_name": "Silver", "next_tier_name": "Gold", "points_to_next_tier": -1},
            "points_to_next_tier must be >= 0",
        ),
        ({"next_tier_name": "Gold", "points_to_next_tier": 5}, "with a tier_name"),
        ({"tier_name": "Silver", "next_tier_name": "Gold"}, "go together"),
        ({"tier_name": "Silver", "points_to_next_tier": 5}, "go together"),
        ({"label_color": "teal"}, "hex colour"),
        ({"program_type": "coupons"}, "coupons"),
        ({"card_number": " "}, "card_number"),
    ],
)
def test_card_refuses_what_a_wallet_would_refuse(
    make_card: Callable[..., PassCard], overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        make_card(**overrides)


def test_points_program_needs_no_stamps_target(make_card: Callable[..., PassCard]) -> None:
    assert make_card(program_type=ProgramType.POINTS, stamps_target=0).stamps_target == 0


def test_card_repr_keeps_secrets_out(make_card: Callable[..., PassCard]) -> None:
    card = make_card(logo=b"\x89PNG-bytes")
    text = repr(card)
    assert card.qr_token not in text
    assert card.authentication_token not in text
    assert "PNG-bytes" not in text
    assert card.card_number in text


def test_program_needs_a_logo_url_for_google() -> None:
    with pytest.raises(ValueError, match="logo_url"):
        PassProgram(merchant_code="m", issuer_name="M", program_name="P", logo_url="")


def test_unknown_locales_fall_back_to_english() -> None:
    assert normalize_locale("pt-BR") == "en"
    assert normalize_locale("LB") == "lb"


def test_every_language_translates_every_label() -> None:
    assert set(i18n.TRANSLATIONS) == set(SUPPORTED_LOCALES)
    for table in i18n.TRANSLATIONS.values():
        assert table.keys() == i18n.TRANSLATIONS["en"].keys()
        assert all(value.strip() for value in table.values())
    # Change messages keep Apple's placeholder, or the new value would not be shown.
    for locale in SUPPORTED_LOCALES:
        assert "%@" in i18n.translate(i18n.STAMPS_CHANGED, locale)
        assert "%@" in i18n.translate(i18n.POINTS_CHANGED, locale)
        assert "%@" in i18n.translate(i18n.TIER_CHANGED, locale)


def test_the_next_expiry_is_shown_only_for_points_due(make_card: Callable[..., PassCard]) -> None:
    day = date(2026, 12, 31)
    assert make_card(next_expiry_points=120, next_expiry_on=day).next_expiry == (120, day)
    assert make_card(next_expiry_points=0, next_expiry_on=day).next_expiry is None
    assert make_card(next_expiry_points=120).next_expiry is None
    stamps = make_card(program_type=ProgramType.STAMPS, next_expiry_points=1, next_expiry_on=day)
    assert stamps.next_expiry is None


@pytest.mark.parametrize(
    ("locale", "pending", "expiry", "one"),
    [
        ("en", "40 points pending", "120 points expire on 31 Dec 2026", "1 point expires on 1 Jan"),
        (
            "fr",
            "40 points en attente",
            "120 points expirent le 31 déc. 2026",
            "1 point expire le 1er janv.",
        ),
        (
            "de",
            "40 Punkte ausstehend",
            "120 Punkte verfallen am 31. Dez. 2026",
            "1 Punkt verfällt am 1. Jan.",
        ),
        (
            "lb",
            "40 Punkten ausstoend",
            "120 Punkte lafen den 31. Dez. 2026 of",
            "1 Punkt leeft den 1. Jan. of",
        ),
        ("pt", "40 points pending", "120 points expire on 31 Dec 2026", "1 point expires on 1 Jan"),
    ],
)
def test_pending_and_expiry_sentences_in_every_language(
    locale: str, pending: str, expiry: str, one: str
) -> None:
    assert i18n.pending_text(40, locale) == pending
    assert i18n.expiry_text(120, date(2026, 12, 31), locale) == expiry
    assert i18n.expiry_text(1, date(2027, 1, 1), locale, year=False) == one


def test_what_the_next_tier_takes_is_shown_only_below_the_top(
    make_card: Callable[..., PassCard],
) -> None:
    silver = make_card(tier_name="Silver", next_tier_name="Gold", points_to_next_tier=230)
    assert silver.next_tier == (230, "Gold")
    assert make_card(tier_name="Gold").next_tier is None  # the top tier
    assert make_card().next_tier is None  # no tiers
    assert make_card().tier_name == ""


@pytest.mark.parametrize(
    ("locale", "many", "one"),
    [
        ("en", "230 points to Gold", "1 point to Gold"),
        ("fr", "Encore 230 points avant Gold", "Encore 1 point avant Gold"),
        ("de", "Noch 230 Punkte bis Gold", "Noch 1 Punkt bis Gold"),
        ("lb", "Nach 230 Punkten bis Gold", "Nach 1 Punkt bis Gold"),
        ("pt", "230 points to Gold", "1 point to Gold"),
    ],
)
def test_what_the_next_tier_takes_in_every_language(locale: str, many: str, one: str) -> None:
    assert i18n.tier_progress_text(230, "Gold", locale) == many
    assert i18n.tier_progress_text(1, "Gold", locale) == one
    assert i18n.tier_text("Silver", (230, "Gold"), locale) == f"Silver · {many}"
    assert i18n.tier_text("Gold", None, locale) == "Gold"


def test_every_language_has_the_sentences_and_twelve_months() -> None:
    for table in (i18n.PENDING_TEXT, i18n.EXPIRY_TEXT, i18n.TIER_PROGRESS_TEXT, i18n.MONTHS):
        assert set(table) == set(SUPPORTED_LOCALES)
    assert all(len(months) == 12 for months in i18n.MONTHS.values())
    assert [i18n.day_text(date(2026, m, 9), "de") for m in (3, 5)] == [
        "9. März 2026",
        "9. Mai 2026",
    ]


def test_settings_come_from_loyalty_wallet_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LOYALTY_WALLET_APPLE_PASS_TYPE_ID", "pass.lu.example")
    monkeypatch.setenv("LOYALTY_WALLET_APPLE_TEAM_ID", "TEAM123456")
    monkeypatch.setenv("LOYALTY_WALLET_APPLE_SIGNER_CERT_PATH", str(tmp_path / "c.pem"))
    monkeypatch.setenv("LOYALTY_WALLET_APPLE_SIGNER_KEY_PATH", str(tmp_path / "k.pem"))
    monkeypatch.setenv("LOYALTY_WALLET_APPLE_SIGNER_KEY_PASSWORD", "hunter2")
    monkeypatch.setenv("LOYALTY_WALLET_APPLE_WWDR_CERT_PATH", str(tmp_path / "w.cer"))
    monkeypatch.setenv(
        "LOYALTY_WALLET_GOOGLE_ORIGINS", '["https://a.example", "https://b.example"]'
    )
    settings = WalletSettings()
    assert settings.apple_enabled
    assert settings.apple_disabled_reason() is None
    assert not settings.google_enabled
    assert settings.google_origins == ["https://a.example", "https://b.example"]
    assert settings.apns_host == "api.push.apple.com" and settings.apns_port == 443
    assert settings.google_api_base_url == "https://walletobjects.googleapis.com/walletobjects/v1"
    # Certificate auth falls back to the pass type certificate, which APNs accepts.
    assert settings.apns_auth_mode == "certificate"
    assert settings.apns_enabled
    assert "hunter2" not in repr(settings)


def test_disabled_reasons_name_the_missing_variables() -> None:
    settings = WalletSettings(_env_file=None, apple_team_id="T")
    reason = settings.apple_disabled_reason()
    assert reason is not None
    assert "LOYALTY_WALLET_APPLE_PASS_TYPE_ID" in reason
    assert "LOYALTY_WALLET_APPLE_TEAM_ID" not in reason
    assert not settings.apple_enabled and not settings.apns_enabled


def test_token_auth_is_chosen_when_a_p8_key_is_configured(tmp_path: Path) -> None:
    settings = WalletSettings(
        _env_file=None,
        apple_pass_type_id="pass.x",
        apple_team_id="T",
        apns_key_path=tmp_path / "AuthKey.p8",
        apns_key_id="KID",
    )
    assert settings.apns_auth_mode == "token"
    assert settings.apns_enabled
