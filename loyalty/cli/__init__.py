"""The ``loyalty`` command line: one typer app, one module per command group."""

from __future__ import annotations

import typer

from loyalty.logs import configure_logging
from loyalty.settings import get_settings

app = typer.Typer(
    name="loyalty",
    help="Loyalty engine: local stack, provisioning, workers, replay and tools.",
    no_args_is_help=True,
    add_completion=False,
    # Docstrings are wrapped at 100 columns; markdown mode reflows them in --help.
    rich_markup_mode="markdown",
)


@app.callback()
def _setup() -> None:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)


def _register() -> None:
    # Each command group lives in a module of its own; importing it adds its commands.
    from loyalty.cli import (  # noqa: F401
        admin_cmd,
        audit_cmd,
        card_cmd,
        db_cmd,
        pipeline_cmd,
        provision_cmd,
        run_cmd,
        stack_cmd,
        tools_cmd,
        users_cmd,
        wallet_cmd,
    )


def main() -> None:
    """Entry point of the ``loyalty`` console script."""
    _register()
    app()
