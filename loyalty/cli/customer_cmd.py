"""``loyalty customer export|erase REF --merchant CODE``: everything held about a customer as
JSON, and the erasure of their personal data (CONTRACT.md 7.6; ``domain.customers``).

REF is read as ``loyalty card show`` reads it (a card number, a QR text or an email), deleted
customers included. After an erasure the email names nobody any more: a second erasure is
asked by card number, and answers that the customer is erased already.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.audit_trail import cli_actor
from domain.customers.erasure import ErasureOutcome, erase_customer
from domain.customers.export import export_customer, to_json
from domain.customers.finding import ALL, CustomerDataError, find_customer
from domain.lookup import CardLookupError
from domain.models import Customer, LoyaltyCard
from loyalty.cli import app
from loyalty.cli._db import with_session

customer_app = typer.Typer(help="Customers' data: export and erasure.", no_args_is_help=True)
app.add_typer(customer_app, name="customer")

Ref = Annotated[
    str,
    typer.Argument(
        help="Card number (dashes and spaces ignored), QR code or email; "
        "after `--` when it begins with a dash."
    ),
]
MerchantCode = Annotated[str, typer.Option("--merchant", help="The customer's merchant code.")]
T = TypeVar("T")


@dataclass(frozen=True)
class _Found:
    customer_id: int
    erased_at: datetime | None
    cards: int


@customer_app.command("export")
def export(ref: Ref, merchant: MerchantCode) -> None:
    """Print everything held about a customer as JSON: the customer, their cards with ledger,
    purchases, point lots and tier history, and their wallet registrations (push tokens
    masked, card links by their existence only). Exits 1 when no customer matches."""

    async def work(session: AsyncSession) -> dict[str, Any] | None:
        found = await _find(session, ref, merchant)
        return None if found is None else await export_customer(session, found.customer_id)

    data = _run("export", ref, merchant, work)
    typer.echo(to_json(data), nl=False)


@customer_app.command("erase")
def erase(
    ref: Ref,
    merchant: MerchantCode,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Erase a customer: their personal data replaced by a pseudonym, their cards deactivated
    (passes voided, a card.balance_changed with is_active false), their card links closed;
    the ledger's amounts stay. Cannot be undone. Asks first unless --yes. Exits 0 when erased
    or erased already, 1 when no customer matches, the erasure is refused or not confirmed."""
    found = _run("erase", ref, merchant, lambda session: _find(session, ref, merchant))
    if found.erased_at is not None:
        typer.echo(_already(found.customer_id, found.erased_at))
        return
    if not yes and not typer.confirm(
        f"Erase customer {found.customer_id} of {merchant} ({found.cards} card(s))? Their "
        "personal data is replaced by a pseudonym and their cards are deactivated; this "
        "cannot be undone.",
        default=False,
    ):
        typer.echo("loyalty customer erase: nothing erased", err=True)
        raise typer.Exit(1)
    actor = cli_actor()

    async def work(session: AsyncSession) -> ErasureOutcome:
        async with session.begin():
            return await erase_customer(
                session, found.customer_id, actor=actor, now=datetime.now(UTC)
            )

    # The admin audit trail takes who acts from the context ``loyalty.cli`` sets for the
    # command; the ledger's deactivations name the same actor.
    outcome = _run("erase", ref, merchant, work)
    if outcome.already_erased:  # erased by someone else since it was looked up
        typer.echo(_already(outcome.customer_id, outcome.erased_at))
        return
    cards = ", ".join(outcome.deactivated) if outcome.deactivated else "none was active"
    typer.echo(
        f"customer {outcome.customer_id} erased: {len(outcome.deactivated)} card(s) "
        f"deactivated ({cards})"
    )


def _already(customer_id: int, erased_at: datetime) -> str:
    return f"customer {customer_id} is already erased (since {erased_at.isoformat()})"


def _run(
    command: str, ref: str, merchant: str, work: Callable[[AsyncSession], Awaitable[T | None]]
) -> T:
    """Run ``work`` with a session; a refusal or no customer at all exits 1 with a sentence."""
    try:
        result = asyncio.run(with_session(work))
    except (CardLookupError, CustomerDataError) as exc:
        typer.echo(f"loyalty customer {command}: {exc}", err=True)
        raise typer.Exit(1) from None
    if result is None:
        typer.echo(
            f"loyalty customer {command}: no customer matches {ref!r} at merchant {merchant}",
            err=True,
        )
        raise typer.Exit(1)
    return result


async def _find(session: AsyncSession, ref: str, merchant: str) -> _Found | None:
    customer_id = await find_customer(session, ref, merchant)
    if customer_id is None:
        return None
    erased_at = await session.scalar(
        select(Customer.erased_at).where(Customer.id == customer_id).execution_options(**ALL)
    )
    cards = await session.scalar(
        select(func.count(LoyaltyCard.id))
        .where(LoyaltyCard.customer_id == customer_id)
        .execution_options(**ALL)
    )
    return _Found(customer_id, erased_at, int(cards or 0))
