"""The program form as a merchant admin uses it, in a real headless Chromium
(``tests.admin_ui.browser``): its sections, money typed in euros and kept in cents, the colour
picker, the live preview of the card and of its wallet pass, and the form at a phone's width.

Screenshots of the form and its preview at 1440 and 390 pixels wide go to
``$LOYALTY_SCREENSHOTS``, by default ``/tmp/shots/programs``, with ``layout.json``: what sticks
out of the window at each width.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from sqlalchemy.ext.asyncio import AsyncSession

from domain.models import LoyaltyProgram
from tests.admin_ui.browser import (
    browser_sign_in,
    click,
    css,
    element,
    input_of,
    no_traceback,
    replace,
    see,
    wait,
)
from tests.admin_ui.helpers import ALICE

SHOTS = Path(os.environ.get("LOYALTY_SCREENSHOTS") or "/tmp/shots/programs")
WIDTHS = (1440, 390)

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
              right: Math.round(r.right), text: (e.innerText || '').slice(0, 60)});
  }
}
return {width: width, doc: document.documentElement.scrollWidth, outside: out.slice(0, 25)};
"""


@pytest.fixture
def shots() -> Path:
    """Where this module's screenshots go (made when missing)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS


def _background(driver: WebDriver, testid: str) -> str:
    """The computed background colour of the element named ``testid`` (``rgb(r, g, b)``)."""
    colour: str = driver.execute_script(
        "return getComputedStyle(arguments[0]).backgroundColor", element(driver, testid)
    )
    return colour


def _wait_for(driver: WebDriver, check: Any, what: str) -> None:
    try:
        wait(driver).until(lambda d: check())
    except Exception as exc:
        raise AssertionError(f"{what} never happened") from exc


async def _shoot(driver: WebDriver, folder: Path, name: str, layout: dict[str, Any]) -> None:
    """The whole page at each width, loaded afresh at that width (a phone's, emulated, at 390),
    and what sticks out of it."""
    for width in WIDTHS:
        phone = width < 600
        metrics = {"width": width, "deviceScaleFactor": 2 if phone else 1, "mobile": phone}
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {**metrics, "height": 1000})
        driver.refresh()
        element(driver, "program-preview-pass-card")
        await asyncio.sleep(1.0)
        no_traceback(driver)
        layout[f"{name}-{width}"] = driver.execute_script(OVERFLOW_JS, width)
        height = driver.execute_script("return document.documentElement.scrollHeight")
        metrics["height"] = min(max(int(height), 1000), 9000)
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
        await asyncio.sleep(0.4)
        driver.execute_script("window.scrollTo(0, 0)")
        driver.save_screenshot(str(folder / f"{name}-{width}.png"))
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1440, "height": 1000, "deviceScaleFactor": 1, "mobile": False},
    )


async def test_a_program_is_edited_through_its_sections_with_a_live_preview(
    server: str, browser: WebDriver, people: dict[str, Any], db: AsyncSession, shots: Path
) -> None:
    driver = browser
    browser_sign_in(driver, server, ALICE)
    driver.get(f"{server}/programs/{people['a_program']}")
    for key in ("program", "earning", "rewards", "antifraud", "expiry", "appearance"):
        element(driver, f"program-section-{key}")
    see(driver, "Anti-fraud")
    # The preview draws the saved program: the merchant's name as the pass's logo text.
    assert element(driver, "program-preview-logo-text").text == people["a_name"]
    assert _background(driver, "program-preview-pass-card") == "rgb(31, 41, 55)"  # #1F2937

    # The preview follows the typing, before anything is saved.
    replace(driver, "program-background_color", "#7C2D12")
    replace(driver, "program-card_name", "Café Crème Club")
    _wait_for(
        driver,
        lambda: _background(driver, "program-preview-pass-card") == "rgb(124, 45, 18)",
        "the pass turning #7C2D12",
    )
    phone = element(driver, "program-preview-phone")
    _wait_for(driver, lambda: "Café Crème Club" in phone.text, "the card page's new name")
    brand = phone.find_element(By.CSS_SELECTOR, css("brand-card"))
    assert "rgb(124, 45, 18)" in driver.execute_script(
        "return getComputedStyle(arguments[0]).backgroundColor", brand
    )
    db.expire_all()
    program = await db.get(LoyaltyProgram, people["a_program"])
    assert program is not None and program.background_color == "#1F2937"  # not saved yet

    # A bad colour and a bad amount: messages under them, nothing saved.
    replace(driver, "program-foreground_color", "white")
    replace(driver, "program-stamps_reward_value_cents", "2.555")
    click(driver, "program-save")
    see(driver, "Please correct:")
    see(driver, "Text colour: must be a colour like #1F2937")
    see(driver, "Stamp card reward value: must have at most 2 decimals")
    field = input_of(driver, "program-stamps_reward_value_cents")
    bottom = field.find_element(By.XPATH, "ancestor::label[contains(@class,'q-field')]")
    assert "must have at most 2 decimals" in bottom.text
    no_traceback(driver)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", field)
    driver.save_screenshot(str(shots / "program-form-refused-1440.png"))
    db.expire_all()
    program = await db.get(LoyaltyProgram, people["a_program"])
    assert program is not None
    assert (program.foreground_color, program.stamps_reward_value_cents) == ("#FFFFFF", 0)
    assert program.card_name is None

    # Money in euros: "2.50" is kept as 250 cents; saved, the form shows it as typed.
    replace(driver, "program-foreground_color", "#FFF7ED")
    replace(driver, "program-stamps_reward_value_cents", "2.50")
    replace(driver, "program-minimum_purchase_cents", "5")
    click(driver, "program-save")
    see(driver, "Program saved.")
    db.expire_all()
    program = await db.get(LoyaltyProgram, people["a_program"])
    assert program is not None
    assert (
        program.stamps_reward_value_cents,
        program.minimum_purchase_cents,
        program.background_color,
        program.foreground_color,
        program.card_name,
    ) == (250, 500, "#7C2D12", "#FFF7ED", "Café Crème Club")
    driver.refresh()
    value = input_of(driver, "program-stamps_reward_value_cents").get_attribute("value")
    assert value == "2.50"
    assert input_of(driver, "program-minimum_purchase_cents").get_attribute("value") == "5.00"
    no_traceback(driver)

    layout: dict[str, Any] = {}
    await _shoot(driver, shots, "program-form", layout)
    (shots / "layout.json").write_text(json.dumps(layout, indent=2, ensure_ascii=False))
    for width in WIDTHS:
        shown = layout[f"program-form-{width}"]
        assert shown["outside"] == [], shown
        assert shown["doc"] <= width, shown

    # On a phone: a refusal is named in the bar that keeps the save button in sight.
    small = {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", small)
    driver.refresh()
    replace(driver, "program-point_value_cents", "0.0000001")
    click(driver, "program-save")
    see(driver, "Value of a point: must have at most 6 decimals")
    field = input_of(driver, "program-point_value_cents")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", field)
    await asyncio.sleep(0.4)
    assert element(driver, "program-errors").is_displayed()
    driver.save_screenshot(str(shots / "program-form-refused-390.png"))
    assert driver.execute_script("return document.documentElement.scrollWidth") <= 390


async def test_the_colour_picker_sets_the_colour(
    server: str, browser: WebDriver, people: dict[str, Any]
) -> None:
    driver = browser
    browser_sign_in(driver, server, ALICE)
    driver.get(f"{server}/programs/{people['a_program']}")
    field = input_of(driver, "program-label_color")
    box = field.find_element(By.XPATH, "ancestor::label[contains(@class,'q-field')]")
    button = box.find_element(By.CSS_SELECTOR, "button")
    # In the middle of the window: the form's save bar sticks to its bottom edge.
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    button.click()
    # A click in the picker's colour square picks the colour under it, written as #RRGGBB.
    element(driver, "program-label_color-picker", ".q-color-picker__spectrum").click()
    _wait_for(
        driver,
        lambda: input_of(driver, "program-label_color").get_attribute("value") != "#D1D5DB",
        "the picked colour in the field",
    )
    picked = input_of(driver, "program-label_color").get_attribute("value") or ""
    assert re.fullmatch(r"#[0-9A-F]{6}", picked), picked
    # The pass's labels take it at once.
    label = element(driver, "program-preview-pass-card").find_element(By.CSS_SELECTOR, ".uppercase")
    red, green, blue = (int(picked[i : i + 2], 16) for i in (1, 3, 5))
    _wait_for(
        driver,
        lambda: (
            label.value_of_css_property("color")
            in (
                f"rgb({red}, {green}, {blue})",
                f"rgba({red}, {green}, {blue}, 1)",
            )
        ),
        "the pass's labels in the picked colour",
    )
    no_traceback(driver)
