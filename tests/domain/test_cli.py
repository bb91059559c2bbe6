"""The commands of CONTRACT.md section 6 this package serves: provision, card show, users add.

They run through typer's runner in a thread of their own (a command runs its own event loop, as
from a shell) against the test database, which each command opens from ``LOYALTY_DATABASE_URL``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner, Result

from core.settings import get_settings
from domain.models import AdminUser, LoyaltyCard, LoyaltyProgram, Merchant, UserRole
from loyalty.cli import app, card_cmd, provision_cmd, users_cmd  # noqa: F401 - registers them
from tests.domain import factories as f
from tests.domain.test_provisioning import DEMO, demo


@pytest.fixture
def cli(
    db_sessions: async_sessionmaker[AsyncSession],
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[CliRunner]:
    """A runner whose commands use the (emptied) test database."""
    monkeypatch.setenv("LOYALTY_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


async def run(cli: CliRunner, *args: str, stdin: str | None = None) -> Result:
    return await asyncio.to_thread(cli.invoke, app, list(args), input=stdin)


async def query(sessions: async_sessionmaker[AsyncSession], statement: Any) -> list[Any]:
    async with sessions() as session:
        return list((await session.execute(statement)).all())


# -- loyalty provision ------------------------------------------------------------------------


async def test_provision_creates_then_changes_nothing(
    cli: CliRunner, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    first = await run(cli, "provision", str(DEMO))
    assert first.exit_code == 0, first.output
    assert first.stdout.startswith("provisioned: merchants 2 created")
    assert first.stdout.count("\n") == 1

    second = await run(cli, "provision", str(DEMO))
    assert second.exit_code == 0, second.output
    assert second.stdout.startswith(
        "nothing to change: merchants 0 created, 0 updated, 2 unchanged"
    )


async def test_provision_refuses_a_bad_file_with_exit_2_and_changes_nothing(
    cli: CliRunner, db_sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    data = demo()
    data["merchants"][0]["program"]["stamps_target"] = 0
    data["merchants"][1]["staff"] = [{"store": "NOPE", "name": "X", "pin": "1234"}]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data, allow_unicode=True))

    result = await run(cli, "provision", str(bad))

    assert result.exit_code == 2
    assert result.stderr.splitlines() == ["merchants[0].program.stamps_target: must be >= 1"]
    assert result.stdout == ""
    assert await query(db_sessions, select(Merchant.id)) == []


async def test_provision_refuses_a_database_conflict_with_exit_2_and_changes_nothing(
    cli: CliRunner, db_sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    data = demo()
    data["merchants"][1]["staff"] = [{"store": "NOPE", "name": "X", "pin": "1234"}]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))

    result = await run(cli, "provision", str(bad))

    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "merchants[1].staff[0].store: unknown store 'NOPE' (stores of bakery-mie: MIE-01)"
    ]
    assert await query(db_sessions, select(Merchant.id)) == []


async def test_provision_names_a_missing_file(cli: CliRunner, tmp_path: Path) -> None:
    result = await run(cli, "provision", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"{tmp_path / 'nope.yaml'}: cannot be read")


# -- loyalty card show ------------------------------------------------------------------------


@pytest.fixture
async def card_number(cli: CliRunner, db_sessions: async_sessionmaker[AsyncSession]) -> str:
    """A card of Café Lux (from the demo file) held by ann@example.com."""
    assert (await run(cli, "provision", str(DEMO))).exit_code == 0
    async with db_sessions() as db:
        merchant = (await db.scalars(select(Merchant).where(Merchant.code == "cafe-lux"))).one()
        program = (
            await db.scalars(
                select(LoyaltyProgram).where(LoyaltyProgram.merchant_id == merchant.id)
            )
        ).one()
        holder = await f.customer(db, merchant, email="ann@example.com")
        card = await f.card(
            db,
            merchant,
            program,
            holder,
            card_number="4000-1234-5678",
            qr_token="qr-token-of-ann",
            stamp_count=3,
            points_balance=150,
            version=4,
            tier="member",
            qualifying_points=120,
        )
        await db.commit()
        return card.card_number


CONTRACT_JSON = {
    "card_number": "4000-1234-5678",
    "merchant_code": "cafe-lux",
    "stamp_count": 3,
    "stamps_target": 10,
    "points_balance": 150,
    "is_active": True,
    "version": 4,
    "points_pending": 0,
    "next_expiry": None,
    # The demo's café has tiers: member from 0, silver from 500, gold from 1500.
    "tier": "member",
    "points_to_next_tier": 380,
}


@pytest.mark.parametrize(
    "args",
    [
        ["4000-1234-5678"],
        ["4000 1234 5678"],
        ["400012345678", "--merchant", "cafe-lux"],
        ["qr-token-of-ann"],
        ["ANN@example.com", "--merchant", "cafe-lux"],
    ],
)
async def test_card_show_json_has_exactly_the_contract_fields(
    cli: CliRunner, card_number: str, args: list[str]
) -> None:
    result = await run(cli, "card", "show", *args, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == CONTRACT_JSON


async def test_card_show_prints_a_short_table_without_json(
    cli: CliRunner, card_number: str
) -> None:
    result = await run(cli, "card", "show", card_number)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "card number  4000-1234-5678",
        "merchant     cafe-lux",
        "stamps       3 / 10",
        "points       150",
        "pending      0",
        "next expiry  none",
        "tier         member (380 points to the next)",
        "active       yes",
        "version      4",
    ]


async def _set_card(
    sessions: async_sessionmaker[AsyncSession], card_number: str, **values: Any
) -> None:
    async with sessions() as db:
        card = (
            await db.scalars(select(LoyaltyCard).where(LoyaltyCard.card_number == card_number))
        ).one()
        for key, value in values.items():
            setattr(card, key, value)
        await db.commit()


async def test_card_show_json_reports_pending_points_and_the_next_expiry(
    cli: CliRunner, card_number: str, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    # Café Lux's points expire after 365 idle days: 150 spendable + 40 pending, idle since
    # 1 June 2025, so they all go on 1 June 2026.
    idle = datetime(2025, 6, 1, 9, tzinfo=UTC)
    await _set_card(db_sessions, card_number, points_pending=40, last_activity_at=idle)

    result = await run(cli, "card", "show", card_number, "--json")

    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown == {
        **CONTRACT_JSON,
        "points_pending": 40,
        "next_expiry": {"points": 190, "at": "2026-06-01T09:00:00+00:00"},
    }

    # 100 of them in dated lots (earned under another policy), 60 due on 1 March 2026: those
    # go first; the 90 others still go with the card's idleness.
    dated = datetime(2026, 3, 1, 10, tzinfo=UTC)
    await _set_card(
        db_sessions, card_number, dated_points=100, next_expiry_at=dated, next_expiry_points=60
    )

    result = await run(cli, "card", "show", card_number, "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["next_expiry"] == {
        "points": 60,
        "at": "2026-03-01T10:00:00+00:00",
    }
    table = await run(cli, "card", "show", card_number)
    assert "pending      40" in table.stdout.splitlines()
    assert "next expiry  60 at 2026-03-01T10:00:00+00:00" in table.stdout.splitlines()


async def test_card_show_json_reports_the_tier_and_the_points_to_the_next(
    cli: CliRunner, card_number: str, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    await _set_card(db_sessions, card_number, tier="silver", qualifying_points=900)
    result = await run(cli, "card", "show", card_number, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        **CONTRACT_JSON,
        "tier": "silver",
        "points_to_next_tier": 600,
    }

    await _set_card(db_sessions, card_number, tier="gold", qualifying_points=1800)
    result = await run(cli, "card", "show", card_number, "--json")
    shown = json.loads(result.stdout)
    assert (shown["tier"], shown["points_to_next_tier"]) == ("gold", None)
    table = await run(cli, "card", "show", card_number)
    assert "tier         gold (top tier)" in table.stdout.splitlines()

    # A program without tiers: neither, whatever the card last had.
    async with db_sessions() as db:
        program = (
            await db.scalars(select(LoyaltyProgram).where(LoyaltyProgram.stamps_target == 10))
        ).one()
        program.tiers = []
        await db.commit()
    result = await run(cli, "card", "show", card_number, "--json")
    shown = json.loads(result.stdout)
    assert (shown["tier"], shown["points_to_next_tier"]) == (None, None)
    table = await run(cli, "card", "show", card_number)
    assert "tier         none" in table.stdout.splitlines()


async def test_provision_refuses_bad_tiers_with_exit_2_and_changes_nothing(
    cli: CliRunner, db_sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    assert (await run(cli, "provision", str(DEMO))).exit_code == 0
    data = demo()
    data["merchants"][0]["program"]["tiers"][0]["threshold_points"] = 50
    data["merchants"][0]["program"]["tier_grace_days"] = 90
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data, allow_unicode=True))

    result = await run(cli, "provision", str(bad))

    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "merchants[0].program.tiers[0].threshold_points: the first tier starts at 0"
    ]
    rows = await query(
        db_sessions,
        select(LoyaltyProgram.tiers, LoyaltyProgram.tier_grace_days).where(
            LoyaltyProgram.stamps_target == 10
        ),
    )
    assert [(r.tiers[0]["threshold_points"], r.tier_grace_days) for r in rows] == [(0, 30)]


async def test_card_show_of_an_email_needs_a_merchant(cli: CliRunner, card_number: str) -> None:
    result = await run(cli, "card", "show", "ann@example.com", "--json")
    assert result.exit_code == 2
    assert "give the merchant code" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["4000-1234-5679"],
        ["nobody@example.com", "--merchant", "cafe-lux"],
        ["4000-1234-5678", "--merchant", "bakery-mie"],
        ["4000-1234-5678", "--merchant", "no-such-merchant"],
    ],
)
async def test_card_show_of_no_card_exits_1(
    cli: CliRunner, card_number: str, args: list[str]
) -> None:
    result = await run(cli, "card", "show", *args, "--json")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("loyalty card show: ")


# -- loyalty users add ------------------------------------------------------------------------


async def test_users_add_reads_the_password_from_stdin(
    cli: CliRunner, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    result = await run(
        cli,
        "users",
        "add",
        "Root",
        "--role",
        "platform_admin",
        "--password-stdin",
        stdin="a long password\n",
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == "user root created (platform_admin)\n"
    assert "a long password" not in result.output
    rows = await query(db_sessions, select(AdminUser.username, AdminUser.role))
    assert rows == [("root", UserRole.PLATFORM_ADMIN)]


async def test_users_add_a_merchant_admin(
    cli: CliRunner, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    assert (await run(cli, "provision", str(DEMO))).exit_code == 0
    result = await run(
        cli,
        "users",
        "add",
        "lux",
        "--role",
        "merchant_admin",
        "--merchant",
        "cafe-lux",
        "--password-stdin",
        stdin="a long password\n",
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == "user lux created (merchant_admin of merchant cafe-lux)\n"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["x", "--role", "merchant_admin"], 2, "a merchant admin needs a merchant"),
        (["x", "--role", "platform_admin"], 2, "at least 8 characters"),
        (["x", "--role", "wizard"], 2, "wizard"),
    ],
)
async def test_users_add_refuses_clearly(
    cli: CliRunner, args: list[str], code: int, message: str
) -> None:
    stdin = "short\n" if "at least" in message else "a long password\n"
    result = await run(cli, "users", "add", *args, "--password-stdin", stdin=stdin)
    assert result.exit_code == code
    assert message in result.output


async def test_users_add_refuses_a_taken_name_with_exit_1(cli: CliRunner) -> None:
    args = ["users", "add", "root", "--role", "platform_admin", "--password-stdin"]
    assert (await run(cli, *args, stdin="a long password\n")).exit_code == 0
    again = await run(cli, *args, stdin="a long password\n")
    assert again.exit_code == 1
    assert "already exists" in again.stderr
