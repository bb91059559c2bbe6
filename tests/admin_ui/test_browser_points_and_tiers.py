"""Pending points, point lots, expiry and tiers (CONTRACT.md 7.2 to 7.4) in a real headless
Chromium (``tests.admin_ui.browser``): merchant a's program gets tiers (member, silver at 300
points x1.5, gold at 1000 x2), 14 pending days and a rolling 365-day expiry; three cards get a
year of history through the engine (``process_batch``), the daily run included; then its admin
opens the program form, a card's page and the statistics, and the customer opens the card's
own page.

Screenshots of each page at 1440 and 390 pixels wide (the whole page's height) go to
``$LOYALTY_SCREENSHOTS``, by default ``/tmp/shots_points_tiers``, with ``layout.json``: what
sticks out of the window at each width.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from admin_ui.runtime import raw_connection
from core.enums import ExpiryPolicy
from domain.engine.batch import Inbound, process_batch
from domain.engine.outputs import Result
from domain.models import LoyaltyCard, LoyaltyProgram
from streams.commands import to_command
from streams.parsing import ParseError, parse_input
from streams.topics import Topic
from tests.admin_ui.browser import browser_sign_in, css, element, input_of, no_traceback, see
from tests.admin_ui.helpers import ALICE

SHOTS = Path(os.environ.get("LOYALTY_SCREENSHOTS") or "/tmp/shots_points_tiers")
WIDTHS = (1440, 390)
TIERS = [
    {"id": "member", "name": "Member", "threshold_points": 0, "multiplier": 1},
    {"id": "silver", "name": "Silver", "threshold_points": 300, "multiplier": 1.5},
    {"id": "gold", "name": "Gold", "threshold_points": 1000, "multiplier": 2},
]

# What sticks out of the window: the page's own width, and the elements whose right edge is
# past the window without a scrolling box of their own around them.
OVERFLOW_JS = """
const width = arguments[0];
const scrolls = (e) => {
  for (let p = e.parentElement; p; p = p.parentElement) {
    const s = getComputedStyle(p);
    if ((s.overflowX === 'auto' || s.overflowX === 'scroll' || s.overflowX === 'hidden')
        && p.getBoundingClientRect().right <= width + 1) return true;
  }
  return false;
};
const out = [];
for (const e of document.querySelectorAll('body *')) {
  const r = e.getBoundingClientRect();
  if (r.width === 0 || r.height === 0) continue;
  if (r.right > width + 1 && !scrolls(e)) {
    out.push({tag: e.tagName.toLowerCase(), testid: e.getAttribute('data-testid'),
              cls: (e.className && e.className.baseVal === undefined ? e.className : '')
                   .toString().slice(0, 80),
              right: Math.round(r.right), text: (e.innerText || '').slice(0, 60)});
  }
}
return {width: width, inner: window.innerWidth, doc: document.documentElement.scrollWidth,
        body: document.body.scrollWidth, outside: out.slice(0, 25)};
"""


# The box of an input's field (the element named by ``data-testid`` is Quasar's native input),
# or of a part of it (its hint: ".q-field__bottom").
FIELD_JS = """
const field = arguments[0].closest('.q-field') || arguments[0];
const part = arguments[1] ? field.querySelector(arguments[1]) : field;
const r = part ? part.getBoundingClientRect() : {top: 0, bottom: 0, height: 0};
return {top: r.top, bottom: r.bottom, height: r.height};
"""


async def _apply(db: AsyncSession, body: dict[str, Any], now: datetime) -> Result:
    """One input message through the engine, as the worker applies it (committed)."""
    topic = {
        "enrollment.requested": Topic.ENROLLMENTS,
        "purchase.completed": Topic.PURCHASES,
        "reward.redeem_requested": Topic.REDEMPTIONS,
        "expiry.run_requested": Topic.EXPIRY,
    }[body["type"]]
    message = parse_input(topic.value, json.dumps(body).encode())
    assert not isinstance(message, ParseError), message
    outcome = await process_batch(
        await raw_connection(db), [Inbound(topic.value, to_command(message))], now
    )
    await db.commit()
    (result,) = outcome.results
    # A daily run that changes no card (reminders only) is "rejected".
    expected = ("applied", "rejected") if topic is Topic.EXPIRY else ("applied",)
    assert result.status in expected, result
    return result


def _event(kind: str, at: datetime, **fields: Any) -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "type": kind, "occurred_at": at.isoformat(), **fields}


def _enrolment(store: str, at: datetime, **customer: str) -> dict[str, Any]:
    return _event("enrollment.requested", at, store_code=store, customer=customer, channel="staff")


def _purchase(store: str, card: str, cents: int, at: datetime) -> dict[str, Any]:
    return _event(
        "purchase.completed",
        at,
        store_code=store,
        order_reference=f"o-{uuid.uuid4().hex[:12]}",
        amount_cents=cents,
        card={"card_number": card},
    )


async def _seed(db: AsyncSession, people: dict[str, Any]) -> str:
    """Merchant a's program with tiers, pending points and a rolling expiry; three cards with
    a year of history, each event applied at its own time and the daily run passing after
    each purchase's 14 days; returns the main card's number (Silver, with points pending and
    points due within 30 days)."""
    await db.execute(
        update(LoyaltyProgram)
        .where(LoyaltyProgram.id == people["a_program"])
        .values(
            tiers=TIERS,
            tier_window="rolling_12_months",
            tier_grace_days=7,
            pending_days=14,
            expiry_policy=ExpiryPolicy.ROLLING,
            points_expiration_days=365,
            expiry_reminder_days=30,
            welcome_bonus_points=50,
            stamps_reward_description="A free coffee",
        )
    )
    await db.commit()
    shop, other = people["a_store_codes"]
    now = datetime.now(UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)

    def ago(days: int, hour: int, minute: int = 0) -> datetime:
        return day - timedelta(days=days) + timedelta(hours=hour, minutes=minute)

    enrolled: dict[str, datetime] = {}

    async def enrol(store: str, at: datetime, **customer: str) -> str:
        number = (await _apply(db, _enrolment(store, at, **customer), at)).card_number
        assert number is not None
        enrolled[number] = at
        return number

    lea = await enrol(
        shop, ago(345, 9),
        email="lea@example.com", first_name="Léa", last_name="Muller", locale="en",
    )  # fmt: skip
    ben = await enrol(other, ago(30, 12), email="ben@example.com")
    chloe = await enrol(shop, ago(100, 9), email="chloe@example.com", first_name="Chloé")
    coffee = {"kind": "points", "reward_id": "coffee"}
    # Léa: 50 welcome points, 250 points bought at 23:30 UTC 340 days ago (00:30 the next
    # day in Luxembourg: they expire 25 days from now), Silver 200 days ago, a coffee, then
    # points earned with Silver's multiplier, the last 120 of them still pending. Ben: a
    # newcomer in the first tier. Chloé: Silver 90 days ago, Gold 40 days ago.
    events = [
        _purchase(shop, lea, 2500, ago(340, 23, 30)),
        _purchase(other, lea, 1200, ago(200, 11)),
        _event(
            "reward.redeem_requested",
            ago(120, 10),
            store_code=shop,
            card={"card_number": lea},
            reward=coffee,
        ),
        _purchase(shop, lea, 3000, ago(60, 16)),
        _purchase(shop, lea, 800, ago(5, 8)),
        _purchase(other, ben, 1500, ago(20, 12)),
        _purchase(shop, chloe, 6000, ago(90, 9)),
        _purchase(shop, chloe, 5000, ago(40, 9)),
    ]
    # The daily run at 02:00 UTC, the day after each purchase's points are due, and now.
    runs = {
        (datetime.fromisoformat(e["occurred_at"]) + timedelta(days=15)).replace(hour=2, minute=0)
        for e in events
        if e["type"] == "purchase.completed"
    }
    runs = {at for at in runs if at < now} | {now - timedelta(minutes=1)}
    events += [_event("expiry.run_requested", at, merchant_code=people["a_code"]) for at in runs]
    for body in sorted(events, key=lambda e: datetime.fromisoformat(e["occurred_at"])):
        at = datetime.fromisoformat(body["occurred_at"])
        await _apply(db, body, at + timedelta(seconds=1))

    # The cards were issued when enrolled (the engine dates a row by the database's clock):
    # the statistics count them from then.
    for number, at in enrolled.items():
        await db.execute(
            update(LoyaltyCard).where(LoyaltyCard.card_number == number).values(created_at=at)
        )
    await db.execute(text("SELECT stats_rebuild(:m)"), {"m": people["a"]})
    await db.commit()
    return lea


async def _settle(driver: WebDriver, seconds: float) -> None:
    """Wait for the page's layout and charts (their animation) to follow a new size."""
    driver.execute_script("window.dispatchEvent(new Event('resize'))")
    await asyncio.sleep(seconds)


async def _shoot(
    driver: WebDriver, folder: Path, name: str, ready: str, layout: dict[str, Any]
) -> None:
    """The whole page at each width, loaded afresh at that width (a phone's, emulated, at
    390: its charts drawn for its screen), and what sticks out; ``ready``: the element the
    page shows once drawn."""
    for width in WIDTHS:
        phone = width < 600
        metrics = {"width": width, "deviceScaleFactor": 2 if phone else 1, "mobile": phone}
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {**metrics, "height": 900})
        driver.refresh()
        element(driver, ready)
        await _settle(driver, 1.2)
        no_traceback(driver)
        layout[f"{name}-{width}"] = driver.execute_script(OVERFLOW_JS, width)
        height = driver.execute_script(
            "return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)"
        )
        metrics["height"] = min(max(int(height), 900), 8000)
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
        await _settle(driver, 0.4)
        driver.execute_script("window.scrollTo(0, 0)")
        driver.save_screenshot(str(folder / f"{name}-{width}.png"))
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1440, "height": 900, "deviceScaleFactor": 1, "mobile": False},
    )


def _text(driver: WebDriver, testid: str) -> str:
    return re.sub(r"\s+", " ", element(driver, testid).text).strip()


def _cells(driver: WebDriver, testid: str) -> list[list[str]]:
    """The cells of each body row of the table named ``testid`` (or inside it)."""
    rows = element(driver, testid).find_elements(By.CSS_SELECTOR, "tbody tr")
    return [
        [re.sub(r"\s+", " ", td.text).strip() for td in row.find_elements(By.TAG_NAME, "td")]
        for row in rows
    ]


@pytest.fixture
def shots() -> Path:
    """Where this module's screenshots go (made when missing)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS


async def test_points_lots_and_tiers_where_people_look(
    server: str, browser: WebDriver, people: dict[str, Any], db: AsyncSession, shots: Path
) -> None:
    lea = await _seed(db, people)
    card = (await db.scalars(select(LoyaltyCard).where(LoyaltyCard.card_number == lea))).one()
    # 50 + 250 + 120 (Member), 450 (Silver x1.5) spendable, less the coffee's 50; 120 pending.
    assert (card.points_balance, card.points_pending, card.tier) == (820, 120, "silver")
    # Qualifying: every purchase's points in the last 12 months, the pending ones included.
    assert card.qualifying_points == 250 + 120 + 450 + 120
    layout: dict[str, Any] = {}
    driver = browser
    browser_sign_in(driver, server, ALICE)

    # The program form: the expiry policy, the pending and reminder days, the tiers table.
    driver.get(f"{server}/programs/{people['a_program']}")
    element(driver, "tiers")
    assert input_of(driver, "program-pending_days").get_attribute("value") == "14"
    assert input_of(driver, "program-points_expiration_days").get_attribute("value") == "365"
    assert input_of(driver, "program-expiry_reminder_days").get_attribute("value") == "30"
    assert "Rolling (each purchase's points)" in _text(driver, "program-expiry_policy")
    for i, tier in enumerate(TIERS):
        assert input_of(driver, f"tier-{i}-id").get_attribute("value") == tier["id"]
        assert input_of(driver, f"tier-{i}-name").get_attribute("value") == tier["name"]
        threshold = input_of(driver, f"tier-{i}-threshold_points").get_attribute("value")
        assert threshold == str(tier["threshold_points"])
        assert (
            float(input_of(driver, f"tier-{i}-multiplier").get_attribute("value") or 0)
            == (tier["multiplier"])
        )
    assert "Rolling 12 months" in _text(driver, "program-tier_window")
    assert input_of(driver, "program-tier_grace_days").get_attribute("value") == "7"
    see(driver, "A change applies to points earned from now on")
    # The program has tiers: no "No tiers" beside them.
    assert not driver.find_elements(By.CSS_SELECTOR, css("program-tiers-empty") + ":not(.hidden)")
    assert "No tiers" not in driver.find_element(By.TAG_NAME, "body").text
    no_traceback(driver)
    await _shoot(driver, shots, "program-form", "tiers", layout)

    # The admin's card page: pending beside the balance, the next expiry, the lots, the tier.
    driver.get(f"{server}/cards/{card.id}")
    element(driver, "tier-history-list")
    assert _text(driver, "card-points") == "820"
    assert _text(driver, "card-pending") == "120"
    assert _text(driver, "card-tier") == "Silver"
    assert _text(driver, "card-qualifying") == str(card.qualifying_points)
    assert _text(driver, "card-tier-next") == f"{1000 - card.qualifying_points} points to Gold"
    expiry = _text(driver, "card-next-expiry")
    assert re.fullmatch(r"Next expiry: 250 points expire on .+\(merchant's time\)\.", expiry), (
        expiry
    )
    see(driver, "Open point lots")
    lots = _cells(driver, "lots-list")
    # Remaining: the coffee spent the welcome points, whose lot expired first.
    assert [(row[2], row[3], row[4].split(" ")[0]) for row in lots] == [
        ("250", "250", "spendable"),
        ("120", "120", "spendable"),
        ("450", "450", "spendable"),
        ("120", "120", "pending"),
    ], lots
    # Their times on the merchant's clock, as the next expiry: the 250 points bought at
    # 23:30 UTC were earned at 00:30 the next day in Luxembourg.
    assert _text(driver, "lots-zone") == "Times on the merchant's clock (Europe/Luxembourg)."
    zone = ZoneInfo("Europe/Luxembourg")
    bought = (datetime.now(UTC).replace(hour=23, minute=30) - timedelta(days=340)).astimezone(zone)
    assert lots[0][1] == bought.strftime("%Y-%m-%d %H:%M %Z"), lots
    assert not [cell for row in lots for cell in row if "UTC" in cell], lots
    # The ledger: the last purchase's 120 points, pending, with their amount.
    ledger = _cells(driver, "ledger-list")
    earned = [row for row in ledger if row[1] == "points earned"]
    assert earned[0][3] == "+120 pending", ledger
    see(driver, "Tier history")
    history = _cells(driver, "tier-history-list")
    assert [row[1:] for row in history] == [
        ["Member", "Silver", "370"],
        ["—", "Member", "0"],
    ], history
    no_traceback(driver)
    await _shoot(driver, shots, "admin-card", "tier-history-list", layout)

    # The statistics: points pending and expiring, the breakage, the tiers and their chart.
    driver.get(f"{server}/stats/merchants/{people['a']}")
    element(driver, "chart-tiers", "canvas")
    element(driver, "chart-expiry", "canvas")
    assert _text(driver, "stats-points-pending") == "120"
    assert _text(driver, "stats-expiring-30") == "250"
    see(driver, "Breakage: points expired / points issued")
    see(driver, "Tiers")
    tiers = _cells(driver, "stats-tiers")
    assert [row[:2] for row in tiers] == [["Member", "1"], ["Silver", "1"], ["Gold", "1"]], tiers
    no_traceback(driver)
    await _shoot(driver, shots, "stats", "chart-tiers", layout)

    # The customer's own page (no sign-in: its link is the secret).
    driver.get(f"{server}/card/{card.link_token}")
    element(driver, "stamp-grid")
    assert _text(driver, "points") == "820"
    assert _text(driver, "points-pending") == "120 points pending"
    assert re.fullmatch(r"250 points expire on .+", _text(driver, "points-expiry"))
    assert _text(driver, "tier") == "Silver"
    assert _text(driver, "tier-next") == f"{1000 - card.qualifying_points} points to Gold"
    see(driver, "Points earned: +120 points (pending)")
    no_traceback(driver)
    await _shoot(driver, shots, "customer-card", "stamp-grid", layout)
    driver.get(f"{server}/card/{card.link_token}?lang=fr")
    element(driver, "stamp-grid")
    assert _text(driver, "tier-next") == f"Encore {1000 - card.qualifying_points} points avant Gold"
    await _shoot(driver, shots, "customer-card-fr", "stamp-grid", layout)

    _write(shots / "layout.json", layout)
    # Nothing sticks out of a phone's screen on the pages of cards and programs.
    for name in ("program-form", "admin-card", "customer-card", "customer-card-fr"):
        assert layout[f"{name}-390"]["outside"] == [], (name, layout[f"{name}-390"])
        assert layout[f"{name}-390"]["doc"] <= 390, (name, layout[f"{name}-390"])


async def test_the_program_form_is_one_column_on_a_phone(
    server: str, browser: WebDriver, people: dict[str, Any]
) -> None:
    driver = browser
    browser_sign_in(driver, server, ALICE)
    driver.get(f"{server}/programs/{people['a_program']}")
    element(driver, "tier-add")
    for width, columns in ((1440, 2), (390, 1)):
        phone = width < 600
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": phone},
        )
        driver.refresh()
        element(driver, "program-settings")
        await _settle(driver, 0.5)
        lefts = {
            round(input_of(driver, f"program-{key}").rect["x"])
            for key in ("name", "currency", "stamps_target", "points_per_euro")
        }
        assert len(lefts) == columns, (width, lefts)
        if columns == 1:
            # A hint takes its own lines: the next field starts below it.
            for hinted, after in (
                ("program-points_expiration_days", "program-expiry_policy"),
                ("program-pending_days", "program-expiry_reminder_days"),
            ):
                hint = driver.execute_script(FIELD_JS, element(driver, hinted), ".q-field__bottom")
                below = driver.execute_script(FIELD_JS, element(driver, after), "")
                assert hint["height"] > 0, (hinted, hint)
                assert below["top"] >= hint["bottom"] - 1, (hinted, hint, below)


def _write(path: Path, layout: dict[str, Any]) -> None:
    path.write_text(json.dumps(layout, indent=2, ensure_ascii=False))
