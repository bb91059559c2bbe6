"""``loyalty admin``: the admin panel, the staff terminals and self-enrolment, over HTTP."""

from __future__ import annotations

import asyncio

import typer

from core.settings import get_settings
from loyalty.cli import app
from loyalty.cli._db import with_session


@app.command()
def admin(
    host: str | None = typer.Option(None, help="Interface to listen on (LOYALTY_ADMIN_HOST)."),
    port: int | None = typer.Option(None, help="Port to listen on (LOYALTY_ADMIN_PORT)."),
) -> None:
    """Serve the admin panel on Settings.admin_host:admin_http_port until stopped.

    The process's /metrics, /healthz and /readyz are on a port of their own,
    LOYALTY_METRICS_PORT (default: the stack's admin metrics port, else a free one).
    """
    from admin_ui import domain_api
    from admin_ui.app import StartRefused, check_start, run
    from wallet import WalletConfigError, get_wallet_settings

    settings = get_settings()
    updates: dict[str, object] = {}
    if host is not None:
        updates["admin_host"] = host
    if port is not None:
        updates["admin_port"] = port
    if updates:
        settings = settings.model_copy(update=updates)
    # Before the first password is made: a refused start must not have shown it for nothing.
    try:
        check_start(settings, get_wallet_settings())
    except (StartRefused, WalletConfigError) as exc:
        typer.echo(f"loyalty admin: {exc}", err=True)
        raise typer.Exit(1) from None
    password = asyncio.run(with_session(domain_api.ensure_initial_admin))
    if password is not None:
        # On the terminal, never in the logs: it is shown this once.
        typer.echo(f"first sign-in: admin / {password}   (shown once; change it)", err=True)
    typer.echo(f"admin panel on {settings.admin_url}", err=True)
    run(settings)
