"""``loyalty db``: schema migrations."""

from __future__ import annotations

import typer

from loyalty import migrate
from loyalty.cli import app

db_app = typer.Typer(help="Database schema (Alembic).", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply migrations up to REVISION (default: head)."""
    migrate.upgrade(revision=revision)
    typer.echo(f"database at {revision}")
