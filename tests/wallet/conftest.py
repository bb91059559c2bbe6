"""Fixtures of the wallet tests: generated PKI, settings pointing at it, sample cards."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from google.oauth2 import service_account
from pydantic import SecretStr

from tests.wallet.pki import PASS_TYPE_ID, TEAM_ID, ApplePki, make_apple_pki
from wallet.cards import PassCard, ProgramType
from wallet.settings import WalletSettings

WEB_SERVICE_URL = "https://loyalty.example.lu/passkit"


_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@pytest.fixture(autouse=True)
def no_outside_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Fail the test when anything resolves a host other than loopback: every wallet test
    talks only to local stand-ins, and a leak to Apple or Google must not go unnoticed."""
    attempts: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in _LOCAL_HOSTS:
            attempts.append(name)
            raise socket.gaierror(socket.EAI_NONAME, f"test guard: no network to {name}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    yield attempts
    assert attempts == [], f"tried to reach {sorted(set(attempts))}"


@pytest.fixture(autouse=True)
def no_regional_access_boundary_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    """google-auth (2.5x+) looks up a service account's "regional access boundary" at
    iamcredentials.googleapis.com in a background thread after each token refresh; against
    the local fake of Google that lookup has no one to talk to, so it is switched off."""
    monkeypatch.setattr(
        service_account.Credentials,
        "_is_regional_access_boundary_lookup_required",
        lambda self: False,
    )


@pytest.fixture(scope="session")
def apple_pki(tmp_path_factory: pytest.TempPathFactory) -> ApplePki:
    """A test "Apple Root CA", "WWDR G4" intermediate and pass signer, as files."""
    return make_apple_pki(tmp_path_factory.mktemp("apple-pki"))


@pytest.fixture
def apple_settings(apple_pki: ApplePki) -> WalletSettings:
    """Wallet settings with Apple pass signing switched on (nothing read from the env)."""
    return WalletSettings(
        _env_file=None,
        apple_pass_type_id=PASS_TYPE_ID,
        apple_team_id=TEAM_ID,
        apple_signer_cert_path=apple_pki.signer_cert_path,
        apple_signer_key_path=apple_pki.signer_key_path,
        apple_signer_key_password=SecretStr(apple_pki.signer_key_password),
        apple_wwdr_cert_path=apple_pki.wwdr_path,
        apple_web_service_url=WEB_SERVICE_URL,
    )


def card(**overrides: Any) -> PassCard:
    """A hybrid card of Café Lux, with any field overridden."""
    values: dict[str, Any] = {
        "card_number": "1234-5678-9012",
        "merchant_code": "cafe-lux",
        "merchant_name": "Café Lux",
        "program_name": "Café Lux Fidélité",
        "program_type": ProgramType.HYBRID,
        "qr_token": "qr-7f3a9c2e5b1d4a8f",
        "authentication_token": "auth-0123456789abcdef0123",
        "updated_at": datetime(2026, 3, 14, 9, 26, 53, tzinfo=UTC),
        "customer_name": "Anna Muller",
        "stamp_count": 3,
        "stamps_target": 10,
        "points_balance": 1250,
        "reward_description": "Free coffee",
        "background_color": "#6B2C1A",
        "foreground_color": "#FFFFFF",
        "label_color": "#F5D6A8",
        "locale": "fr",
    }
    values.update(overrides)
    return PassCard(**values)


@pytest.fixture
def make_card() -> Callable[..., PassCard]:
    """Build a sample card: ``make_card(stamp_count=4)``."""
    return card
