"""The ``loyalty`` command line: one typer app, one module per command group."""

from __future__ import annotations

import importlib
import sys

import typer

from core.logs import configure_logging
from core.settings import get_settings

app = typer.Typer(
    name="loyalty",
    help="Loyalty engine: local stack, provisioning, workers, replay and tools.",
    no_args_is_help=True,
    add_completion=False,
    # Docstrings are wrapped at 100 columns; markdown mode reflows them in --help.
    rich_markup_mode="markdown",
)


# Commands that serve others or change no admin data: not an actor of the audit trail. The
# admin panel names its own actor per signed-in admin; the workers are the ledger's business.
# Every other command (provision, users, campaign, card, and those to come) acts as
# ``cli:<user>``.
_NOT_ACTING = frozenset(
    {
        "admin",
        "db",
        "mail-sink",
        "publish",
        "relay",
        "replay",
        "report",
        "run",
        "simulate",
        "stack",
        "wallet-sync",
        "webhooks",
        "worker",
    }
)


@app.callback()
def _setup(ctx: typer.Context) -> None:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    if ctx.invoked_subcommand is not None and ctx.invoked_subcommand not in _NOT_ACTING:
        # Imported here: it pulls in SQLAlchemy, which a worker's start must not pay for.
        from domain.audit_trail import acting_as, cli_actor

        # Until the command ends: the context closes its resources after the command ran.
        ctx.with_resource(acting_as(cli_actor(), source="cli"))


# Which module defines each command. A run imports only the module of the command it runs:
# the others pull in SQLAlchemy, Alembic or NiceGUI and would add seconds to every start of a
# worker. ``tests/unit/test_cli.py`` keeps this table complete.
COMMAND_MODULES: dict[str, str] = {
    "admin": "admin_cmd",
    "audit": "audit_cmd",
    "campaign": "campaign_cmd",
    "card": "card_cmd",
    "customer": "customer_cmd",
    "db": "db_cmd",
    "demo": "demo_cmd",
    "mail-sink": "mail_cmd",
    "provision": "provision_cmd",
    "publish": "tools_cmd",
    "relay": "pipeline_cmd",
    "replay": "tools_cmd",
    "report": "report_cmd",
    "run": "run_cmd",
    "simulate": "tools_cmd",
    "stack": "stack_cmd",
    "users": "users_cmd",
    "wallet-sync": "wallet_cmd",
    "webhooks": "webhooks_cmd",
    "worker": "pipeline_cmd",
}


def _register(argv: list[str] | None = None) -> None:
    """Import the command modules (each adds its commands to ``app`` when imported)."""
    args = sys.argv[1:] if argv is None else argv
    wanted = next((a for a in args if not a.startswith("-")), None)
    modules = (
        {COMMAND_MODULES[wanted]} if wanted in COMMAND_MODULES else set(COMMAND_MODULES.values())
    )
    for module in sorted(modules):
        importlib.import_module(f"loyalty.cli.{module}")


def main() -> None:
    """Entry point of the ``loyalty`` console script."""
    _register()
    app()
