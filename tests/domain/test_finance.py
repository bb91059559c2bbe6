"""The finance report on a hand-built ledger whose answers are worked out in the comments, and
``loyalty report finance`` (table, JSON, CSV, refusals).

The café (Europe/Luxembourg; a stamp is worth 350 / 10 = 35 cents, a point 0.5 cents), 2025:

- c1, created 10 Jan: 50 welcome points (10 Jan), 3 stamps (15 Jan), 200 points (5 Feb),
  100 points redeemed and 2 stamps (3 Mar);
- c2, created 20 Feb: created (20 Feb), 40 points earned pending (20 Feb), released (5 Mar);
- c3, created 5 Jan: 4 stamps and 60 points (6 Jan); deleted on 15 Feb;
- c4, created 1 Mar: created (1 Mar), a stamp (2 Mar).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner, Result

from core.settings import get_settings
from domain.finance import (
    ACTIVITY_TYPES,
    FinanceNotFound,
    FinanceReport,
    Holdings,
    Movement,
    finance_report,
    report_csv,
    report_dict,
)
from domain.models import LedgerEntry, LedgerType, LoyaltyCard
from domain.rules import project
from loyalty.cli import app, report_cmd  # noqa: F401 - registers the command
from tests.domain import factories as f

T = LedgerType


def utc(month: int, day: int, hour: int = 10) -> datetime:
    return datetime(2025, month, day, hour, tzinfo=UTC)


async def _cafe(db: AsyncSession, code: str = "fin") -> dict[str, LoyaltyCard]:
    m = await f.merchant(db, code, name="Café Fin", timezone="Europe/Luxembourg")
    p = await f.program(
        db, m, stamps_target=10, stamps_reward_value_cents=350, point_value_cents=Decimal("0.5")
    )
    s = await f.store(db, m, f"{code}-S1")
    cards = {
        "c1": await f.card(db, m, p, at=s, created_at=utc(1, 10)),
        "c2": await f.card(db, m, p, at=s, created_at=utc(2, 20)),
        "c3": await f.card(db, m, p, at=s, created_at=utc(1, 5)),
        "c4": await f.card(db, m, p, at=s, created_at=utc(3, 1)),
    }
    c1, c2, c3, c4 = cards.values()
    for card, kind, when, stamps, points in [
        (c1, T.WELCOME_BONUS, utc(1, 10), 0, 50),
        (c1, T.STAMP_EARNED, utc(1, 15), 3, 0),
        (c1, T.POINTS_EARNED, utc(2, 5), 0, 200),
        (c1, T.POINTS_REDEEMED, utc(3, 3), 0, -100),
        (c1, T.STAMP_EARNED, utc(3, 3), 2, 0),
        (c2, T.CARD_CREATED, utc(2, 20), 0, 0),
        (c3, T.STAMP_EARNED, utc(1, 6), 4, 0),
        (c3, T.POINTS_EARNED, utc(1, 6), 0, 60),
        (c4, T.CARD_CREATED, utc(3, 1), 0, 0),
        (c4, T.STAMP_EARNED, utc(3, 2), 1, 0),
    ]:
        await f.entry(db, card, kind, when, stamps=stamps, points=points, at=s)
    for kind, when, points, pending in [
        (T.POINTS_EARNED, utc(2, 20, 11), 0, 40),
        (T.POINTS_RELEASED, utc(3, 5), 40, -40),
    ]:
        db.add(
            LedgerEntry(
                card_id=c2.id,
                merchant_id=m.id,
                store_id=s.id,
                entry_type=kind,
                points_delta=points,
                pending_delta=pending,
                stamp_count_after=0,
                points_balance_after=0,
                occurred_at=when,
            )
        )
    await db.flush()
    await db.execute(
        text("UPDATE loyalty_cards SET deleted_at = :at, deleted_by = 'test' WHERE id = :id"),
        {"at": utc(2, 15), "id": c3.id},
    )
    await db.commit()
    return cards


def test_activity_is_what_moves_last_activity_at() -> None:
    assert ACTIVITY_TYPES == project._ACTIVITY


async def test_a_whole_month(db: AsyncSession) -> None:
    await _cafe(db)
    report = await finance_report(db, "fin", date(2025, 2, 1), date(2025, 2, 28))

    assert (report.merchant_code, report.merchant_name, report.currency) == (
        "fin",
        "Café Fin",
        "EUR",
    )
    # At the start: c1 (3 stamps, 50 points) and c3 (4, 60), not yet deleted.
    assert report.opening == Holdings(7, 110, 0, 7 * 35, 55)
    # February: 200 points for c1, 40 pending for c2; c3 deleted with its 4 stamps and 60 points.
    assert report.issued == Movement(0, 240, 120)
    nothing = Movement(0, 0, 0)
    assert report.redeemed == report.expired == report.voided == report.adjusted == nothing
    assert report.deleted == Movement(4, 60, 4 * 35 + 30)
    # At the end: c1 (3 stamps, 250 points), c2 (40 pending).
    assert report.closing == Holdings(3, 250, 40, 105, 145)
    assert (report.points_redemption_rate, report.points_breakage_rate) == (0.0, 0.0)
    assert report.stamps_redemption_rate is None  # no stamp issued
    assert (report.active_members, report.new_members) == (2, 1)  # c1, c2; c2
    assert len(report.cohorts) == 12
    assert report.cohorts[0].month == date(2024, 3, 1)
    # January's cohort: c1 and c3, both active in January, c1 in February.
    assert report.cohorts[-2].month == date(2025, 1, 1)
    assert (report.cohorts[-2].cards, report.cohorts[-2].active) == (2, (2, 1))
    assert report.cohorts[-2].retention == (1.0, 0.5)
    assert (report.cohorts[-1].cards, report.cohorts[-1].active) == (1, (1,))
    assert all(c.cards == 0 and c.retention[0] is None for c in report.cohorts[:-2])


async def test_days_inside_months(db: AsyncSession) -> None:
    await _cafe(db)
    report = await finance_report(db, "fin", date(2025, 1, 20), date(2025, 3, 4))

    assert report.opening == Holdings(7, 110, 0, 245, 55)
    # c1's 2 stamps and c4's one; 200 + 40 points; c1's coffee; c3 deleted. c2's release on
    # 5 March is after the end: its 40 points are still pending.
    assert report.issued == Movement(3, 240, 105 + 120)
    assert report.redeemed == Movement(0, 100, 50)
    assert report.deleted == Movement(4, 60, 170)
    assert report.closing == Holdings(6, 150, 40, 210, 95)
    assert report.points_redemption_rate == 100 / 240
    assert report.stamps_redemption_rate == 0.0
    # February whole (c1, c2), then 1-4 March from the ledger: c4 (c1 counted already).
    assert report.active_members == 3
    assert report.new_members == 2  # c2, c4
    assert [(c.month, c.cards, c.active) for c in report.cohorts[-3:]] == [
        (date(2025, 1, 1), 2, (2, 1, 1)),
        (date(2025, 2, 1), 1, (1, 0)),  # a release is not activity
        (date(2025, 3, 1), 1, (1,)),
    ]


async def test_one_day_and_the_refusals(db: AsyncSession) -> None:
    await _cafe(db)
    report = await finance_report(db, "fin", date(2025, 3, 3), date(2025, 3, 3))
    assert (report.active_members, report.new_members) == (1, 0)
    assert report.redeemed == Movement(0, 100, 50)
    with pytest.raises(FinanceNotFound):
        await finance_report(db, "nope", date(2025, 3, 3), date(2025, 3, 3))
    with pytest.raises(ValueError, match="after it ends"):
        await finance_report(db, "fin", date(2025, 3, 4), date(2025, 3, 3))


async def test_csv_and_dict_carry_every_figure(db: AsyncSession) -> None:
    await _cafe(db)
    report = await finance_report(db, "fin", date(2025, 2, 1), date(2025, 2, 28))
    data = report_dict(report)
    assert data["liability"]["start"] == {
        "stamps": 7,
        "points": 110,
        "points_pending": 0,
        "stamps_cents": 245,
        "points_cents": 55,
        "cents": 300,
    }
    assert data["movements"]["deleted"] == {"stamps": 4, "points": 60, "cents": 170}
    assert data["members"] == {"active": 2, "new": 1}
    assert data["cohorts"][-2] == {
        "month": "2025-01",
        "cards": 2,
        "active": [2, 1],
        "retention": [1.0, 0.5],
    }
    rows = list(csv.reader(io.StringIO(report_csv(report))))
    assert rows[0] == ["section", "figure", "unit", "value"]
    assert ["liability_start", "value", "EUR", "3.00"] in rows
    assert ["liability_end", "points_pending", "points", "40"] in rows
    assert ["movement", "issued", "EUR", "1.20"] in rows
    assert ["rate", "redemption", "stamps", ""] in rows
    assert ["cohort_retention", "2025-01", "2025-02", "0.5000"] in rows
    # A merchant's name written like a formula stays text in a spreadsheet.
    named = replace(report, merchant_name='=HYPERLINK("http://x.invalid","Open")')
    rows = list(csv.reader(io.StringIO(report_csv(named))))
    assert ["report", "merchant_name", "", '\'=HYPERLINK("http://x.invalid","Open")'] in rows


# -- loyalty report finance -------------------------------------------------------------------


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


async def run(cli: CliRunner, *args: str) -> Result:
    return await asyncio.to_thread(cli.invoke, app, list(args))


PERIOD = ("--merchant", "fin", "--from", "2025-02-01", "--to", "2025-02-28")


async def _expected(db: AsyncSession) -> FinanceReport:
    return await finance_report(db, "fin", date(2025, 2, 1), date(2025, 2, 28))


async def test_the_command_prints_json_csv_and_a_table(cli: CliRunner, db: AsyncSession) -> None:
    await _cafe(db)
    expected = await _expected(db)

    as_json = await run(cli, "report", "finance", *PERIOD, "--json")
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout) == json.loads(json.dumps(report_dict(expected)))

    as_csv = await run(cli, "report", "finance", *PERIOD, "--csv")
    assert as_csv.exit_code == 0, as_csv.output
    assert as_csv.stdout == report_csv(expected)

    table = await run(cli, "report", "finance", *PERIOD)
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert lines[0] == (
        "Finance report of Café Fin (fin), 2025-02-01 to 2025-02-28 (Europe/Luxembourg), in EUR"
    )
    assert lines[3].split() == ["Liability", "at", "the", "start", "7", "110", "3.00", "EUR"]
    assert "Taken by deleted cards" in table.stdout
    assert "Active members:  2" in table.stdout
    assert any(line.startswith("2025-01") and "100%" in line for line in lines)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--merchant", "nope", "--from", "2025-02-01", "--to", "2025-02-28"), "nope"),
        (("--merchant", "fin", "--from", "2025-02-30", "--to", "2025-03-01"), "YYYY-MM-DD"),
        (("--merchant", "fin", "--from", "2025-03-01", "--to", "2025-02-01"), "after"),
        ((*PERIOD, "--json", "--csv"), "not both"),
    ],
)
async def test_the_command_refuses_with_exit_2(
    cli: CliRunner, db: AsyncSession, args: tuple[str, ...], says: str
) -> None:
    await _cafe(db)
    result = await run(cli, "report", "finance", *args)
    assert result.exit_code == 2, result.output
    assert says in result.output
