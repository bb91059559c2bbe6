"""``loyalty demo history``: backdated demo traffic applied by the engine, once, with creation
dates from the enrolments and statistics that equal a rebuild from the ledger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.settings import Settings
from domain.provisioning import apply, load_file
from loyalty.demo_history import HistoryRefused, seed_history
from tests.pipeline.test_rollups_exact import _summaries
from tests.tools.helpers import loyalty
from tests.tools.test_simulate_scope import demo_file_with_unique_codes

UNTIL = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


async def _provisioned(
    tmp_path: Path, sessions: async_sessionmaker[AsyncSession]
) -> tuple[Path, str]:
    path, code, _ = demo_file_with_unique_codes(tmp_path)
    async with sessions() as s:
        await apply(s, load_file(path), rounds=4)
        await s.commit()
    return path, code


async def test_two_weeks_of_history_through_the_engine(
    tmp_path: Path, sessions: async_sessionmaker[AsyncSession], tool_settings: Settings
) -> None:
    path, code = await _provisioned(tmp_path, sessions)
    report = await seed_history(tool_settings, days=14, until=UNTIL, demo_file=path)

    assert report.merchants == [code] and report.skipped is None
    assert report.days == 14 and report.events > 14 * 30
    assert report.statuses["applied"] > 0.8 * report.events
    conn = await asyncpg.connect(tool_settings.db_url)
    try:
        row = await conn.fetchrow("SELECT id, timezone FROM merchants WHERE code = $1", code)
        assert row is not None
        merchant_id, zone = row["id"], row["timezone"]
        tz = ZoneInfo(zone)
        days = await conn.fetch(
            "SELECT DISTINCT (occurred_at AT TIME ZONE $2)::date AS d FROM ledger_entries"
            " WHERE merchant_id = $1 ORDER BY 1",
            merchant_id,
            zone,
        )
        assert len(days) == 14
        assert days[0]["d"] == (UNTIL.astimezone(tz) - timedelta(days=14)).date()
        assert days[-1]["d"] < UNTIL.astimezone(tz).date()
        hours = await conn.fetch(
            "SELECT DISTINCT extract(hour FROM occurred_at AT TIME ZONE $2) AS h"
            " FROM ledger_entries WHERE merchant_id = $1",
            merchant_id,
            zone,
        )
        assert {int(r["h"]) for r in hours} <= set(range(7, 20))  # while the shops are open
        # Every card and customer dates from the enrolment that created it, not from today.
        cards = await conn.fetch(
            "SELECT c.created_at, cu.created_at AS customer_created,"
            " (SELECT min(occurred_at) FROM ledger_entries l"
            "  WHERE l.card_id = c.id AND l.entry_type = 'card_created') AS enrolled"
            " FROM loyalty_cards c JOIN customers cu ON cu.id = c.customer_id"
            " WHERE c.merchant_id = $1",
            merchant_id,
        )
        assert len(cards) > 50
        assert all(r["created_at"] == r["enrolled"] == r["customer_created"] for r in cards)
        assert len({r["created_at"].astimezone(tz).date() for r in cards}) >= 12
        # The statistics moved with the dates: they equal a rebuild from ledger and cards.
        kept = await _summaries(conn, code)
        async with conn.transaction():
            await conn.execute("SELECT stats_rebuild($1)", merchant_id)
            rebuilt = await _summaries(conn, code)
        assert kept == rebuilt
        created = await conn.fetchval(
            "SELECT count(DISTINCT day) FROM card_daily_counts"
            " WHERE merchant_id = $1 AND cards_created > 0",
            merchant_id,
        )
        assert created >= 12
        # Cards agree with their ledger (the audit's card checks).
        mismatched = await conn.fetchval(
            "SELECT count(*) FROM loyalty_cards c WHERE c.merchant_id = $1 AND"
            " c.points_balance <> (SELECT coalesce(sum(points_delta), 0) FROM ledger_entries l"
            "                      WHERE l.card_id = c.id)",
            merchant_id,
        )
        assert mismatched == 0
    finally:
        await conn.close()

    again = await seed_history(tool_settings, days=14, until=UNTIL, demo_file=path)
    assert again.skipped is not None and again.events == 0


async def test_without_demo_merchants_it_says_what_to_do(
    tmp_path: Path, tool_settings: Settings
) -> None:
    path, _, _ = demo_file_with_unique_codes(tmp_path)  # written, never provisioned
    try:
        await seed_history(tool_settings, days=3, demo_file=path)
    except HistoryRefused as exc:
        assert "loyalty provision demo/demo.yaml" in str(exc)
    else:
        raise AssertionError("a history for merchants that do not exist")


async def test_the_command_seeds_once_and_says_so(
    tmp_path: Path, sessions: async_sessionmaker[AsyncSession], cli_env: dict[str, str]
) -> None:
    path, code = await _provisioned(tmp_path, sessions)
    first = await loyalty(cli_env, "demo", "history", "--days", "3", "--file", str(path))
    assert first.code == 0, first.err
    assert f"over 3 days for {code}" in first.out and "applied" in first.out
    again = await loyalty(cli_env, "demo", "history", "--days", "3", "--file", str(path))
    assert again.code == 0 and "nothing done" in again.out
