"""Figures and times as an admin reads them, in a real headless Chromium (issue 18, item 2):

- a browser asking for French (``intl.accept_languages``, sent as ``Accept-Language``) reads
  the finance report's money as ``1 234,56 EUR`` and the statistics' counts as ``123 456``,
  and the charts' JavaScript formatter writes numbers with the same separators;
- a merchant in New York reads its audit log on its clock, EST in winter and EDT in summer,
  never UTC; a platform admin reads that merchant's changes on the same clock;
- statistics, finance, audit log, webhooks and campaigns at 1440 and 390 pixels wide: at 390
  the page never scrolls sideways (tables scroll inside their own box or become cards).

Screenshots go to ``$LOYALTY_SCREENSHOTS`` (default: pytest's tmp folder).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from admin_ui import texts
from admin_ui.formatting import using_locale
from admin_ui.queries import campaigns, webhooks
from admin_ui.queries.admins import Principal
from core.enums import CampaignStatus
from domain.audit_trail import acting_as, record_change
from domain.finance import finance_report
from domain.models import AdminAuditLog, Campaign, Merchant, UserRole, WebhookDelivery
from tests.admin_ui.browser import (
    CHROME_OPTIONS,
    CHROMEDRIVER,
    CHROMIUM,
    INSTALL,
    browser_sign_in,
    element,
    input_of,
    no_traceback,
    see,
    wait,
)
from tests.admin_ui.helpers import ALICE, BOB, PLATFORM, enrol, purchase

NARROW = "\u202f"  # French groups thousands with a narrow no-break space
NBSP = "\u00a0"
NEW_YORK = "America/New_York"
LUXEMBOURG = ZoneInfo("Europe/Luxembourg")  # the seeded merchants' time zone
# (width, height, a phone?) of the screenshots
SCREENS = ((1440, 1000, False), (390, 844, True))
SEED = Principal(0, "seed", UserRole.PLATFORM_ADMIN, None)


@pytest.fixture(scope="module", autouse=True)
def allow_private() -> Iterator[None]:
    """The served app takes example.com webhook addresses as given, as the webhook tests do
    (the ``server`` fixture copies the environment)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LOYALTY_WEBHOOK_ALLOW_PRIVATE", "true")
        yield


@pytest.fixture
def french(tmp_path: Path) -> Iterator[WebDriver]:
    """A headless Chromium whose person reads French: it asks for ``fr-FR`` first."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(f"Chromium is missing ({', '.join(missing)}): install it with `{INSTALL}`")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for option in CHROME_OPTIONS:
        options.add_argument(option)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-fr'}")
    options.add_argument("--lang=fr-FR")
    options.add_experimental_option("prefs", {"intl.accept_languages": "fr-FR,fr"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


# --- the data ------------------------------------------------------------------------------


async def _activity(db: AsyncSession, people: dict[str, Any]) -> None:
    """Merchant a: a big spender (12,345.67 EUR: 123,456 points) and two regulars."""
    store = people["a_store_codes"][0]
    now = datetime.now(UTC).replace(microsecond=0)
    big = await enrol(db, store, "big@example.com")
    await purchase(db, store, big, 1_234_567, now - timedelta(hours=2))
    for i in range(2):
        card = await enrol(db, store, f"regular{i}@example.com")
        for day in range(1, 6):
            await purchase(db, store, card, 850 + 120 * i, now - timedelta(days=day, hours=i))


async def _webhook(db: AsyncSession, people: dict[str, Any]) -> int:
    """An endpoint of merchant a with a delivered, a pending and a parked delivery; its id."""
    spec = webhooks.EndpointSpec(
        url="https://hooks.example.com/loyalty",
        event_types=("card.balance_changed", "tier.changed"),
        description="Shop backend",
        is_active=True,
    )
    endpoint_id, _ = await webhooks.create_endpoint(db, SEED, people["a"], spec, allow_private=True)
    now = datetime.now(UTC)
    for status, kind, error in (
        ("delivered", "card.balance_changed", None),
        ("pending", "tier.changed", "Service Unavailable"),
        ("parked", "card.balance_changed", "Bad Gateway"),
    ):
        db.add(
            WebhookDelivery(
                endpoint_id=endpoint_id,
                event_id=uuid.uuid4(),
                event_type=kind,
                card_number="1000-0000-0001",
                body=b"{}",
                status=status,
                attempts=1 if status == "delivered" else 12,
                last_status=200 if status == "delivered" else 502,
                last_error=error,
                created_at=now - timedelta(minutes=9),
                delivered_at=now - timedelta(minutes=8) if status == "delivered" else None,
                next_attempt_at=now + timedelta(minutes=4),
            )
        )
    await db.commit()
    return endpoint_id


async def _campaign(db: AsyncSession, people: dict[str, Any]) -> int:
    """An active campaign of merchant a three quarters through its budget; its id."""
    scope = await campaigns.program_scope(db, SEED, people["a_program"])
    assert scope is not None
    campaign_id = await campaigns.create_campaign(
        db,
        SEED,
        scope,
        {
            "id": "coffee-mornings",
            "name": "Coffee mornings",
            "categories": ["drink"],
            "hours": "07:00-10:00",
            "days": ["mon", "tue", "wed", "thu", "fri"],
            "bonus_points": 20,
            "budget_points": 10000,
            "max_awards_per_card": 5,
            "min_basket_cents": 1250,
        },
    )
    await db.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id)
        .values(status=CampaignStatus.ACTIVE, points_awarded=7450)
    )
    await db.commit()
    return campaign_id


async def _program_changed(db: AsyncSession, people: dict[str, Any]) -> None:
    """Alice gave merchant a's program tiers and more points per euro."""
    with acting_as("alice"):
        await record_change(
            db,
            action="update",
            entity="program",
            entity_id=people["a_program"],
            merchant_id=people["a"],
            before={"points_per_euro": 10, "tiers": [], "is_active": False},
            after={
                "points_per_euro": 12,
                "tiers": [{"id": "gold", "name": "Gold", "threshold_points": 1000}],
                "is_active": True,
            },
        )
    await db.commit()


async def _changes_in_new_york(db: AsyncSession, people: dict[str, Any]) -> None:
    """Merchant b moves to New York; its admin made a change in winter and one in summer, both
    at 15:00 UTC: 10:00 EST and 11:00 EDT there."""
    await db.execute(update(Merchant).where(Merchant.id == people["b"]).values(timezone=NEW_YORK))
    store = people["b_stores"][0]
    for at, name in (
        (datetime(2026, 1, 15, 15, 0, tzinfo=UTC), "Winter hours"),
        (datetime(2026, 7, 15, 15, 0, tzinfo=UTC), "Summer hours"),
    ):
        db.add(
            AdminAuditLog(
                at=at,
                actor="bob",
                source="panel",
                action="update",
                entity="store",
                entity_id=str(store),
                merchant_id=people["b"],
                before={"opening_hours": "9-17"},
                after={"opening_hours": name},
                summary=f"updated store {store}: opening_hours",
            )
        )
    await db.commit()


# --- a person's eyes -------------------------------------------------------------------------


def _content(found: WebElement) -> str:
    # The DOM's text: WebDriver's ``.text`` would turn a no-break space into a space.
    return str(found.get_attribute("textContent")).strip()


def _text(driver: WebDriver, testid: str) -> str:
    return _content(element(driver, testid))


def _texts(driver: WebDriver, testid: str) -> list[str]:
    wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, f'[data-testid="{testid}"]'))
    return [_content(e) for e in driver.find_elements(By.CSS_SELECTOR, f'[data-testid="{testid}"]')]


def _french_money(cents: int) -> str:
    """``123456`` -> ``1 234,56 EUR`` as French writes it, made here without Babel."""
    whole, part = divmod(abs(cents), 100)
    grouped = f"{whole:,}".replace(",", NARROW)
    return f"{'-' if cents < 0 else ''}{grouped},{part:02d}{NBSP}EUR"


async def _shoot(driver: WebDriver, folder: Path, name: str, ready: str) -> None:
    """The page at each width, loaded afresh at it (a phone's, emulated, at 390): a screenshot
    of the screen and one as tall as the page; at 390 the page must not scroll sideways."""
    for width, height, phone in SCREENS:
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": phone}
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
        driver.refresh()
        element(driver, ready)
        await asyncio.sleep(1.2)  # the charts draw, the layout settles
        no_traceback(driver)
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{name} at {width} px scrolls sideways by {overflow} px"
        driver.execute_script("window.scrollTo(0, 0)")
        driver.save_screenshot(str(folder / f"{name}-{width}.png"))
        tall = driver.execute_script(
            "return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)"
        )
        whole = {**metrics, "height": min(max(int(tall), height), 6000)}
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", whole)
        await asyncio.sleep(0.6)
        driver.execute_script("window.scrollTo(0, 0)")
        driver.save_screenshot(str(folder / f"{name}-{width}-full.png"))
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


async def _while_loading(
    driver: WebDriver, server: str, folder: Path, pages: tuple[tuple[str, str, str], ...]
) -> None:
    """The slow pages as sent, before their figures come: with the page's connection to the
    server held back, the frame and the filters show, and grey shapes where the figures will
    be."""
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*socket.io*"]})
    try:
        for name, marker, shown in (
            ("stats-merchant", "stats-content-loading", "page-title"),
            ("finance", "finance-report-loading", "finance-start"),
            ("audit-log", "audit-loading", "audit-actor-filter"),
        ):
            path = next(p for n, p, _ in pages if n == name)
            for width, height, phone in SCREENS:
                metrics = {"width": width, "height": height, "deviceScaleFactor": 1}
                driver.execute_cdp_cmd(
                    "Emulation.setDeviceMetricsOverride", {**metrics, "mobile": phone}
                )
                driver.get(f"{server}{path}")
                element(driver, marker)
                element(driver, shown)
                await asyncio.sleep(0.5)
                driver.save_screenshot(str(folder / f"{name}-loading-{width}.png"))
            figures = ("stats-cards", "finance-closing", "audit-row")
            assert not driver.find_elements(
                By.CSS_SELECTOR, ", ".join(f'[data-testid="{f}"]' for f in figures)
            )
    finally:
        driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


# --- the tests -------------------------------------------------------------------------------


async def test_money_and_counts_in_french(
    server: str,
    french: WebDriver,
    people: dict[str, Any],
    db: AsyncSession,
    screenshots: Path,
) -> None:
    await _activity(db, people)
    today = datetime.now(LUXEMBOURG).date()  # the merchant's: the report's days are its
    start, end = date(today.year - 1, today.month, 1), today
    report = await finance_report(db, people["a_code"], start, end)
    assert report.closing.cents > 100_000  # grouped: more than a thousand euros
    driver = french
    browser_sign_in(driver, server, ALICE)
    assert driver.execute_script("return navigator.language") == "fr-FR"

    driver.get(f"{server}/finance?start={start}&end={end}")
    closing = _text(driver, "finance-closing")
    assert closing == _french_money(report.closing.cents), closing
    assert re.fullmatch(rf"\d{{1,3}}({NARROW}\d{{3}})+,\d\d{NBSP}EUR", closing), closing
    assert _text(driver, "finance-opening") == _french_money(report.opening.cents)
    # The movements' table: points grouped the French way, euros with a decimal comma.
    rows = element(driver, "finance-movements").find_elements(By.CSS_SELECTOR, "tbody tr")
    issued = next(r for r in rows if _content(r).startswith("Issued"))
    cells = [_content(c) for c in issued.find_elements(By.TAG_NAME, "td")]
    points = f"{report.issued.points:,}".replace(",", NARROW)
    assert cells[2] == points and NARROW in points, cells
    assert cells[3] == _french_money(report.issued.cents).removesuffix(f"{NBSP}EUR"), cells
    # The CSV keeps plain numbers, and says so.
    assert "no thousands separator" in _text(driver, "finance-csv-note")
    await _shoot(driver, screenshots, "finance-fr", "finance-closing")

    # The statistics' counts in French too, and the charts' formatter writes as Babel does.
    driver.get(f"{server}/stats/merchants/{people['a']}")
    issued_points = _text(driver, "stats-points-issued")
    assert re.fullmatch(rf"\d{{1,3}}({NARROW}\d{{3}})+", issued_points), issued_points
    with using_locale("fr"):
        formatter = texts.chart_number(2, f"{NBSP}EUR")
    shown = driver.execute_script(f"return ({formatter})(1234567.891)")
    assert shown == f"1{NARROW}234{NARROW}567,89{NBSP}EUR"
    assert driver.execute_script(f"return ({formatter})(-5)") == f"-5,00{NBSP}EUR"
    element(driver, "chart-liability", "canvas")
    no_traceback(driver)


async def test_a_new_york_merchants_audit_log_is_on_its_clock(
    server: str,
    browser: WebDriver,
    people: dict[str, Any],
    db: AsyncSession,
    screenshots: Path,
) -> None:
    await _changes_in_new_york(db, people)
    for who, credentials in (("merchant", BOB), ("platform", PLATFORM)):
        browser.delete_all_cookies()
        browser_sign_in(browser, server, credentials)
        browser.get(f"{server}/audit?merchant={people['b']}")
        element(browser, "audit-row")
        # Newest first: the summer's change, then the winter's; never in UTC.
        assert _texts(browser, "audit-when") == [
            "2026-07-15 11:00 EDT",
            "2026-01-15 10:00 EST",
        ], who
        assert _texts(browser, "audit-actor") == ["bob (panel)", "bob (panel)"]
        changes = _texts(browser, "audit-change")
        assert changes == [
            "opening hours: 9-17 → Summer hours",
            "opening hours: 9-17 → Winter hours",
        ]
        assert all("opening_hours" not in s for s in _texts(browser, "audit-summary"))
        no_traceback(browser)
        await _shoot(browser, screenshots, f"audit-new-york-{who}", "audit-row")


async def test_the_pages_at_1440_and_390_pixels(
    server: str,
    browser: WebDriver,
    people: dict[str, Any],
    db: AsyncSession,
    screenshots: Path,
) -> None:
    await _activity(db, people)
    endpoint_id = await _webhook(db, people)
    campaign_id = await _campaign(db, people)
    await _changes_in_new_york(db, people)
    await _program_changed(db, people)
    today = datetime.now(LUXEMBOURG).date()
    a, program = people["a"], people["a_program"]
    pages = (
        ("stats-merchant", f"/stats/merchants/{a}", "chart-liability"),
        ("stats-program", f"/stats/programs/{program}", "chart-liability"),
        (
            "finance",
            f"/finance?start={today.replace(month=1, day=1)}&end={today}",
            "finance-cohorts",
        ),
        ("audit-log", "/audit", "audit-row"),
        ("webhooks", f"/merchants/{a}/webhooks", "webhooks-row"),
        ("webhook-endpoint", f"/webhooks/{endpoint_id}", "webhook-deliveries-row"),
        ("campaigns", f"/programs/{program}/campaigns", "campaigns-row"),
        ("campaign", f"/campaigns/{campaign_id}", "campaign-state"),
    )
    browser_sign_in(browser, server, ALICE)
    await _while_loading(browser, server, screenshots, pages)
    for name, path, ready in pages:
        browser.get(f"{server}{path}")
        element(browser, ready)
        await _shoot(browser, screenshots, name, ready)
    # The campaign's figures in words: its budget grouped, its minimum basket in euros.
    browser.get(f"{server}/campaigns/{campaign_id}")
    assert _text(browser, "campaign-budget") == "7,450 / 10,000 points"
    see(browser, "drink · baskets of 12.50 EUR or more")
    assert input_of(browser, "campaign-min_basket_cents").get_attribute("value") == "12.50"
    # The trail's change in words: no field names, no JSON.
    browser.get(f"{server}/audit")
    assert _texts(browser, "audit-change") == [
        "switched on: no → yes",
        "points per euro: 10 → 12",
        "tiers: none → id gold, name Gold, threshold points 1,000",
    ]
    # The delivery's type in words on the endpoint's page, its code in the tooltip.
    browser.get(f"{server}/webhooks/{endpoint_id}")
    element(browser, "webhook-deliveries-row")
    assert "A card's balance changed" in browser.find_element(By.TAG_NAME, "body").text

    browser.delete_all_cookies()
    browser_sign_in(browser, server, PLATFORM)
    browser.get(f"{server}/stats")
    element(browser, "chart-liability")
    await _shoot(browser, screenshots, "stats-platform", "chart-liability")
    browser.get(f"{server}/audit")
    element(browser, "audit-row")
    await _shoot(browser, screenshots, "audit-log-platform", "audit-row")
