"""``loyalty webhooks``: the webhook dispatcher (``consumers.webhooks``).

On uvloop like the relay: its time goes to the event loop (Kafka, PostgreSQL and the
endpoints' sockets).
"""

from __future__ import annotations

import uvloop

from core.settings import get_settings
from loyalty.cli import app


@app.command()
def webhooks() -> None:
    """Deliver output messages to merchants' webhook endpoints (stops cleanly on SIGTERM or
    Ctrl-C, letting the attempts under way finish). Any number may run."""
    from consumers.webhooks import run_webhooks

    uvloop.run(run_webhooks(get_settings()))
