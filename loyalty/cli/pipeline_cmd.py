"""``loyalty worker`` and ``loyalty relay``: the pipeline's long-running processes.

Both run on uvloop: their time goes largely to the event loop (socket reads and writes for
Kafka and PostgreSQL), where uvloop costs less CPU than asyncio's own loop; and both keep the
memory they free for their next batch (``core.memory``). Both serve
``/metrics``, ``/healthz`` and ``/readyz`` on their ops port (``LOYALTY_METRICS_PORT``).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Coroutine
from typing import Any

import typer
import uvloop

from core.memory import keep_freed_memory
from core.settings import get_settings
from loyalty.cli import app


@app.command()
def worker(
    no_scheduler: bool = typer.Option(
        False, "--no-scheduler", help="Do not publish the daily expiry run from this process."
    ),
) -> None:
    """Consume the input topics and apply them (stops cleanly on SIGTERM or Ctrl-C).

    Serves /metrics, /healthz and /readyz on LOYALTY_METRICS_PORT (default: the stack's
    worker port, else a free one; `loyalty stack status` lists it).
    """
    from consumers.worker import build_app

    faststream_app, _ = build_app(get_settings(), with_scheduler=not no_scheduler)
    keep_freed_memory()
    uvloop.run(faststream_app.run())


@app.command()
def relay() -> None:
    """Publish the outbox to Kafka (stops cleanly on SIGTERM or Ctrl-C).

    Serves /metrics, /healthz and /readyz on LOYALTY_METRICS_PORT (default: the stack's
    relay port, else a free one; `loyalty stack status` lists it).
    """
    from consumers.relay import run_relay

    keep_freed_memory()
    uvloop.run(_until_signal(run_relay(get_settings())))


async def _until_signal(job: Coroutine[Any, Any, None]) -> None:
    task = asyncio.ensure_future(job)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task
