"""``loyalty wallet-sync``: Apple Wallet pushes and Google Wallet objects for changed cards."""

from __future__ import annotations

import asyncio

import typer

from core.settings import get_settings
from loyalty.cli import app


@app.command("wallet-sync")
def wallet_sync() -> None:
    """Consume loyalty.wallet-updates.v1 and bring the cards' wallet passes up to date.

    A wallet without credentials (LOYALTY_WALLET_*) is skipped with one log line.

    SIGTERM or Ctrl-C stop it cleanly, after the current batch. Serves /metrics, /healthz and
    /readyz on LOYALTY_METRICS_PORT (default: the stack's wallet-sync port, else a free one).
    """
    from consumers.wallet_sync import run_wallet_sync
    from wallet import WalletConfigError, get_wallet_settings

    try:
        asyncio.run(run_wallet_sync(get_settings(), get_wallet_settings()))
    except WalletConfigError as exc:
        typer.echo(f"loyalty wallet-sync: {exc}", err=True)
        raise typer.Exit(2) from None
