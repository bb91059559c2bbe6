"""A local mail sink for ``make run``: an SMTP server on loopback that keeps every message it
receives as a ``.eml`` file, so the self-enrolment email can be tried end to end without a
real mail server. Development only: it accepts anything and relays nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from core.logs import get_logger

log = get_logger(__name__)


class FolderHandler:
    """aiosmtpd handler: one file per message, named by arrival time."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Store the message; its content is never logged (it holds a card's secret link)."""
        content = envelope.original_content or b""
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}.eml"
        path = self.folder / name
        await asyncio.to_thread(path.write_bytes, content)
        log.info("mail_sink_stored", file=name, size=len(content))
        return "250 Message accepted for delivery"


def start(host: str, port: int, folder: Path) -> Any:
    """Start the sink in a thread of its own; returns the aiosmtpd controller (``.stop()``)."""
    # aiosmtpd logs every envelope's addresses and commands at INFO: personal data.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    controller = Controller(FolderHandler(folder), hostname=host, port=port)
    controller.start()
    return controller
