"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, for the tests that
check an email arrived, what it says, and in which language."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class Inbox:
    """What the server received, in order."""

    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """aiosmtpd's hook: keep the parsed message."""
        parsed = email.message_from_bytes(
            envelope.original_content or b"", policy=email.policy.default
        )
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.messages.append(parsed)
            self.recipients.append(list(envelope.rcpt_tos))
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        """The first ``count`` messages, once they arrived (fails after ``timeout`` s)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages[:count])
            time.sleep(0.05)
        raise AssertionError(f"{len(self.messages)} message(s) arrived, {count} expected")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_inbox() -> Iterator[Inbox]:
    """An SMTP server on a free port of 127.0.0.1 while the block runs."""
    inbox = Inbox("127.0.0.1", _free_port())
    controller = Controller(inbox, hostname=inbox.host, port=inbox.port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()


@pytest.fixture
def smtp_inbox() -> Iterator[Inbox]:
    """A running SMTP server on 127.0.0.1 and what it received."""
    with running_inbox() as inbox:
        yield inbox


@pytest.fixture
def mail_settings(smtp_inbox: Inbox, monkeypatch: pytest.MonkeyPatch) -> Inbox:
    """The app's settings pointed at ``smtp_inbox`` (plain SMTP on loopback)."""
    from core.settings import get_settings

    monkeypatch.setenv("LOYALTY_SMTP_HOST", smtp_inbox.host)
    monkeypatch.setenv("LOYALTY_SMTP_PORT", str(smtp_inbox.port))
    monkeypatch.setenv("LOYALTY_SMTP_TLS", "none")
    monkeypatch.setenv("LOYALTY_SMTP_SENDER", "cards@shop.example")
    monkeypatch.setenv("LOYALTY_ADMIN_PUBLIC_URL", "https://loyalty.example")
    get_settings.cache_clear()
    return smtp_inbox
