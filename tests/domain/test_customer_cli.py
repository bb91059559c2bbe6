"""``loyalty customer export|erase`` (CONTRACT.md 7.6) through typer's runner, against the test
database, as ``tests/domain/test_cli.py`` runs the other commands."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner

from core.settings import get_settings
from domain.models import Customer, LedgerEntry, LoyaltyCard
from loyalty.cli import customer_cmd  # noqa: F401 - registers the commands
from tests.domain.test_cli import run
from tests.domain.test_customer_data import Held, Shop, make_ann, make_shop

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
def cli(
    db_sessions: Sessions, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[CliRunner]:
    """A runner whose commands use the (emptied) test database."""
    monkeypatch.setenv("LOYALTY_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


@pytest.fixture
async def shop(db: AsyncSession) -> Shop:
    return await make_shop(db)


@pytest.fixture
async def ann(db: AsyncSession, shop: Shop) -> Held:
    """Ann Smith's card (``test_customer_data.make_ann``)."""
    return await make_ann(db, shop)


async def _customer(sessions: Sessions, customer_id: int) -> Customer:
    async with sessions() as session:
        row = await session.scalar(
            select(Customer)
            .where(Customer.id == customer_id)
            .execution_options(include_deleted=True)
        )
        assert row is not None
        return row


async def test_export_prints_everything_held_as_json(cli: CliRunner, shop: Shop, ann: Held) -> None:
    result = await run(cli, "customer", "export", ann.card_number, "--merchant", shop.code)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["customer"]["email"] == "ann.smith@example.com"
    assert [c["card_number"] for c in data["cards"]] == [ann.card_number]
    assert ann.qr_token not in result.stdout
    by_email = await run(
        cli, "customer", "export", "Ann.Smith@example.com", "--merchant", shop.code
    )
    assert json.loads(by_email.stdout) == data


@pytest.mark.parametrize("command", ["export", "erase"])
async def test_no_customer_or_no_merchant_exits_1(
    cli: CliRunner, shop: Shop, ann: Held, command: str
) -> None:
    nobody = await run(cli, "customer", command, "nobody@example.com", "--merchant", shop.code)
    assert nobody.exit_code == 1
    assert nobody.stderr == (
        f"loyalty customer {command}: no customer matches 'nobody@example.com' at merchant "
        f"{shop.code}\n"
    )
    unknown = await run(cli, "customer", command, ann.card_number, "--merchant", "nope")
    assert unknown.exit_code == 1
    assert unknown.stderr == f"loyalty customer {command}: unknown merchant 'nope'\n"
    assert (await run(cli, "customer", command, ann.card_number)).exit_code == 2


async def test_erase_then_erase_again_says_it_is_done(
    cli: CliRunner, db_sessions: Sessions, shop: Shop, ann: Held
) -> None:
    first = await run(cli, "customer", "erase", ann.card_number, "--merchant", shop.code, "--yes")
    assert first.exit_code == 0, first.output
    assert first.stdout == (
        f"customer {ann.customer_id} erased: 1 card(s) deactivated ({ann.card_number})\n"
    )
    erased = await _customer(db_sessions, ann.customer_id)
    assert erased.erased_at is not None and erased.first_name is None
    assert erased.email is not None and erased.email.startswith("erased-")
    async with db_sessions() as session:
        card = await session.scalar(select(LoyaltyCard).where(LoyaltyCard.id == ann.id))
        actor = await session.scalar(
            select(LedgerEntry.actor)
            .where(LedgerEntry.card_id == ann.id)
            .order_by(LedgerEntry.id.desc())
            .limit(1)
        )
    assert card is not None and not card.is_active
    assert actor is not None and actor.startswith("cli:")

    again = await run(cli, "customer", "erase", ann.card_number, "--merchant", shop.code)
    assert again.exit_code == 0, again.output
    assert again.stdout == (
        f"customer {ann.customer_id} is already erased (since {erased.erased_at.isoformat()})\n"
    )
    # The email names nobody any more.
    gone = await run(cli, "customer", "erase", "ann.smith@example.com", "--merchant", shop.code)
    assert gone.exit_code == 1


async def test_erase_asks_first_and_a_no_erases_nothing(
    cli: CliRunner, db_sessions: Sessions, shop: Shop, ann: Held
) -> None:
    # A QR token may begin with "-": after "--" it is the reference, not an option.
    args = ("customer", "erase", "--merchant", shop.code, "--", ann.qr_token)
    declined = await run(cli, *args, stdin="n\n")
    assert declined.exit_code == 1
    assert f"Erase customer {ann.customer_id} of {shop.code} (1 card(s))?" in declined.stdout
    assert declined.stderr == "loyalty customer erase: nothing erased\n"
    assert (await _customer(db_sessions, ann.customer_id)).erased_at is None

    confirmed = await run(cli, *args, stdin="y\n")
    assert confirmed.exit_code == 0, confirmed.output
    assert (await _customer(db_sessions, ann.customer_id)).erased_at is not None
