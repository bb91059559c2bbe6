"""Starts that are refused: the admin panel beyond loopback with the public session secret,
and an Apple Wallet set-up Wallet would reject (``loyalty run`` checks both up front)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from admin_ui.app import StartRefused, check_start, uses_default_session_secret
from core.settings import REPO_ROOT, Settings
from tests.wallet.pki import PASS_TYPE_ID, TEAM_ID, make_apple_pki
from wallet import WalletSettings

DEFAULT_SECRET = str(Settings.model_fields["session_secret"].default)
NO_WALLET = WalletSettings(_env_file=None)


def settings(host: str, secret: str = DEFAULT_SECRET) -> Settings:
    return Settings(_env_file=None, admin_host=host, session_secret=secret)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "admin.example.lu"])  # noqa: S104
def test_the_default_secret_beyond_loopback_is_refused_naming_the_setting(host: str) -> None:
    with pytest.raises(StartRefused) as refused:
        check_start(settings(host), NO_WALLET)
    assert "LOYALTY_SESSION_SECRET" in str(refused.value)
    assert repr(host) in str(refused.value)
    assert DEFAULT_SECRET not in str(refused.value)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_the_default_secret_on_loopback_is_allowed(host: str) -> None:
    assert uses_default_session_secret(settings(host))
    check_start(settings(host), NO_WALLET)


def test_a_secret_of_ones_own_may_listen_anywhere() -> None:
    check_start(settings("0.0.0.0", "a-long-random-secret-of-this-site"), NO_WALLET)  # noqa: S104


def run_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """``loyalty run``'s environment: no secret, no wallet, and a database nobody listens
    on, so that a start the check fails to refuse ends at once instead of running."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LOYALTY_WALLET_") and k != "LOYALTY_SESSION_SECRET"
    }
    env.update(
        LOYALTY_STACK="refusals",
        LOYALTY_STACK_DIR=str(tmp_path / "stack"),
        LOYALTY_DATABASE_URL="postgresql://loyalty@127.0.0.1:9/nowhere",
        LOYALTY_KAFKA_BOOTSTRAP="127.0.0.1:9",
    )
    env.update(extra)
    return env


def loyalty_run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loyalty", "run", "--simulate-rate", "0"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_loyalty_run_refuses_the_default_secret_beyond_loopback(tmp_path: Path) -> None:
    done = loyalty_run(run_env(tmp_path, LOYALTY_ADMIN_HOST="0.0.0.0"))  # noqa: S104

    assert done.returncode == 2, done.stdout + done.stderr
    assert "loyalty run: LOYALTY_SESSION_SECRET" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "stack" / "logs").exists()  # no service was started


def test_loyalty_run_refuses_a_team_that_is_not_the_certificates(tmp_path: Path) -> None:
    pki = make_apple_pki(tmp_path)
    wallet = {
        "APPLE_PASS_TYPE_ID": PASS_TYPE_ID,
        "APPLE_TEAM_ID": "ZZZZZ99999",
        "APPLE_SIGNER_CERT_PATH": str(pki.signer_cert_path),
        "APPLE_SIGNER_KEY_PATH": str(pki.signer_key_path),
        "APPLE_SIGNER_KEY_PASSWORD": pki.signer_key_password,
        "APPLE_WWDR_CERT_PATH": str(pki.wwdr_path),
    }
    env = run_env(tmp_path, **{f"LOYALTY_WALLET_{k}": v for k, v in wallet.items()})

    done = loyalty_run(env)

    assert done.returncode == 2, done.stdout + done.stderr
    assert (
        "loyalty run: LOYALTY_WALLET_APPLE_TEAM_ID: does not match the certificate's team (OU) "
        + TEAM_ID
    ) in done.stderr
    assert pki.signer_key_password not in done.stdout + done.stderr
