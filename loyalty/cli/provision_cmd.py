"""``loyalty provision FILE``: merchants, stores, programs and staff from a file (CONTRACT.md 5)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from domain import provisioning
from domain.provisioning import ProvisioningError, ProvisioningFile, ProvisioningSummary
from loyalty.cli import app
from loyalty.cli._db import with_session


@app.command("provision")
def provision(
    file: Annotated[Path, typer.Argument(help="A YAML or JSON provisioning file.")],
) -> None:
    """Create or update, by code and in one transaction, what FILE describes.

    Exits 2 with one line per offending field (``merchants[0].program.stamps_target: must be
    >= 1``) when the file is refused; nothing is changed then.
    """
    try:
        spec = provisioning.load_file(file)
        summary = asyncio.run(with_session(lambda session: _apply(session, spec)))
    except ProvisioningError as exc:
        for error in exc.errors:
            typer.echo(str(error), err=True)
        raise typer.Exit(2) from None
    typer.echo(str(summary))


async def _apply(session: AsyncSession, spec: ProvisioningFile) -> ProvisioningSummary:
    async with session.begin():
        return await provisioning.apply(session, spec)
