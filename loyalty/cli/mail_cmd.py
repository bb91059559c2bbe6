"""``loyalty mail-sink``: the local SMTP sink that ``loyalty run`` starts (loyalty/mail_sink.py)."""

from __future__ import annotations

import signal
import threading

import typer

from core.settings import get_settings
from loyalty.cli import app


@app.command("mail-sink")
def mail_sink(
    port: int = typer.Option(0, help="SMTP port (0: the stack's own)."),
) -> None:
    """Receive email on loopback and keep each message as a file under the stack's folder."""
    from loyalty.mail_sink import start

    settings = get_settings()
    folder = settings.stack_path / "mail"
    controller = start("127.0.0.1", port or settings.mail_sink_port, folder)
    typer.echo(f"mail sink on 127.0.0.1:{port or settings.mail_sink_port}, messages in {folder}")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    controller.stop()
