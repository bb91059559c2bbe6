"""The finance page (issue 17): a merchant admin's report of their merchant only, a platform
admin's of any merchant, the period typed or preset, the figures as ``domain.finance``
computes them, the cohort heat map, the CSV download; and the page in a real Chromium at 1440
and 390 pixels wide (screenshots in ``$LOYALTY_SCREENSHOTS``, by default ``/tmp/shots_finance``,
with ``layout.json``: what sticks out of the window at each width).

Merchant a's history: a card enrolled each month for the last ten months, each buying every
month or two since, a coffee every third purchase; the cards dated from their enrolment.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from nicegui import ui
from nicegui.testing import User
from selenium.webdriver.remote.webdriver import WebDriver
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession

from admin_ui.queries import finance as finance_queries
from admin_ui.runtime import raw_connection
from domain.engine.batch import Inbound, process_batch
from domain.finance import FinanceReport, finance_report, report_csv
from domain.models import LoyaltyProgram
from streams.commands import to_command
from streams.parsing import ParseError, parse_input
from streams.topics import Topic
from tests.admin_ui.browser import browser_sign_in, element, no_traceback
from tests.admin_ui.helpers import ALICE, MAIN_FILE, PLATFORM, WAIT, sign_in, status_of, texts
from tests.admin_ui.test_browser_points_and_tiers import _shoot

pytestmark = MAIN_FILE
LUXEMBOURG = ZoneInfo("Europe/Luxembourg")  # the seeded merchants' time zone
SHOTS = Path(os.environ.get("LOYALTY_SCREENSHOTS") or "/tmp/shots_finance")


async def _apply(db: AsyncSession, topic: Topic, body: dict[str, Any], at: datetime) -> None:
    body = {"event_id": str(uuid.uuid4()), "occurred_at": at.isoformat(), **body}
    message = parse_input(topic.value, json.dumps(body).encode())
    assert not isinstance(message, ParseError), message
    await process_batch(await raw_connection(db), [Inbound(topic.value, to_command(message))], at)
    await db.commit()


async def _history(db: AsyncSession, people: dict[str, Any]) -> None:
    """Ten cards of merchant a over ten months; one card of merchant b today."""
    await db.execute(
        update(LoyaltyProgram)
        .where(LoyaltyProgram.id == people["a_program"])
        .values(stamps_reward_value_cents=350)
    )
    await db.commit()
    store = people["a_store_codes"][0]
    now = datetime.now(UTC).replace(microsecond=0)
    for i in range(10):
        email = f"member{i}@example.com"
        enrolled = now - timedelta(days=30 * (10 - i) - 1)
        await _apply(
            db,
            Topic.ENROLLMENTS,
            {
                "type": "enrollment.requested",
                "store_code": store,
                "customer": {"email": email},
                "channel": "staff",
            },
            enrolled,
        )
        bought = 0
        for month in range(10 - i):
            if (month + i) % 3 == 2:
                continue  # a month away
            at = enrolled + timedelta(days=30 * month, hours=1)
            await _apply(
                db,
                Topic.PURCHASES,
                {
                    "type": "purchase.completed",
                    "store_code": store,
                    "order_reference": f"o-{uuid.uuid4().hex[:12]}",
                    "amount_cents": 700 + 150 * ((i + month) % 5),
                    "stamps": 1,
                    "card": {"email": email},
                },
                at,
            )
            bought += 1
            if bought % 3 == 0:
                await _apply(
                    db,
                    Topic.REDEMPTIONS,
                    {
                        "type": "reward.redeem_requested",
                        "store_code": store,
                        "card": {"email": email},
                        "reward": {"kind": "points", "reward_id": "coffee"},
                    },
                    at + timedelta(minutes=5),
                )
        # The card was issued when enrolled (the engine dates a card by the database's clock).
        await db.execute(
            text(
                "UPDATE loyalty_cards c SET created_at = :at FROM customers u"
                " WHERE u.id = c.customer_id AND u.email = :email"
            ),
            {"at": enrolled, "email": email},
        )
        await db.commit()
    await _apply(
        db,
        Topic.ENROLLMENTS,
        {
            "type": "enrollment.requested",
            "store_code": people["b_store_codes"][0],
            "customer": {"email": "b-member@example.com"},
            "channel": "staff",
        },
        now,
    )


def _today() -> date:
    """Today on the seeded merchants' clock (their days are the report's)."""
    return datetime.now(LUXEMBOURG).date()


def _year(today: date) -> tuple[date, date]:
    """From the first of this month a year ago to today."""
    return date(today.year - 1, today.month, 1), today


@pytest.fixture
async def history(people: dict[str, Any], db: AsyncSession) -> dict[str, Any]:
    await _history(db, people)
    return people


async def _expected(db: AsyncSession, code: str, start: date, end: date) -> FinanceReport:
    return await finance_report(db, code, start, end)


def _money(cents: int) -> str:
    # A no-break space: the amount and its currency never part at a line's end.
    return f"{cents / 100:,.2f}\u00a0EUR"


async def test_a_merchant_admin_sees_their_report_only(
    user: User, history: dict[str, Any], db: AsyncSession
) -> None:
    start, end = _year(_today())
    expected = await _expected(db, history["a_code"], start, end)
    assert expected.active_members == 10 and expected.issued.points > 0
    await sign_in(user, ALICE, to="/finance")
    await user.open(f"/finance?start={start}&end={end}")
    await user.should_see(marker="finance-closing", retries=WAIT)
    assert texts(user, "finance-opening") == [_money(expected.opening.cents)]
    assert texts(user, "finance-closing") == [_money(expected.closing.cents)]
    assert texts(user, "finance-active") == ["10"]
    assert texts(user, "finance-new") == [str(expected.new_members)]
    rate = expected.points_redemption_rate
    assert rate is not None
    assert texts(user, "finance-redemption") == [f"{rate:.1%}"]
    (table,) = user.find(marker="finance-movements").elements
    cells = [e.text for e in table.descendants() if isinstance(e, ui.label)]
    issued = cells.index("Issued")
    assert cells[issued : issued + 4] == [
        "Issued",
        f"{expected.issued.stamps:,}",
        f"{expected.issued.points:,}",
        f"{expected.issued.cents / 100:,.2f}",
    ]
    assert "Value (EUR)" in cells
    assert "Taken by deleted cards" in cells
    # No merchant to pick, and merchant b's report is not found.
    await user.should_not_see(marker="finance-merchant")
    status, _ = await status_of(user, f"/finance?merchant={history['b']}")
    assert status == 404


async def test_the_cohorts_heat_map(user: User, history: dict[str, Any], db: AsyncSession) -> None:
    start, end = _year(_today())
    expected = await _expected(db, history["a_code"], start, end)
    await sign_in(user, ALICE, to="/finance")
    await user.open(f"/finance?start={start}&end={end}")
    await user.should_see(marker="finance-cohorts", retries=WAIT)
    (chart,) = user.find(marker="finance-cohorts").elements
    assert isinstance(chart, ui.echart)
    options = chart.options["baseOption"]
    assert options["yAxis"]["data"] == [c.month.strftime("%Y-%m") for c in expected.cohorts]
    cells = {(x, y): (pct, n, size) for x, y, pct, n, size, _ in options["series"][0]["data"]}
    for y, cohort in enumerate(expected.cohorts):
        for x, active in enumerate(cohort.active):
            if cohort.cards:
                assert cells[x, y] == (round(100 * active / cohort.cards), active, cohort.cards)
            else:
                assert (x, y) not in cells
    # Every month's new card was active in its first month.
    assert all(cells[0, y][0] == 100 for y, c in enumerate(expected.cohorts) if c.cards)


async def test_a_platform_admin_picks_the_merchant_and_downloads_the_csv(
    user: User, history: dict[str, Any], db: AsyncSession
) -> None:
    today = _today()
    await sign_in(user, PLATFORM, to="/finance")
    await user.open(f"/finance?merchant={history['b']}&start={today}&end={today}")
    await user.should_see(marker="finance-merchant", retries=WAIT)
    await user.should_see(marker="finance-closing")
    assert texts(user, "finance-new") == ["1"]
    assert texts(user, "finance-active") == ["1"]
    user.find(marker="finance-csv").click()
    download = await user.download.next(timeout=10)
    expected = await _expected(db, history["b_code"], today, today)
    assert download.content == report_csv(expected).encode("utf-8-sig")


async def test_the_report_comes_after_the_page_and_a_failure_is_a_sentence(
    user: User, history: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    start, end = _year(_today())
    await sign_in(user, ALICE, to="/finance")
    # The page as sent: the period's fields at once, the report's place held by grey shapes.
    status, body = await status_of(user, f"/finance?start={start}&end={end}")
    assert status == 200
    assert "finance-start" in body and "finance-report-loading" in body
    assert "finance-closing" not in body

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("the database went away")

    monkeypatch.setattr(finance_queries, "finance_report", broken)
    await user.open(f"/finance?start={start}&end={end}")
    await user.should_see(marker="finance-report-failed", retries=WAIT)
    await user.should_see("could not be loaded")
    await user.should_not_see(marker="finance-closing")
    await user.should_not_see("Traceback")
    await user.should_see(marker="finance-show")  # the filters still work


async def test_presets_and_wrong_dates(user: User, history: dict[str, Any]) -> None:
    await sign_in(user, ALICE, to="/finance")
    await user.open("/finance?start=2026-02-30&end=2026-03-01")
    await user.should_see("Dates are written YYYY-MM-DD.", retries=WAIT)
    await user.should_not_see(marker="finance-closing")
    await user.open("/finance?start=2026-03-02&end=2026-03-01")
    await user.should_see("The period's first day is after its last day.")
    user.find(marker="finance-last-month").click()
    month_end = _today().replace(day=1) - timedelta(days=1)
    await user.should_see(f"to {month_end:%Y-%m-%d}", retries=WAIT)
    await user.should_see(marker="finance-closing")


# --- in a real browser -------------------------------------------------------------------


async def test_the_finance_page_at_1440_and_390_pixels(
    server: str, browser: WebDriver, history: dict[str, Any]
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, before the browser
    start, end = _year(_today())
    browser_sign_in(browser, server, ALICE)
    browser.get(f"{server}/finance?start={start}&end={end}")
    element(browser, "finance-cohorts", "canvas")
    no_traceback(browser)
    layout: dict[str, Any] = {}
    await _shoot(browser, SHOTS, "finance", "finance-cohorts", layout)
    (SHOTS / "layout.json").write_text(json.dumps(layout, indent=2))
    # On a phone nothing of the report sticks out (the header's navigation is the frame's).
    report = [e for e in layout["finance-390"]["outside"] if not _in_header(e)]
    assert report == [], layout["finance-390"]


def _in_header(found: dict[str, Any]) -> bool:
    testid = found["testid"] or ""
    return testid.startswith(("nav-", "whoami", "sign-out")) or found["tag"] == "header"
