"""Wallet test doubles shared by every test folder: the network guard, the generated Apple
PKI, the APNs key and TLS certificates, the Google service account, and the local stand-ins
for APNs (``tests.wallet.fake_apns``) and Google (``tests.wallet.fake_google``).

Import the fixtures in a conftest with ``from tests.support.wallet_fakes import *``; the two
autouse guards then apply to that folder's tests.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from google.oauth2 import service_account
from pydantic import SecretStr

from tests.wallet.fake_apns import FakeApns, running_fake_apns
from tests.wallet.fake_google import FakeGoogle, running_fake_google
from tests.wallet.pki import (
    PASS_TYPE_ID,
    TEAM_ID,
    ApplePki,
    Issued,
    TlsServerPki,
    _name,
    issue,
    make_apple_pki,
    make_tls_server_pki,
)
from wallet.settings import WalletSettings

__all__ = [
    "APNS_KEY_ID",
    "CLIENT_EMAIL",
    "GOOGLE_ISSUER",
    "SA_KEY_ID",
    "apns_p8_key",
    "apns_tls",
    "apple_pki",
    "fake_apns",
    "fake_google",
    "google_sa_key",
    "no_outside_network",
    "no_regional_access_boundary_lookup",
    "wallet_settings_for",
    "write_apns_key",
    "write_service_account",
]

GOOGLE_ISSUER = "3388000000022123456"
CLIENT_EMAIL = "wallet-sync@loyalty-test.iam.gserviceaccount.com"
SA_KEY_ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f001234567"
APNS_KEY_ID = "K3Y1D0APNS"

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


@pytest.fixture(scope="session")
def apns_tls(tmp_path_factory: pytest.TempPathFactory) -> TlsServerPki:
    """A local CA and the 127.0.0.1 certificate the fake APNs serves."""
    return make_tls_server_pki(tmp_path_factory.mktemp("apns-tls"))


def write_apns_key(
    folder: Path, key_id: str = APNS_KEY_ID
) -> tuple[Path, ec.EllipticCurvePublicKey]:
    """An APNs auth key as Apple hands it out: a PKCS#8 PEM P-256 key in AuthKey_<id>.p8."""
    key = ec.generate_private_key(ec.SECP256R1())
    path = folder / f"AuthKey_{key_id}.p8"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path, key.public_key()


@pytest.fixture(scope="session")
def apns_p8_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The path of a ``.p8`` APNs auth key (token auth)."""
    return write_apns_key(tmp_path_factory.mktemp("apns-key"))[0]


@pytest.fixture(scope="session")
def google_sa_key() -> Issued:
    """The service account's RSA key and a self-signed certificate of it."""
    return issue(_name(cn=CLIENT_EMAIL), key=rsa.generate_private_key(65537, 2048))


def write_service_account(folder: Path, key: Issued, token_uri: str) -> Path:
    """A service account key file for ``key``, its tokens asked of ``token_uri``."""
    path = folder / "service-account.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "loyalty-test",
                "private_key_id": SA_KEY_ID,
                "private_key": key.key_pem().decode(),
                "client_email": CLIENT_EMAIL,
                "client_id": "100000000000000000001",
                "token_uri": token_uri,
            }
        )
    )
    return path


@pytest.fixture
async def fake_apns(apns_tls: TlsServerPki) -> AsyncIterator[FakeApns]:
    """A fake APNs (HTTP/2 over TLS) on a free local port, for one test."""
    async with running_fake_apns(apns_tls.cert_path, apns_tls.key_path) as fake:
        yield fake


@pytest.fixture
def fake_google() -> Iterator[FakeGoogle]:
    """A fake Google token endpoint and Wallet REST API on a free local port, for one test."""
    with running_fake_google() as fake:
        yield fake


def wallet_settings_for(
    folder: Path,
    *,
    apple_pki: ApplePki | None = None,
    apns: tuple[FakeApns, TlsServerPki, Path] | None = None,
    google: tuple[FakeGoogle, Issued] | None = None,
    **extra: Any,
) -> WalletSettings:
    """Wallet settings (nothing read from the environment) with the given wallets on:
    Apple pass signing with ``apple_pki``, APNs token auth against a fake, Google against a
    fake. A wallet left out stays disabled, as without credentials."""
    values: dict[str, Any] = {}
    if apple_pki is not None:
        values.update(
            apple_pass_type_id=PASS_TYPE_ID,
            apple_team_id=TEAM_ID,
            apple_signer_cert_path=apple_pki.signer_cert_path,
            apple_signer_key_path=apple_pki.signer_key_path,
            apple_signer_key_password=SecretStr(apple_pki.signer_key_password),
            apple_wwdr_cert_path=apple_pki.wwdr_path,
        )
    if apns is not None:
        fake, tls, p8 = apns
        values.update(
            apple_pass_type_id=PASS_TYPE_ID,
            apple_team_id=TEAM_ID,
            apns_host="127.0.0.1",
            apns_port=fake.port,
            apns_key_path=p8,
            apns_key_id=APNS_KEY_ID,
            apns_ca_path=tls.ca_path,
        )
    if google is not None:
        fake_g, key = google
        values.update(
            google_issuer_id=GOOGLE_ISSUER,
            google_service_account_path=write_service_account(folder, key, fake_g.token_url),
            google_api_base_url=fake_g.api_url,
            google_origins=["https://loyalty.example.lu"],
        )
    values.update(extra)
    return WalletSettings(_env_file=None, **values)
