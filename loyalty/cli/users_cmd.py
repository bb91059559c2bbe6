"""``loyalty users add``: admin panel users."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from domain.models import UserRole
from domain.users import InvalidUser, UserError, create_user, normalize_username
from loyalty.cli import app
from loyalty.cli._db import with_session

users_app = typer.Typer(help="Admin panel users.", no_args_is_help=True)
app.add_typer(users_app, name="users")


@users_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="User name (stored lower-case).")],
    role: Annotated[UserRole, typer.Option("--role", help="platform_admin or merchant_admin.")],
    merchant: Annotated[
        str | None, typer.Option("--merchant", help="Merchant code (merchant_admin only).")
    ] = None,
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the password from the first line of stdin."),
    ] = False,
) -> None:
    """Create an admin user. Without --password-stdin the password is asked for, hidden."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        asyncio.run(with_session(lambda session: _add(session, name, password, role, merchant)))
    except InvalidUser as exc:
        typer.echo(f"loyalty users add: {exc}", err=True)
        raise typer.Exit(2) from None
    except UserError as exc:
        typer.echo(f"loyalty users add: {exc}", err=True)
        raise typer.Exit(1) from None
    where = f" of merchant {merchant}" if merchant else ""
    typer.echo(f"user {normalize_username(name)} created ({role.value}{where})")


async def _add(
    session: AsyncSession, name: str, password: str, role: UserRole, merchant: str | None
) -> None:
    async with session.begin():
        await create_user(session, name, password, role, merchant_code=merchant)
