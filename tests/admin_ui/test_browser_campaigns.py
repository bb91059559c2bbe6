"""Campaigns in a real headless Chromium (``tests.admin_ui.browser``): a merchant admin creates
one through the form after a refusal, activates and pauses it, and tries it on past traffic.
Screenshots of the list, the form and the trial at 1440 and 390 pixels wide go to
``$LOYALTY_SCREENSHOTS``."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from admin_ui.queries import campaigns
from admin_ui.queries.admins import Principal
from core.enums import CampaignStatus
from domain.models import Campaign, UserRole
from tests.admin_ui.browser import (
    browser_sign_in,
    click,
    element,
    gone,
    no_traceback,
    replace,
    see,
    type_into,
    wait,
)
from tests.admin_ui.helpers import ALICE, enrol, purchase

WIDTHS = (1440, 390)
PASTRY = {"sku": "croissant", "category": "pastry", "quantity": 2, "amount_cents": 520}
COFFEE = {"sku": "flat-white", "category": "drink", "quantity": 1, "amount_cents": 380}


async def _history(db: AsyncSession, people: dict[str, Any]) -> None:
    """Three regulars buying coffee and pastries most days of the last four weeks."""
    store = people["a_store_codes"][0]
    cards = [await enrol(db, store, f"regular{i}@example.com") for i in range(3)]
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    # A morning, a midday and an afternoon regular. Each skips every third day, so two of any
    # three weeks' same weekday have the afternoon one (14:30 UTC: 15:30 or 16:30 in
    # Luxembourg): the trial below matches some whatever today's weekday. (The hours once
    # moved with the day, and no purchase of a Tuesday fell in its window when the test ran
    # on a Tuesday.)
    for day in range(1, 27):
        for i, card in enumerate(cards):
            if (day + i) % 3:
                at = midnight - timedelta(days=day) + timedelta(hours=(8, 11.5, 14.5)[i])
                await purchase(db, store, card, 900 + 100 * i, at, [PASTRY, COFFEE])


async def _running_campaign(db: AsyncSession, people: dict[str, Any]) -> None:
    """An active campaign three quarters through its budget, for the list's bar."""
    me = Principal(0, "seed", UserRole.PLATFORM_ADMIN, None)
    scope = await campaigns.program_scope(db, me, people["a_program"])
    assert scope is not None
    campaign_id = await campaigns.create_campaign(
        db,
        me,
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
        },
    )
    await db.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id)
        .values(status=CampaignStatus.ACTIVE, points_awarded=7450)
    )
    await db.commit()


async def _shoot(
    driver: WebDriver, folder: Path, name: str, *, whole: bool = True, show: str = ""
) -> None:
    """Screenshots at each width; ``whole``: as tall as the page, else a screen's height
    (scrolled to the element named ``show``)."""
    # The notifications of the last clicks would hide what the page shows.
    wait(driver).until(ec.invisibility_of_element_located((By.CSS_SELECTOR, ".q-notification")))
    for width in WIDTHS:
        driver.set_window_size(width, 900 if whole else 844)
        await asyncio.sleep(1.2)  # the layout follows the new width, the charts redraw
        if whole:
            height = driver.execute_script(
                "return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)"
            )
            # The window's frame takes a little of its height from the page.
            driver.set_window_size(width, min(max(int(height) + 150, 900), 4000))
            await asyncio.sleep(0.3)
            driver.execute_script("window.scrollTo(0, 0)")
        if show:
            driver.execute_script(
                "arguments[0].scrollIntoView({block: 'end'})", element(driver, show)
            )
            await asyncio.sleep(0.3)
        driver.save_screenshot(str(folder / f"{name}-{width}.png"))
    driver.set_window_size(1400, 1000)


async def test_a_merchant_creates_pauses_and_tries_a_campaign(
    server: str, browser: WebDriver, people: dict[str, Any], db: AsyncSession, screenshots: Path
) -> None:
    await _history(db, people)
    await _running_campaign(db, people)
    driver = browser
    browser_sign_in(driver, server, ALICE)
    click(driver, "nav-campaigns")
    see(driver, "7,450 / 10,000 points")

    click(driver, "new-campaign")
    type_into(driver, "campaign-id", "double-tuesday")
    type_into(driver, "campaign-name", "Double pastries on Tuesday afternoons")
    click(driver, "campaign-create")
    see(driver, "the campaign changes nothing")  # a multiplier of 1 and no bonus
    no_traceback(driver)
    await _shoot(driver, screenshots, "campaign-form-refused")

    replace(driver, "campaign-multiplier", "2")
    click(driver, "campaign-day-tue")
    type_into(driver, "campaign-hours-from", "14:00")
    type_into(driver, "campaign-hours-until", "17:00")
    type_into(driver, "campaign-categories", "pastry")
    type_into(driver, "campaign-budget_points", "400")
    click(driver, "campaign-create")
    see(driver, "Campaign created as a draft.")
    assert element(driver, "campaign-status").text == "Draft"
    click(driver, "campaign-activate")
    see(driver, "Campaign activated.")
    click(driver, "campaign-pause")
    see(driver, "Campaign paused.")
    see(driver, "Paused: it earns nothing until it is resumed.")
    assert element(driver, "campaign-status").text == "Paused"
    await _shoot(driver, screenshots, "campaign-page")

    click(driver, "campaign-try")
    element(driver, "trial-dialog")
    element(driver, "trial-chart", "canvas")  # echarts drew the chart
    no_traceback(driver)
    matched = element(driver, "trial-matched-value").text
    assert int(matched) > 0
    await _shoot(driver, screenshots, "campaign-trial", whole=False)
    await _shoot(driver, screenshots, "campaign-trial-chart", whole=False, show="trial-chart")
    click(driver, "trial-close")
    gone(driver, "trial-dialog")

    click(driver, "campaigns-link")
    see(driver, "Double pastries on Tuesday afternoons")
    await _shoot(driver, screenshots, "campaign-list")
    no_traceback(driver)

    campaign = (await db.scalars(select(Campaign).where(Campaign.code == "double-tuesday"))).one()
    assert campaign.status is CampaignStatus.PAUSED
    assert (campaign.days, campaign.hours, campaign.categories) == (
        ["tue"],
        "14:00-17:00",
        ["pastry"],
    )
    assert (campaign.budget_points, campaign.points_awarded) == (400, 0)  # the trial wrote nothing
