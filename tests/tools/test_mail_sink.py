"""``loyalty mail-sink``: the local SMTP sink of ``loyalty run`` keeps each message as a file."""

from __future__ import annotations

import email
import email.policy
import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

from core.settings import REPO_ROOT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, "the mail sink exited"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the mail sink never listened")


def test_a_message_sent_to_the_sink_is_kept_as_a_file(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "LOYALTY_STACK_DIR": str(tmp_path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "loyalty", "mail-sink", "--port", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_listening(port, process)
        message = EmailMessage()
        message["From"] = "shop@example.com"
        message["To"] = "ann@example.com"
        message["Subject"] = "Your card"
        message.set_content("https://loyalty.example/card/secret-link\n")
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.send_message(message)
        deadline = time.monotonic() + 10
        files: list[Path] = []
        while not files and time.monotonic() < deadline:
            files = list((tmp_path / "mail").glob("*.eml"))
            time.sleep(0.05)
        (kept,) = files
        parsed = email.message_from_bytes(kept.read_bytes(), policy=email.policy.default)
        assert parsed["Subject"] == "Your card"
        assert "secret-link" in parsed.get_body().get_content()  # type: ignore[union-attr]
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=15)
    assert process.returncode == 0, output.decode(errors="replace")
    assert b"secret-link" not in output  # the sink never logs a message's content
    assert b"ann@example.com" not in output
