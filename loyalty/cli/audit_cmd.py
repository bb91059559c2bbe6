"""``loyalty audit``: cards against their ledger, events applied once, the outbox drained."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer

from core.settings import get_settings
from loyalty.cli import app


@app.command()
def audit(
    as_json: Annotated[bool, typer.Option("--json", help="The report as one JSON object.")] = False,
    unsent_grace: Annotated[
        float,
        typer.Option(
            "--unsent-grace",
            min=0.0,
            help="Seconds an outbox row may stay unsent before it is reported (default 0: any).",
        ),
    ] = 0.0,
    merchant: Annotated[
        str | None,
        typer.Option("--merchant", help="Check only this merchant's cards (inbox, outbox: all)."),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, help="The most differences listed per check.")
    ] = 100,
) -> None:
    """Check every card against its ledger. Exits 1 listing the differences, 2 on no database."""
    import asyncpg

    from consumers.pipeline import TRANSIENT
    from domain.audit import audit_database

    unreachable: tuple[type[BaseException], ...] = (*TRANSIENT, asyncpg.PostgresError)
    try:
        report = asyncio.run(
            audit_database(
                get_settings().db_url,
                unsent_grace_s=unsent_grace,
                merchant_code=merchant,
                limit=limit,
            )
        )
    except unreachable as exc:
        typer.echo(f"loyalty audit: cannot audit the database: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(report.as_dict(), default=str))
    else:
        for difference in report.differences:
            typer.echo(str(difference))
        found = sum(report.totals.values())
        listed = len(report.differences)
        more = f" ({found - listed} not listed)" if found > listed else ""
        verdict = "clean" if report.clean else f"{found} differences{more}"
        typer.echo(
            f"audit: {report.cards} cards, {report.ledger_entries} ledger entries, "
            f"{report.events} events: {verdict}"
        )
    if not report.clean:
        raise typer.Exit(1)
