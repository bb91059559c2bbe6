"""Google Wallet: documents, the REST client against a local fake of Google, save links."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import jwt

from tests.support.wallet_fakes import (
    CLIENT_EMAIL,
    GOOGLE_ISSUER,
    SA_KEY_ID,
    write_service_account,
)
from tests.wallet.fake_google import FakeGoogle, Fault, running_fake_google
from tests.wallet.pki import Issued, _name, issue
from wallet.cards import PassCard, PassProgram, ProgramType
from wallet.errors import WalletConfigError
from wallet.google import (
    SAVE_URL,
    WALLET_SCOPE,
    AsyncGoogleWalletClient,
    GoogleWalletClient,
    GoogleWalletError,
    GoogleWalletRetryError,
    build_loyalty_class,
    build_loyalty_object,
    save_link,
)
from wallet.settings import GOOGLE_TOKEN_URL, WalletSettings

ISSUER = GOOGLE_ISSUER
KEY_ID = SA_KEY_ID
ORIGIN = "https://loyalty.example.lu"
OBJECT_ID = f"{ISSUER}.1234-5678-9012"
CLASS_ID = f"{ISSUER}.cafe-lux"


@pytest.fixture(scope="module")
def sa_key() -> Issued:
    """The service account's RSA key and a self-signed certificate of it (what Google
    publishes for a service account key, used here to verify signatures)."""
    return issue(_name(cn=CLIENT_EMAIL), key=rsa.generate_private_key(65537, 2048))


@pytest.fixture
def fake() -> Iterator[FakeGoogle]:
    with running_fake_google() as server:
        yield server


@pytest.fixture
def settings(fake: FakeGoogle, sa_key: Issued, tmp_path: Path) -> WalletSettings:
    return WalletSettings(
        _env_file=None,
        google_issuer_id=ISSUER,
        google_service_account_path=write_service_account(tmp_path, sa_key, fake.token_url),
        google_api_base_url=fake.api_url,
        google_origins=[ORIGIN],
        google_max_attempts=4,
    )


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(settings: WalletSettings, sleeps: list[float]) -> Iterator[GoogleWalletClient]:
    wallet = GoogleWalletClient(settings, sleep=sleeps.append)
    yield wallet
    wallet.close()


PROGRAM = PassProgram(
    merchant_code="cafe-lux",
    issuer_name="Café Lux",
    program_name="Café Lux Fidélité",
    logo_url="https://loyalty.example.lu/static/cafe-lux/logo.png",
    background_color="#6b2c1a",
)


# --- documents -------------------------------------------------------------------------------


def test_loyalty_object_of_a_hybrid_card(
    make_card: Callable[..., PassCard], settings: WalletSettings
) -> None:
    document = build_loyalty_object(make_card(), settings)
    assert document["id"] == OBJECT_ID
    assert document["classId"] == CLASS_ID
    assert document["state"] == "ACTIVE"
    assert document["accountName"] == "Anna Muller"
    assert document["accountId"] == "1234-5678-9012"
    assert document["barcode"] == {
        "type": "QR_CODE",
        "value": "qr-7f3a9c2e5b1d4a8f",
        "alternateText": "1234-5678-9012",
    }
    assert document["loyaltyPoints"]["balance"] == {"int": 1250}
    assert document["loyaltyPoints"]["label"] == "Points"  # the card is in French: same word
    assert document["secondaryLoyaltyPoints"]["balance"] == {"string": "3/10"}
    assert document["secondaryLoyaltyPoints"]["label"] == "Tampons"
    localized = document["secondaryLoyaltyPoints"]["localizedLabel"]
    assert localized["defaultValue"] == {"language": "fr", "value": "Tampons"}
    assert {t["language"]: t["value"] for t in localized["translatedValues"]} == {
        "en": "Stamps",
        "de": "Stempel",
        "lb": "Stempelen",
    }
    assert document["textModulesData"][0]["body"] == "Free coffee"


def test_loyalty_object_of_single_counter_programs(
    make_card: Callable[..., PassCard], settings: WalletSettings
) -> None:
    stamps = build_loyalty_object(make_card(program_type=ProgramType.STAMPS), settings)
    assert stamps["loyaltyPoints"]["balance"] == {"string": "3/10"}
    assert "secondaryLoyaltyPoints" not in stamps
    points = build_loyalty_object(make_card(program_type=ProgramType.POINTS), settings)
    assert points["loyaltyPoints"]["balance"] == {"int": 1250}
    assert "secondaryLoyaltyPoints" not in points
    inactive = build_loyalty_object(make_card(is_active=False), settings)
    assert inactive["state"] == "INACTIVE"


def test_a_text_module_tells_pending_points_and_the_next_expiry(
    make_card: Callable[..., PassCard], settings: WalletSettings
) -> None:
    card = make_card(points_pending=40, next_expiry_points=120, next_expiry_on=date(2026, 12, 31))
    reward, points = build_loyalty_object(card, settings)["textModulesData"]
    assert reward["id"] == "reward"
    assert points["id"] == "points"
    assert points["header"] == "Vos points"  # the card's language
    assert points["body"] == "40 points en attente · 120 points expirent le 31 déc. 2026"
    assert points["localizedBody"]["defaultValue"] == {"language": "fr", "value": points["body"]}
    assert {t["language"]: t["value"] for t in points["localizedBody"]["translatedValues"]} == {
        "en": "40 points pending · 120 points expire on 31 Dec 2026",
        "de": "40 Punkte ausstehend · 120 Punkte verfallen am 31. Dez. 2026",
        "lb": "40 Punkten ausstoend · 120 Punkte lafen den 31. Dez. 2026 of",
    }
    assert {t["language"]: t["value"] for t in points["localizedHeader"]["translatedValues"]} == {
        "en": "Your points",
        "de": "Ihre Punkte",
        "lb": "Är Punkten",
    }
    expiry_only = make_card(
        reward_description="", next_expiry_points=1, next_expiry_on=date(2027, 1, 1)
    )
    [module] = build_loyalty_object(expiry_only, settings)["textModulesData"]
    assert module["body"] == "1 point expire le 1er janv. 2027"


def test_no_points_module_without_pending_points_or_expiry(
    make_card: Callable[..., PassCard], settings: WalletSettings
) -> None:
    assert "textModulesData" not in build_loyalty_object(make_card(reward_description=""), settings)
    stamps = make_card(
        program_type=ProgramType.STAMPS,
        points_pending=3,
        next_expiry_points=3,
        next_expiry_on=date(2026, 12, 31),
    )
    assert [m["id"] for m in build_loyalty_object(stamps, settings)["textModulesData"]] == [
        "reward"
    ]


def test_a_text_module_tells_the_tier_and_what_the_next_takes(
    make_card: Callable[..., PassCard], settings: WalletSettings
) -> None:
    card = make_card(
        tier_name="Silver", next_tier_name="Gold", points_to_next_tier=230, points_pending=40
    )
    modules = build_loyalty_object(card, settings)["textModulesData"]
    assert [m["id"] for m in modules] == ["reward", "tier", "points"]
    tier = modules[1]
    assert tier["header"] == "Niveau"  # the card's language
    assert tier["body"] == "Silver · Encore 230 points avant Gold"
    assert tier["localizedBody"]["defaultValue"] == {"language": "fr", "value": tier["body"]}
    assert {t["language"]: t["value"] for t in tier["localizedBody"]["translatedValues"]} == {
        "en": "Silver · 230 points to Gold",
        "de": "Silver · Noch 230 Punkte bis Gold",
        "lb": "Silver · Nach 230 Punkten bis Gold",
    }
    assert {t["language"]: t["value"] for t in tier["localizedHeader"]["translatedValues"]} == {
        "en": "Tier",
        "de": "Stufe",
        "lb": "Niveau",
    }
    top = make_card(reward_description="", tier_name="Gold", locale="de")
    [module] = build_loyalty_object(top, settings)["textModulesData"]
    assert (module["id"], module["header"], module["body"]) == ("tier", "Stufe", "Gold")
    assert {t["value"] for t in module["localizedBody"]["translatedValues"]} == {"Gold"}


def test_no_tier_module_without_tiers(
    make_card: Callable[..., PassCard], settings: WalletSettings
) -> None:
    modules = build_loyalty_object(make_card(points_pending=5), settings)["textModulesData"]
    assert [m["id"] for m in modules] == ["reward", "points"]


def test_loyalty_class_document(settings: WalletSettings) -> None:
    document = build_loyalty_class(PROGRAM, settings)
    assert document["id"] == CLASS_ID
    assert document["issuerName"] == "Café Lux"
    assert document["programName"] == "Café Lux Fidélité"
    assert document["programLogo"]["sourceUri"]["uri"] == PROGRAM.logo_url
    assert document["hexBackgroundColor"] == "#6B2C1A"
    assert document["reviewStatus"] == "UNDER_REVIEW"


# --- REST client -----------------------------------------------------------------------------


def test_upsert_inserts_then_patches_then_leaves_alone(
    client: GoogleWalletClient, fake: FakeGoogle, make_card: Callable[..., PassCard]
) -> None:
    created = client.upsert_object(make_card())
    assert created["id"] == OBJECT_ID
    assert (fake.calls_to("GET", "loyaltyObject"), fake.calls_to("POST", "loyaltyObject")) == (1, 1)
    assert fake.resources["loyaltyObject"][OBJECT_ID]["loyaltyPoints"]["balance"] == {"int": 1250}

    client.upsert_object(make_card(points_balance=1300, stamp_count=4))
    assert fake.calls_to("PATCH", "loyaltyObject") == 1
    stored = fake.resources["loyaltyObject"][OBJECT_ID]
    assert stored["loyaltyPoints"]["balance"] == {"int": 1300}
    assert stored["secondaryLoyaltyPoints"]["balance"] == {"string": "4/10"}

    client.upsert_object(make_card(points_balance=1300, stamp_count=4))  # a redelivery
    assert fake.calls_to("PATCH", "loyaltyObject") == 1
    assert client.get_object("1234-5678-9012") == stored
    assert client.get_object("9999-9999-9999") is None


def test_token_endpoint_receives_a_jwt_bearer_grant(
    client: GoogleWalletClient, fake: FakeGoogle, sa_key: Issued, make_card: Callable[..., PassCard]
) -> None:
    client.upsert_object(make_card())
    client.upsert_object(make_card(points_balance=1))
    [grant] = fake.token_requests  # one token serves every call while it is valid
    assert grant["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    # google-auth always addresses the assertion to Google's token endpoint, whatever
    # token_uri it posts it to.
    claims = jwt.decode(  # type: ignore[no-untyped-call]
        grant["assertion"], certs={KEY_ID: sa_key.cert_pem()}, audience=GOOGLE_TOKEN_URL
    )
    assert claims["iss"] == CLIENT_EMAIL
    assert claims["scope"] == WALLET_SCOPE


def test_a_revoked_access_token_is_refreshed(
    client: GoogleWalletClient, fake: FakeGoogle, make_card: Callable[..., PassCard]
) -> None:
    client.upsert_object(make_card())
    fake.issued_tokens.clear()  # Google forgot the token: the next call gets 401
    client.upsert_object(make_card(points_balance=7))
    assert len(fake.token_requests) == 2
    assert fake.resources["loyaltyObject"][OBJECT_ID]["loyaltyPoints"]["balance"] == {"int": 7}


def test_ensure_class_inserts_once_and_patches_without_review_status(
    client: GoogleWalletClient, fake: FakeGoogle
) -> None:
    client.ensure_class(PROGRAM)
    client.ensure_class(PROGRAM)  # same program: nothing sent
    assert fake.calls_to("POST", "loyaltyClass") == 1
    assert fake.calls_to("GET", "loyaltyClass") == 1
    assert fake.resources["loyaltyClass"][CLASS_ID]["reviewStatus"] == "UNDER_REVIEW"

    renamed = PassProgram(**{**PROGRAM.__dict__, "program_name": "Café Lux Club"})
    client.ensure_class(renamed)
    assert fake.calls_to("PATCH", "loyaltyClass") == 1
    assert "reviewStatus" not in fake.bodies[-1]
    assert fake.resources["loyaltyClass"][CLASS_ID]["programName"] == "Café Lux Club"


def test_429_is_retried_with_backoff_honouring_retry_after(
    client: GoogleWalletClient,
    fake: FakeGoogle,
    sleeps: list[float],
    make_card: Callable[..., PassCard],
) -> None:
    fake.fail("GET", "loyaltyObject", Fault(429, retry_after="2"), Fault(429))
    client.upsert_object(make_card())
    assert fake.calls_to("GET", "loyaltyObject") == 3
    assert OBJECT_ID in fake.resources["loyaltyObject"]
    assert sleeps[0] == 2.0  # what Retry-After asked
    assert 0.5 <= sleeps[1] <= 1.0  # exponential: base 0.5 doubled, with jitter


def test_5xx_gives_up_after_the_configured_attempts(
    client: GoogleWalletClient,
    fake: FakeGoogle,
    sleeps: list[float],
    make_card: Callable[..., PassCard],
) -> None:
    fake.fail("GET", "loyaltyObject", *[Fault(500)] * 10)
    with pytest.raises(GoogleWalletRetryError, match="HTTP 500") as caught:
        client.upsert_object(make_card())
    assert "after 4 attempts" in str(caught.value)
    assert caught.value.status == 500
    assert fake.calls_to("GET", "loyaltyObject") == 4
    assert len(sleeps) == 3
    assert sleeps == sorted(sleeps)  # growing waits
    # Doubling ceilings 0.5, 1, 2 s; "equal jitter" draws from the upper half of each.
    assert 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0 and 1.0 <= sleeps[2] <= 2.0


def test_a_retry_after_beyond_a_minute_is_left_to_the_caller(
    client: GoogleWalletClient,
    fake: FakeGoogle,
    sleeps: list[float],
    make_card: Callable[..., PassCard],
) -> None:
    fake.fail("GET", "loyaltyObject", Fault(503, retry_after="3600"))
    with pytest.raises(GoogleWalletRetryError) as caught:
        client.upsert_object(make_card())
    assert caught.value.retry_after == 3600.0
    assert sleeps == []


def test_a_client_error_is_raised_at_once(
    client: GoogleWalletClient, fake: FakeGoogle, make_card: Callable[..., PassCard]
) -> None:
    fake.fail("POST", "loyaltyObject", Fault(400))
    with pytest.raises(GoogleWalletError) as caught:
        client.upsert_object(make_card())
    assert not isinstance(caught.value, GoogleWalletRetryError)
    assert caught.value.status == 400 and caught.value.reason == "INJECTED"
    assert fake.calls_to("POST", "loyaltyObject") == 1


def test_an_insert_race_ends_in_a_patch(
    client: GoogleWalletClient,
    fake: FakeGoogle,
    make_card: Callable[..., PassCard],
    settings: WalletSettings,
) -> None:
    # Another worker inserted the object after our GET said 404: our POST gets 409.
    fake.resources["loyaltyObject"][OBJECT_ID] = build_loyalty_object(make_card(), settings)
    fake.fail("GET", "loyaltyObject", Fault(404))
    client.upsert_object(make_card(points_balance=99))
    assert fake.calls_to("POST", "loyaltyObject") == 1
    assert fake.calls_to("PATCH", "loyaltyObject") == 1
    assert fake.resources["loyaltyObject"][OBJECT_ID]["loyaltyPoints"]["balance"] == {"int": 99}


async def test_the_async_wrapper_runs_the_client_in_a_thread(
    client: GoogleWalletClient, fake: FakeGoogle, make_card: Callable[..., PassCard]
) -> None:
    wallet = AsyncGoogleWalletClient(client)
    await wallet.ensure_class(PROGRAM)
    stored = await wallet.upsert_object(make_card())
    assert stored["id"] == OBJECT_ID
    assert await wallet.get_object("1234-5678-9012") is not None


def test_token_url_setting_overrides_the_key_file(
    fake: FakeGoogle, sa_key: Issued, tmp_path: Path, make_card: Callable[..., PassCard]
) -> None:
    # The file names Google's real endpoint, unreachable here: the setting must win.
    path = write_service_account(tmp_path, sa_key, "https://oauth2.googleapis.com/token")
    settings = WalletSettings(
        _env_file=None,
        google_issuer_id=ISSUER,
        google_service_account_path=path,
        google_api_base_url=fake.api_url,
        google_token_url=fake.token_url,
    )
    GoogleWalletClient(settings).upsert_object(make_card())
    assert len(fake.token_requests) == 1


# --- save links ------------------------------------------------------------------------------


def decode_link(link: str, key: Issued) -> dict[str, Any]:
    assert link.startswith(SAVE_URL)
    token = link[len(SAVE_URL) :]
    assert jwt.decode_header(token)["alg"] == "RS256"  # type: ignore[no-untyped-call]
    claims: dict[str, Any] = jwt.decode(  # type: ignore[no-untyped-call]
        token, certs={KEY_ID: key.cert_pem()}, audience="google"
    )
    return claims


def test_save_link_is_a_signed_savetowallet_jwt(
    settings: WalletSettings, sa_key: Issued, make_card: Callable[..., PassCard]
) -> None:
    issued = datetime.now(UTC).replace(microsecond=0)
    claims = decode_link(save_link(make_card(), settings, now=issued), sa_key)
    assert claims["iss"] == CLIENT_EMAIL
    assert claims["aud"] == "google"
    assert claims["typ"] == "savetowallet"
    assert claims["origins"] == [ORIGIN]
    assert claims["iat"] == int(issued.timestamp())
    assert claims["exp"] == claims["iat"] + settings.google_save_link_ttl_seconds
    assert claims["payload"] == {"loyaltyObjects": [{"id": OBJECT_ID}]}


def test_save_link_with_program_carries_class_and_object(
    settings: WalletSettings, sa_key: Issued, make_card: Callable[..., PassCard]
) -> None:
    card = make_card()
    claims = decode_link(save_link(card, settings, program=PROGRAM), sa_key)
    assert claims["payload"]["loyaltyClasses"] == [build_loyalty_class(PROGRAM, settings)]
    assert claims["payload"]["loyaltyObjects"] == [build_loyalty_object(card, settings)]


def test_save_link_signed_by_another_key_is_rejected(
    settings: WalletSettings, make_card: Callable[..., PassCard]
) -> None:
    stranger = issue(_name(cn="someone else"))
    with pytest.raises(ValueError, match="signature"):
        decode_link(save_link(make_card(), settings), stranger)


def test_google_wallet_without_settings_is_disabled(make_card: Callable[..., PassCard]) -> None:
    settings = WalletSettings(_env_file=None)
    assert not settings.google_enabled
    assert settings.google_disabled_reason() == (
        "missing LOYALTY_WALLET_GOOGLE_ISSUER_ID, LOYALTY_WALLET_GOOGLE_SERVICE_ACCOUNT_PATH"
    )
    with pytest.raises(WalletConfigError):
        save_link(make_card(), settings)
    with pytest.raises(WalletConfigError):
        GoogleWalletClient(settings)


def test_a_file_that_is_not_a_service_account_is_a_config_error(
    tmp_path: Path, make_card: Callable[..., PassCard]
) -> None:
    path = tmp_path / "sa.json"
    path.write_text(json.dumps({"type": "authorized_user", "client_email": "x"}))
    settings = WalletSettings(
        _env_file=None,
        google_issuer_id=ISSUER,
        google_service_account_path=path,
    )
    with pytest.raises(WalletConfigError, match="not a service account"):
        save_link(make_card(), settings)


def test_an_unreachable_api_is_retried_then_reported(
    settings: WalletSettings, sleeps: list[float], make_card: Callable[..., PassCard]
) -> None:
    with socket.socket() as probe:  # a port with nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    nowhere = settings.model_copy(
        update={"google_api_base_url": f"http://127.0.0.1:{port}/walletobjects/v1"}
    )
    client = GoogleWalletClient(nowhere, sleep=sleeps.append)
    with pytest.raises(GoogleWalletRetryError, match="ConnectionError after 4 attempts") as caught:
        client.upsert_object(make_card())
    assert caught.value.status is None
    assert len(sleeps) == 3
