"""``loyalty wallet-sync`` as operators run it: a process of its own, stopped by SIGTERM,
refusing to start on an Apple Wallet configuration Wallet would reject."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from consumers.wallet_sync import WalletSync
from core.settings import REPO_ROOT, Settings
from streams.topics import Topic
from tests.support.pipeline import pipeline_env, position_group_at_end
from tests.support.wallet_fakes import wallet_settings_for
from tests.wallet.pki import PASS_TYPE_ID, TEAM_ID, ApplePki
from wallet import WalletConfigError, check_apple_wallet


def test_without_credentials_each_wallet_is_disabled_with_one_line(
    stack: Settings, database_url: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in pipeline_env(stack, database_url).items() if "_WALLET_" not in k}
    group = env["LOYALTY_CONSUMER_GROUP"] + "-wallet"
    asyncio.run(position_group_at_end(stack.bootstrap, group, [Topic.WALLET_UPDATES.value]))
    log_path = tmp_path / "wallet-sync.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "loyalty", "wallet-sync"],
            env=env,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while "wallet_sync_started" not in log_path.read_text():
                assert proc.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.1)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0, log_path.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    output = log_path.read_text()
    disabled = [line for line in output.splitlines() if "wallet_sync_wallet_disabled" in line]
    assert len(disabled) == 2, output
    apple, google = sorted(disabled, key=lambda line: "wallet=google" in line)
    assert "wallet=apple" in apple and "LOYALTY_WALLET_APPLE_PASS_TYPE_ID" in apple
    assert "wallet=google" in google and "LOYALTY_WALLET_GOOGLE_ISSUER_ID" in google
    assert "wallets=[]" in output
    assert "wallet_sync_stopped" in output
    assert "Traceback" not in output


def test_a_wallet_configuration_wallet_would_refuse_stops_the_start(
    stack: Settings, database_url: str, apple_pki: ApplePki
) -> None:
    env = {k: v for k, v in pipeline_env(stack, database_url).items() if "_WALLET_" not in k}
    wrong = {
        "APPLE_PASS_TYPE_ID": PASS_TYPE_ID,
        "APPLE_TEAM_ID": "ZZZZZ99999",  # the certificate's team is TEAM_ID
        "APPLE_SIGNER_CERT_PATH": str(apple_pki.signer_cert_path),
        "APPLE_SIGNER_KEY_PATH": str(apple_pki.signer_key_path),
        "APPLE_SIGNER_KEY_PASSWORD": apple_pki.signer_key_password,
        "APPLE_WWDR_CERT_PATH": str(apple_pki.wwdr_path),
        "APPLE_WEB_SERVICE_URL": "http://loyalty.example.lu/passkit",
    }
    env.update({f"LOYALTY_WALLET_{k}": v for k, v in wrong.items()})
    # Were the check missing, the sync would run until the timeout fails the test.
    done = subprocess.run(
        [sys.executable, "-m", "loyalty", "wallet-sync"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    team = "LOYALTY_WALLET_APPLE_TEAM_ID: does not match the certificate's team (OU) "
    assert team + TEAM_ID in done.stderr
    assert "LOYALTY_WALLET_APPLE_WEB_SERVICE_URL: must be https" in done.stderr
    assert "wallet_sync_started" not in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert apple_pki.signer_key_password not in done.stdout + done.stderr


async def test_the_sync_opens_nothing_when_the_check_fails(
    stack: Settings, apple_pki: ApplePki, tmp_path: Path
) -> None:
    wrong = wallet_settings_for(tmp_path, apple_pki=apple_pki, apple_team_id="ZZZZZ99999")
    sync = WalletSync(stack, wrong)
    with pytest.raises(WalletConfigError, match="LOYALTY_WALLET_APPLE_TEAM_ID"):
        await sync.start()
    assert sync.enabled == ()
    await sync.close()
    good = wallet_settings_for(tmp_path, apple_pki=apple_pki)
    check_apple_wallet(good)  # the same PKI with its own team passes
