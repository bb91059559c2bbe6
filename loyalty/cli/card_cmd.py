"""``loyalty card show REF``: a card by number, QR code or email (CONTRACT.md section 6), with
its pending points, next expiry and tier (sections 7.2, 7.3 and 7.4)."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from domain.lookup import CardLookupError, CardView, EmailNeedsMerchant, card_view
from domain.lookup import find_card_by_text as find
from loyalty.cli import app
from loyalty.cli._db import with_session

card_app = typer.Typer(help="Cards.", no_args_is_help=True)
app.add_typer(card_app, name="card")


@card_app.command("show")
def show(
    ref: Annotated[
        str, typer.Argument(help="Card number (dashes and spaces ignored), QR code or email.")
    ],
    merchant: Annotated[
        str | None,
        typer.Option("--merchant", help="Merchant code: needed for an email, else a filter."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The card as one JSON object.")] = False,
) -> None:
    """Show a card's balances. Exits 1 when no card matches, 2 for an email without --merchant."""
    try:
        view = asyncio.run(with_session(lambda session: _find(session, ref, merchant)))
    except EmailNeedsMerchant as exc:
        typer.echo(f"loyalty card show: {exc} (--merchant CODE)", err=True)
        raise typer.Exit(2) from None
    except CardLookupError as exc:
        typer.echo(f"loyalty card show: {exc}", err=True)
        raise typer.Exit(1) from None
    if view is None:
        where = f" at merchant {merchant}" if merchant else ""
        typer.echo(f"loyalty card show: no card matches {ref!r}{where}", err=True)
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(view.contract_fields()))
        return
    expiry = view.next_expiry
    rows = {
        "card number": view.card_number,
        "merchant": view.merchant_code,
        "stamps": f"{view.stamp_count} / {view.stamps_target}",
        "points": str(view.points_balance),
        "pending": str(view.points_pending),
        "next expiry": "none" if expiry is None else f"{expiry.points} at {expiry.at.isoformat()}",
        "tier": _tier(view),
        "active": "yes" if view.is_active else "no",
        "version": str(view.version),
    }
    for label, value in rows.items():
        typer.echo(f"{label:<13}{value}")


def _tier(view: CardView) -> str:
    if view.tier is None and view.points_to_next_tier is None:
        return "none"
    name = view.tier or "not placed yet"
    if view.points_to_next_tier is None:
        return f"{name} (top tier)"
    return f"{name} ({view.points_to_next_tier} points to the next)"


async def _find(session: AsyncSession, ref: str, merchant: str | None) -> CardView | None:
    card = await find(session, ref, merchant_code=merchant)
    return None if card is None else await card_view(session, card)
