"""The start-up check of the Apple Wallet configuration: team vs certificate, https URL."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from core.settings import REPO_ROOT
from tests.wallet.pki import PASS_TYPE_ID, TEAM_ID, ApplePki, _name, issue
from wallet import WalletConfigError, WalletSettings, check_apple_wallet
from wallet.checks import is_loopback_host


def test_a_good_configuration_passes(apple_settings: WalletSettings) -> None:
    assert apple_settings.apple_web_service_url is not None
    assert apple_settings.apple_web_service_url.startswith("https://")
    check_apple_wallet(apple_settings)


def test_a_team_that_is_not_the_certificates_names_the_setting_and_the_team(
    apple_settings: WalletSettings,
) -> None:
    wrong = apple_settings.model_copy(update={"apple_team_id": "ZZZZZ99999"})
    with pytest.raises(WalletConfigError) as error:
        check_apple_wallet(wrong)
    assert str(error.value) == (
        f"LOYALTY_WALLET_APPLE_TEAM_ID: does not match the certificate's team (OU) {TEAM_ID}"
    )


def test_a_certificate_without_a_team_is_refused(
    apple_settings: WalletSettings, apple_pki: ApplePki, tmp_path: Path
) -> None:
    # Same key as the real signer, so only the missing OU can be the complaint.
    no_ou = issue(
        _name(uid=PASS_TYPE_ID, cn=f"Pass Type ID: {PASS_TYPE_ID}", o="Example Sàrl"),
        issuer=apple_pki.wwdr,
        key=apple_pki.signer.key,
        eku=[ExtendedKeyUsageOID.CLIENT_AUTH],
    )
    path = tmp_path / "no-ou.pem"
    path.write_bytes(no_ou.cert_pem())
    settings = apple_settings.model_copy(update={"apple_signer_cert_path": path})
    with pytest.raises(WalletConfigError, match=r"^LOYALTY_WALLET_APPLE_TEAM_ID: .* no team"):
        check_apple_wallet(settings)


@pytest.mark.parametrize(
    "url",
    [
        "http://loyalty.example.lu/passkit",
        "http://192.168.1.20:8080/passkit",
        "ftp://loyalty.example.lu/passkit",
    ],
)
def test_a_web_service_url_that_is_not_https_is_refused(
    apple_settings: WalletSettings, url: str
) -> None:
    settings = apple_settings.model_copy(update={"apple_web_service_url": url})
    with pytest.raises(WalletConfigError, match=r"^LOYALTY_WALLET_APPLE_WEB_SERVICE_URL: .*https"):
        check_apple_wallet(settings)


def test_the_loopback_opt_in_does_not_allow_http_elsewhere(
    apple_settings: WalletSettings,
) -> None:
    settings = apple_settings.model_copy(
        update={
            "apple_web_service_url": "http://loyalty.example.lu/passkit",
            "apple_web_service_allow_loopback_http": True,
        }
    )
    with pytest.raises(WalletConfigError, match="LOYALTY_WALLET_APPLE_WEB_SERVICE_URL"):
        check_apple_wallet(settings)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8090/passkit", "http://localhost/passkit", "http://[::1]:8090/pk"]
)
def test_http_on_a_loopback_host_needs_the_explicit_opt_in(
    apple_settings: WalletSettings, url: str
) -> None:
    settings = apple_settings.model_copy(update={"apple_web_service_url": url})
    with pytest.raises(
        WalletConfigError, match="LOYALTY_WALLET_APPLE_WEB_SERVICE_ALLOW_LOOPBACK_HTTP=true"
    ):
        check_apple_wallet(settings)
    check_apple_wallet(settings.model_copy(update={"apple_web_service_allow_loopback_http": True}))


def test_the_opt_in_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOYALTY_WALLET_APPLE_WEB_SERVICE_ALLOW_LOOPBACK_HTTP", "true")
    assert WalletSettings(_env_file=None).apple_web_service_allow_loopback_http
    monkeypatch.delenv("LOYALTY_WALLET_APPLE_WEB_SERVICE_ALLOW_LOOPBACK_HTTP")
    assert not WalletSettings(_env_file=None).apple_web_service_allow_loopback_http


def test_both_problems_are_named_at_once(apple_settings: WalletSettings) -> None:
    settings = apple_settings.model_copy(
        update={"apple_team_id": "ZZZZZ99999", "apple_web_service_url": "http://x.example/pk"}
    )
    with pytest.raises(WalletConfigError) as error:
        check_apple_wallet(settings)
    assert "LOYALTY_WALLET_APPLE_TEAM_ID" in str(error.value)
    assert "LOYALTY_WALLET_APPLE_WEB_SERVICE_URL" in str(error.value)


def test_nothing_is_checked_while_apple_wallet_is_off(apple_settings: WalletSettings) -> None:
    # No signing key: no passes are made, the disabled wallet is logged elsewhere.
    off = apple_settings.model_copy(
        update={
            "apple_signer_key_path": None,
            "apple_team_id": "ZZZZZ99999",
            "apple_web_service_url": "http://x.example/pk",
        }
    )
    assert not off.apple_enabled
    check_apple_wallet(off)


def test_an_unreadable_certificate_fails_the_check_too(
    apple_settings: WalletSettings, tmp_path: Path
) -> None:
    settings = apple_settings.model_copy(
        update={"apple_signer_cert_path": tmp_path / "missing.pem"}
    )
    with pytest.raises(WalletConfigError, match="cannot read the pass signing certificate"):
        check_apple_wallet(settings)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("LOCALHOST", True),
        ("0.0.0.0", False),  # noqa: S104 - a host name under test, nothing listens on it
        ("192.168.1.20", False),
        ("loyalty.example.lu", False),
        ("", False),
        (None, False),
    ],
)
def test_loopback_hosts(host: str | None, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def wallet_env(settings: WalletSettings) -> dict[str, str]:
    """``settings``' Apple values as the ``LOYALTY_WALLET_*`` environment of a process."""
    assert settings.apple_signer_key_password is not None
    values = {
        "APPLE_PASS_TYPE_ID": settings.apple_pass_type_id,
        "APPLE_TEAM_ID": settings.apple_team_id,
        "APPLE_SIGNER_CERT_PATH": settings.apple_signer_cert_path,
        "APPLE_SIGNER_KEY_PATH": settings.apple_signer_key_path,
        "APPLE_SIGNER_KEY_PASSWORD": settings.apple_signer_key_password.get_secret_value(),
        "APPLE_WWDR_CERT_PATH": settings.apple_wwdr_cert_path,
        "APPLE_WEB_SERVICE_URL": settings.apple_web_service_url,
    }
    return {f"LOYALTY_WALLET_{k}": str(v) for k, v in values.items() if v is not None}


def test_loyalty_admin_refuses_to_start_with_a_wrong_team(
    apple_settings: WalletSettings, database_url: str
) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LOYALTY_WALLET_") and k != "LOYALTY_SESSION_SECRET"
    }
    env.update(wallet_env(apple_settings.model_copy(update={"apple_team_id": "ZZZZZ99999"})))
    env.update(LOYALTY_DATABASE_URL=database_url, LOYALTY_BCRYPT_ROUNDS="4")
    # A free port: were the check missing, the panel would serve and the timeout would fail it.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = subprocess.run(
        [sys.executable, "-m", "loyalty", "admin", "--port", str(port)],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert (
        "LOYALTY_WALLET_APPLE_TEAM_ID: does not match the certificate's team (OU) " + TEAM_ID
    ) in done.stderr
    assert "Traceback" not in done.stderr
