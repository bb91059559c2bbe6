"""APNs pushes against a local HTTP/2 TLS server standing in for Apple's."""

from __future__ import annotations

import base64
import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pydantic import SecretStr

from tests.support.wallet_fakes import write_apns_key
from tests.wallet.fake_apns import running_fake_apns
from tests.wallet.pki import PASS_TYPE_ID, TEAM_ID, ApplePki, TlsServerPki, make_tls_server_pki
from wallet.apns import ApnsClient, ApnsTokenProvider, PushOutcome, PushResult
from wallet.errors import WalletConfigError
from wallet.settings import WalletSettings

KEY_ID = "K3Y1D0APNS"
DELIVERED = "a" * 64
GONE = "b" * 64
BAD = "c" * 64
BROKEN = "d" * 64
THROTTLED = "e" * 64
WRONG_TOPIC = "f" * 64


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsServerPki:
    return make_tls_server_pki(tmp_path_factory.mktemp("apns-tls"))


@pytest.fixture(scope="module")
def p8_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ec.EllipticCurvePublicKey]:
    """An APNs auth key as Apple hands it out: a PKCS#8 PEM P-256 key in AuthKey_<id>.p8."""
    return write_apns_key(tmp_path_factory.mktemp("apns-key"), KEY_ID)


def token_settings(port: int, p8: Path, **extra: Any) -> WalletSettings:
    return WalletSettings(
        _env_file=None,
        apple_pass_type_id=PASS_TYPE_ID,
        apple_team_id=TEAM_ID,
        apns_host="127.0.0.1",
        apns_port=port,
        apns_key_path=p8,
        apns_key_id=KEY_ID,
        **extra,
    )


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def verify_es256(
    token: str, public_key: ec.EllipticCurvePublicKey
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check a JOSE ES256 signature (raw r||s) with the public key; header and claims."""
    header, claims, signature = token.split(".")
    raw = _b64(signature)
    assert len(raw) == 64, "JOSE ES256 signatures are r||s, 32 bytes each"
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public_key.verify(der, f"{header}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))
    return json.loads(_b64(header)), json.loads(_b64(claims))


def bearer(headers: dict[str, str]) -> str:
    scheme, _, token = headers["authorization"].partition(" ")
    assert scheme == "bearer"
    return token


async def test_push_is_an_empty_background_push_over_http2(
    tls: TlsServerPki, p8_key: tuple[Path, ec.EllipticCurvePublicKey]
) -> None:
    p8, public_key = p8_key
    async with (
        running_fake_apns(tls.cert_path, tls.key_path) as fake,
        ApnsClient(token_settings(fake.port, p8), ca_file=tls.ca_path) as apns,
    ):
        [result] = await apns.push([DELIVERED])

    assert result.outcome is PushOutcome.DELIVERED and result.delivered
    assert result.status == 200 and result.apns_id
    [request] = fake.requests
    assert request.http_version == "2"
    assert request.method == "POST"
    assert request.path == f"/3/device/{DELIVERED}"
    assert request.body == b"{}"
    assert request.headers["apns-topic"] == PASS_TYPE_ID
    assert request.headers["apns-push-type"] == "background"
    assert request.headers["apns-priority"] == "5"
    header, claims = verify_es256(bearer(request.headers), public_key)
    assert header["alg"] == "ES256" and header["kid"] == KEY_ID
    assert claims["iss"] == TEAM_ID
    assert abs(claims["iat"] - time.time()) < 60


async def test_each_apns_answer_becomes_a_decision(
    tls: TlsServerPki, p8_key: tuple[Path, ec.EllipticCurvePublicKey]
) -> None:
    async with running_fake_apns(tls.cert_path, tls.key_path) as fake:
        fake.script = {
            GONE: [(410, "Unregistered")],
            BAD: [(400, "BadDeviceToken")],
            BROKEN: [(500, "InternalServerError")],
            THROTTLED: [(429, "TooManyRequests")],
            WRONG_TOPIC: [(400, "TopicDisallowed")],
        }
        async with ApnsClient(token_settings(fake.port, p8_key[0]), ca_file=tls.ca_path) as apns:
            results = await apns.push([DELIVERED, GONE, BAD, BROKEN, THROTTLED, WRONG_TOPIC])

    assert [(r.outcome, r.status, r.reason) for r in results] == [
        (PushOutcome.DELIVERED, 200, None),
        (PushOutcome.REMOVE, 410, "Unregistered"),
        (PushOutcome.REMOVE, 400, "BadDeviceToken"),
        (PushOutcome.RETRY, 500, "InternalServerError"),
        (PushOutcome.RETRY, 429, "TooManyRequests"),
        (PushOutcome.FAILED, 400, "TopicDisallowed"),
    ]
    assert [r.push_token for r in results] == [DELIVERED, GONE, BAD, BROKEN, THROTTLED, WRONG_TOPIC]
    assert [r.remove_registration for r in results] == [False, True, True, False, False, False]
    assert [r.retryable for r in results] == [False, False, False, True, True, False]
    assert {r.http_version for r in fake.requests} == {"2"}
    assert len(fake.requests) == 6


async def test_provider_token_is_reused_then_renewed_before_an_hour(
    tls: TlsServerPki, p8_key: tuple[Path, ec.EllipticCurvePublicKey]
) -> None:
    now = [1_800_000_000.0]
    async with running_fake_apns(tls.cert_path, tls.key_path) as fake:
        settings = token_settings(fake.port, p8_key[0])
        async with ApnsClient(settings, ca_file=tls.ca_path, clock=lambda: now[0]) as apns:
            await apns.push([DELIVERED])
            now[0] += 49 * 60
            await apns.push([DELIVERED])
            now[0] += 2 * 60  # 51 minutes after the first token
            await apns.push([DELIVERED])

    tokens = [bearer(r.headers) for r in fake.requests]
    assert tokens[0] == tokens[1]
    assert tokens[2] != tokens[1]
    iats = [verify_es256(t, p8_key[1])[1]["iat"] for t in tokens]
    assert iats == [1_800_000_000, 1_800_000_000, 1_800_000_000 + 51 * 60]


async def test_expired_provider_token_is_renewed_and_the_push_sent_again(
    tls: TlsServerPki, p8_key: tuple[Path, ec.EllipticCurvePublicKey]
) -> None:
    async with running_fake_apns(tls.cert_path, tls.key_path) as fake:
        fake.script = {DELIVERED: [(403, "ExpiredProviderToken"), (200, None)]}
        async with ApnsClient(token_settings(fake.port, p8_key[0]), ca_file=tls.ca_path) as apns:
            [result] = await apns.push([DELIVERED])

    assert result.delivered
    first, second = (bearer(r.headers) for r in fake.requests)
    assert first != second  # a freshly signed token
    verify_es256(second, p8_key[1])


async def test_certificate_auth_uses_the_pass_type_certificate(
    tls: TlsServerPki, apple_pki: ApplePki, tmp_path: Path
) -> None:
    client_cas = tmp_path / "client-cas.pem"
    client_cas.write_bytes(apple_pki.wwdr.cert_pem() + apple_pki.root.cert_pem())
    async with running_fake_apns(tls.cert_path, tls.key_path, client_ca_path=client_cas) as fake:
        settings = WalletSettings(
            _env_file=None,
            apple_pass_type_id=PASS_TYPE_ID,
            apple_team_id=TEAM_ID,
            apple_signer_cert_path=apple_pki.signer_cert_path,
            apple_signer_key_path=apple_pki.signer_key_path,
            apple_signer_key_password=SecretStr(apple_pki.signer_key_password),
            apns_host="127.0.0.1",
            apns_port=fake.port,
        )
        assert settings.apns_auth_mode == "certificate"
        async with ApnsClient(settings, ca_file=tls.ca_path) as apns:
            [result] = await apns.push([DELIVERED])

    assert result.delivered
    [request] = fake.requests
    assert "authorization" not in request.headers
    assert request.http_version == "2"


async def test_a_server_demanding_a_client_certificate_refuses_token_only_clients(
    tls: TlsServerPki,
    apple_pki: ApplePki,
    p8_key: tuple[Path, ec.EllipticCurvePublicKey],
    tmp_path: Path,
) -> None:
    client_cas = tmp_path / "client-cas.pem"
    client_cas.write_bytes(apple_pki.wwdr.cert_pem() + apple_pki.root.cert_pem())
    async with (
        running_fake_apns(tls.cert_path, tls.key_path, client_ca_path=client_cas) as fake,
        ApnsClient(token_settings(fake.port, p8_key[0]), ca_file=tls.ca_path) as apns,
    ):
        [result] = await apns.push([DELIVERED])
    assert result.outcome is PushOutcome.RETRY and result.status is None
    assert fake.requests == []


async def test_an_untrusted_server_is_never_sent_a_push(
    tls: TlsServerPki, p8_key: tuple[Path, ec.EllipticCurvePublicKey], tmp_path: Path
) -> None:
    other_ca = make_tls_server_pki(tmp_path)
    async with (
        running_fake_apns(tls.cert_path, tls.key_path) as fake,
        ApnsClient(token_settings(fake.port, p8_key[0]), ca_file=other_ca.ca_path) as apns,
    ):
        [result] = await apns.push([DELIVERED])
    assert result.outcome is PushOutcome.RETRY
    assert result.reason == "ConnectError"
    assert fake.requests == []


async def test_unreachable_apns_is_retryable(
    tls: TlsServerPki, p8_key: tuple[Path, ec.EllipticCurvePublicKey]
) -> None:
    with socket.socket() as probe:  # a port with nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with ApnsClient(token_settings(port, p8_key[0]), ca_file=tls.ca_path) as apns:
        [result] = await apns.push([DELIVERED])
    assert result.outcome is PushOutcome.RETRY and result.status is None


async def test_a_malformed_push_token_is_removed_without_a_request(
    tls: TlsServerPki, p8_key: tuple[Path, ec.EllipticCurvePublicKey]
) -> None:
    async with (
        running_fake_apns(tls.cert_path, tls.key_path) as fake,
        ApnsClient(token_settings(fake.port, p8_key[0]), ca_file=tls.ca_path) as apns,
    ):
        [result] = await apns.push(["../../3/device/" + DELIVERED])
    assert result.remove_registration and result.reason == "MalformedDeviceToken"
    assert fake.requests == []


def test_push_results_keep_the_token_out_of_repr() -> None:
    result = PushResult(DELIVERED, PushOutcome.DELIVERED, status=200)
    assert DELIVERED not in repr(result)


def test_without_credentials_apns_is_disabled(
    p8_key: tuple[Path, ec.EllipticCurvePublicKey],
) -> None:
    settings = WalletSettings(_env_file=None)
    assert not settings.apns_enabled
    with pytest.raises(WalletConfigError, match="APPLE_PASS_TYPE_ID"):
        ApnsClient(settings)
    half = WalletSettings(
        _env_file=None,
        apple_pass_type_id=PASS_TYPE_ID,
        apns_auth="token",
        apns_key_path=p8_key[0],
    )
    assert half.apns_disabled_reason() == (
        "token auth: missing LOYALTY_WALLET_APPLE_TEAM_ID, LOYALTY_WALLET_APNS_KEY_ID"
    )


def test_a_p8_that_is_not_a_key_is_a_config_error(tmp_path: Path) -> None:
    bogus = tmp_path / "AuthKey_X.p8"
    bogus.write_text("not a key")
    with pytest.raises(WalletConfigError, match="p8"):
        ApnsTokenProvider.from_file(bogus, KEY_ID, TEAM_ID)
