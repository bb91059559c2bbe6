"""``loyalty wallet-sync`` as operators run it: a process of its own, stopped by SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

from loyalty.settings import REPO_ROOT, Settings
from streams.topics import Topic
from tests.support.pipeline import pipeline_env, position_group_at_end


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
