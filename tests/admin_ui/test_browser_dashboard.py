"""The dashboard and the frame's navigation in a real headless Chromium
(``tests.admin_ui.browser``): a merchant admin signs in and lands on the dashboard, reads
today's figures against yesterday's and an alert; at 390 pixels the header's links give way
to a menu button whose drawer holds the links, the user's name and Sign out.

Merchant a gets five weeks of history through the engine (``process_batch``): cards enrolled
along the way, purchases most days, coffees redeemed; a locked store and a campaign near its
budget make alerts. Screenshots of the dashboard at 1440 and 390 pixels wide (the whole page)
and of the drawer open at 390 go to ``$LOYALTY_SCREENSHOTS``, by default
``/tmp/shots/dashboard``, with ``layout.json``: what sticks out of the window at each width.
"""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from sqlalchemy.ext.asyncio import AsyncSession

from tests.admin_ui.browser import browser_sign_in, click, css, element, no_traceback, see, wait
from tests.admin_ui.helpers import ALICE, PLATFORM
from tests.admin_ui.test_browser_points_and_tiers import OVERFLOW_JS, _settle
from tests.admin_ui.test_dashboard import _alerting, _buy, _enrol, _redeem, _today_and_yesterday

SHOTS = Path(os.environ.get("LOYALTY_SCREENSHOTS") or "/tmp/shots/dashboard")
LUXEMBOURG = ZoneInfo("Europe/Luxembourg")  # the seeded merchants' time zone


async def _history(db: AsyncSession, people: dict[str, Any]) -> None:
    """Five weeks before yesterday: a card enrolled every fourth day, purchases by the
    cards so far on most days, a coffee now and then."""
    store = people["a_store_codes"][1]
    midnight = datetime.now(LUXEMBOURG).replace(hour=0, minute=0, second=0, microsecond=0)
    cards: list[str] = []
    for back in range(36, 1, -1):
        day = midnight - timedelta(days=back)
        if back % 4 == 0:
            email = f"regular{back}@example.com"
            await _enrol(db, store, email, day + timedelta(hours=9))
            cards.append(email)
        for i, email in enumerate(cards):
            if (back + i) % 3:
                await _buy(
                    db,
                    store,
                    email,
                    450 + 150 * ((back + i) % 6),
                    day + timedelta(hours=10 + i % 8),
                )
        if cards and back % 5 == 0:
            await _redeem(db, store, cards[0], day + timedelta(hours=19))


async def _overflow(driver: WebDriver, width: int) -> dict[str, Any]:
    phone = width < 600
    metrics = {
        "width": width,
        "height": 900,
        "deviceScaleFactor": 2 if phone else 1,
        "mobile": phone,
    }
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    driver.refresh()
    element(driver, "dashboard-chart", "canvas")
    await _settle(driver, 1.2)
    no_traceback(driver)
    found: dict[str, Any] = driver.execute_script(OVERFLOW_JS, width)
    return found


async def _shoot_whole(driver: WebDriver, width: int, name: str) -> None:
    """The whole page's height at ``width`` (as ``_overflow`` left it)."""
    height = driver.execute_script(
        "return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)"
    )
    phone = width < 600
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {
            "width": width,
            "height": min(max(int(height), 900), 8000),
            "deviceScaleFactor": 2 if phone else 1,
            "mobile": phone,
        },
    )
    await _settle(driver, 0.6)
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(str(SHOTS / f"{name}-{width}.png"))


async def _one_line_header(driver: WebDriver, who: str) -> None:
    """From 1,280 px the header is one line of all the links, who is signed in and Sign
    out; at 1,024 (a tablet across) the menu button and its drawer."""
    for width in (1024, 1280, 1400, 1440):
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False},
        )
        await _settle(driver, 0.3)
        header = driver.find_element(By.CSS_SELECTOR, "header")
        driver.save_screenshot(str(SHOTS / f"header-{who}-{width}.png"))
        assert header.size["height"] < 64, (width, header.size)
        assert not _visible(driver, f"{css('nav-drawer')} {css('nav-stores')}")
        if width < 1280:
            assert _visible(driver, css("nav-menu"))
            assert not _visible(driver, f"header {css('nav-dashboard')}")
            continue
        # Every link shown whole: the bar does not scroll.
        bar = driver.find_element(By.CSS_SELECTOR, css("nav-bar"))
        assert driver.execute_script(
            "return arguments[0].scrollWidth <= arguments[0].clientWidth", bar
        ), width
        assert _visible(driver, f"header {css('nav-dashboard')}")
        assert _visible(driver, f"header {css('whoami')}")
        assert _visible(driver, f"header {css('sign-out')}")
        assert not _visible(driver, css("nav-menu"))


def _visible(driver: WebDriver, selector: str) -> bool:
    return any(e.is_displayed() for e in driver.find_elements(By.CSS_SELECTOR, selector))


async def test_a_merchant_admin_lands_on_the_dashboard_and_opens_the_drawer_on_a_phone(
    server: str, browser: WebDriver, people: dict[str, Any], db: AsyncSession
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, before the browser
    await _history(db, people)
    await _today_and_yesterday(db, people)
    await _alerting(db, people, datetime.now(UTC))
    driver = browser
    browser_sign_in(driver, server, ALICE)

    # The start page is the dashboard, "Dashboard" the active link of the header.
    assert driver.current_url.rstrip("/") == server
    see(driver, "Dashboard")
    assert element(driver, "dash-visits-today").text == "3"
    assert element(driver, "dash-visits-today-change").text == "▲ 200.0% vs 1 yesterday"
    assert element(driver, "dash-members-today").text == "2"
    assert "locked until" in element(driver, "alert-pin-lock").text
    assert "85.0% of its budget" in element(driver, "alert-budget").text
    element(driver, "dashboard-chart", "canvas")
    element(driver, "dashboard-top-reward")
    element(driver, "dashboard-activity")
    no_traceback(driver)

    # Wide: the links in one header line, no menu button, the drawer closed.
    await _one_line_header(driver, "merchant")

    layout = {"dashboard-1440": await _overflow(driver, 1440)}
    await _shoot_whole(driver, 1440, "dashboard")
    layout["dashboard-390"] = await _overflow(driver, 390)
    await _shoot_whole(driver, 390, "dashboard")
    (SHOTS / "layout.json").write_text(json.dumps(layout, indent=2))
    for name, found in layout.items():
        assert found["doc"] <= found["width"], (name, found)
        assert found["outside"] == [], (name, found)

    # A phone: one header line with the menu button; the drawer holds the links and Sign out.
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True},
    )
    driver.refresh()
    element(driver, "dashboard-chart", "canvas")
    header = driver.find_element(By.CSS_SELECTOR, "header")
    assert header.size["height"] < 64, header.size
    assert not _visible(driver, f"header {css('nav-stores')}")
    assert not _visible(driver, f"header {css('whoami')}")
    await _settle(driver, 1.0)
    driver.save_screenshot(str(SHOTS / "dashboard-top-390.png"))
    click(driver, "nav-menu")
    drawer = f"{css('nav-drawer')} "
    # Waited for, not asserted at once: the drawer slides in and its lower part may be
    # laid out a frame after its first link.
    wait(driver).until(lambda d: _visible(d, drawer + css("nav-stores")))
    wait(driver).until(lambda d: _visible(d, drawer + css("sign-out")))
    assert (
        "alice · merchant admin"
        in driver.find_element(By.CSS_SELECTOR, drawer + css("whoami")).text
    )
    assert "bg-slate-600" in (
        driver.find_element(By.CSS_SELECTOR, drawer + css("nav-dashboard")).get_attribute("class")
        or ""
    )
    await asyncio.sleep(0.6)  # the drawer's slide
    driver.save_screenshot(str(SHOTS / "dashboard-drawer-390.png"))
    driver.find_element(By.CSS_SELECTOR, drawer + css("nav-stores")).click()
    see(driver, people["a_store_codes"][0])
    assert driver.current_url.endswith("/stores")
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1440, "height": 900, "deviceScaleFactor": 1, "mobile": False},
    )


async def test_a_platform_admins_header_at_wide_widths(
    server: str, browser: WebDriver, people: dict[str, Any]
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, before the browser
    browser_sign_in(browser, server, PLATFORM)
    element(browser, "dashboard-merchant")
    await _one_line_header(browser, "platform")
    assert _visible(browser, f"header {css('nav-pipeline')}")
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1440, "height": 900, "deviceScaleFactor": 1, "mobile": False},
    )
