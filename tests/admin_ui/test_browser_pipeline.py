"""The pipeline page's dead letters in a real headless Chromium (``tests.admin_ui.browser``): a
platform admin sees the waiting letters grouped by kind of error with their counts, opens one to
read its payload pretty-printed and its controls escaped, re-drives a whole group (its letters
reach the source topic in Kafka) and sees the group gone; a merchant admin cannot reach the page.

Screenshots at 1440 and 390 pixels wide go to ``$LOYALTY_SCREENSHOTS``, by default
``/tmp/shots/pipeline``; at both widths nothing makes the page scroll sideways and no dead
letter is wider than its box.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.settings import Settings
from domain.models import DeadLetter
from streams.topics import Topic
from tests.admin_ui.browser import (
    browser_sign_in,
    click,
    css,
    element,
    no_traceback,
    see,
    wait,
)
from tests.admin_ui.helpers import ALICE, PLATFORM
from tests.admin_ui.test_pipeline_page import TopicReader

SHOTS = Path(os.environ.get("LOYALTY_SCREENSHOTS") or "/tmp/shots/pipeline")
AMOUNT = "amount_cents: must be an integer >= 0"
# How wide the page is, and every dead letter that is wider than its own box.
LAYOUT_JS = """
const overflowing = [];
for (const e of document.querySelectorAll('[data-testid=dlq-row], [data-testid=dlq-group]')) {
  if (e.scrollWidth > e.clientWidth + 1) overflowing.push(e.innerText.slice(0, 80));
  const r = e.getBoundingClientRect();
  if (r.right > window.innerWidth) overflowing.push('off screen: ' + e.innerText.slice(0, 80));
}
return {doc: document.documentElement.scrollWidth, width: window.innerWidth,
        overflowing: overflowing};
"""


@pytest.fixture
def shots() -> Path:
    """Where this module's screenshots go (made when missing)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS


def _letters(marker: str) -> list[DeadLetter]:
    """Three purchases whose amount is negative, and two enrolments that are not JSON, one
    with a terminal escape and a direction override in it; one purchase is long."""
    purchases = [
        DeadLetter(
            event_id=uuid.uuid4(),
            source_topic=Topic.PURCHASES.value,
            partition=i,
            offset=1200 + i,
            key=f"4000-1234-567{i}",
            payload=json.dumps(
                {
                    "event_id": str(uuid.uuid4()),
                    "type": "purchase.completed",
                    "store_code": "s-1",
                    "amount_cents": -100 * (i + 1),
                    "note": ("an-unbroken-note-" * 40 if i == 2 else "short"),
                    "marker": marker,
                }
            ),
            error=f"{AMOUNT} (got {-100 * (i + 1)})",
        )
        for i in range(3)
    ]
    enrolments = [
        DeadLetter(
            event_id=uuid.uuid4(),
            source_topic=Topic.ENROLLMENTS.value,
            partition=0,
            offset=77 + i,
            key=None,
            payload='{"type": "enrollment.requested", "customer": \x1b[31m\u202eoops',
            error=f"value is not valid JSON (Expecting value at line 1, column {45 + i})",
        )
        for i in range(2)
    ]
    return purchases + enrolments


def _at_width(driver: WebDriver, width: int) -> None:
    """The page afresh at ``width`` (a phone's, emulated, below 600 pixels)."""
    phone = width < 600
    metrics = {"width": width, "deviceScaleFactor": 2 if phone else 1, "mobile": phone}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {**metrics, "height": 900})
    driver.refresh()
    element(driver, "dlq-group")
    element(driver, "dlq-row")
    no_traceback(driver)


def _shoot(driver: WebDriver, path: Path) -> dict[str, Any]:
    """The whole page into ``path`` at the width set; how wide it is there."""
    layout: dict[str, Any] = driver.execute_script(LAYOUT_JS)
    height = driver.execute_script(
        "return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)"
    )
    width = layout["width"]
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
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(str(path))
    return layout


def _texts(driver: WebDriver, testid: str) -> list[str]:
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, css(testid)) if e.is_displayed()]


def _groups_become(driver: WebDriver, counts: list[str]) -> None:
    """Wait until the groups' counts read ``counts``, in order."""
    try:
        wait(driver).until(lambda d: _texts(d, "dlq-group-count") == counts)
    except Exception:
        raise AssertionError(
            f"the groups say {_texts(driver, 'dlq-group-count')}, not {counts}"
        ) from None


async def test_a_platform_admin_re_drives_a_group_of_dead_letters(
    server: str,
    browser: WebDriver,
    people: dict[str, Any],
    db: AsyncSession,
    stack: Settings,
    shots: Path,
) -> None:
    marker = uuid.uuid4().hex
    letters = _letters(marker)
    db.add_all(letters)
    await db.commit()
    purchases = [x for x in letters if x.source_topic == Topic.PURCHASES.value]
    newest = max(x.id for x in purchases)
    purchase_ids = sorted(x.id for x in purchases)
    purchase_payloads = sorted(x.payload.encode() for x in purchases)
    long_one = purchases[2]
    driver = browser
    browser_sign_in(driver, server, PLATFORM)
    driver.get(f"{server}/pipeline")

    # Two kinds of error, each with its count; the values that differ are not part of it.
    _groups_become(driver, ["3 dead letters", "2 dead letters"])
    assert _texts(driver, "dlq-group-kind") == [AMOUNT, "value is not valid JSON"]
    see(driver, "5 waiting · 0 re-driven")
    # The error in the list: the terminal escape and the override are shown, not obeyed.
    previews = _texts(driver, "dlq-preview")
    assert any("\\x1b[31m\\u202eoops" in p for p in previews), previews
    assert not any("\x1b" in p or "\u202e" in p for p in previews)

    layouts: dict[str, Any] = {}
    for width in (1440, 390):
        _at_width(driver, width)
        _groups_become(driver, ["3 dead letters", "2 dead letters"])
        layouts[f"list-{width}"] = _shoot(driver, shots / f"pipeline-dead-letters-{width}.png")
        _at_width(driver, width)
        click(driver, f"dlq-show-{long_one.id}")
        payload = element(driver, "dlq-payload")
        pretty = json.dumps(json.loads(long_one.payload), indent=2)
        assert payload.text == pretty
        layouts[f"open-{width}"] = _shoot(driver, shots / f"pipeline-dead-letter-open-{width}.png")
    for name, layout in layouts.items():
        assert layout["doc"] <= layout["width"], (name, layout)
        assert layout["overflowing"] == [], (name, layout)
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1440, "height": 1000, "deviceScaleFactor": 1, "mobile": False},
    )
    driver.refresh()

    async with TopicReader(stack, Topic.PURCHASES.value) as reader:
        click(driver, f"dlq-group-redrive-{newest}")
        see(driver, "Re-drive 3 dead letters to loyalty.purchases.v1?")
        click(driver, "confirm-yes")
        see(driver, "3 dead letters re-driven to loyalty.purchases.v1.")
        records = await reader.read(marker, expected=3)
    assert sorted(r.value for r in records) == purchase_payloads
    # The group is gone; the other one waits still.
    _groups_become(driver, ["2 dead letters"])
    assert _texts(driver, "dlq-group-kind") == ["value is not valid JSON"]
    see(driver, "2 waiting · 3 re-driven")
    db.expire_all()
    redriven = await db.scalars(select(DeadLetter.id).where(DeadLetter.redriven_at.is_not(None)))
    assert sorted(redriven) == purchase_ids
    _shoot(driver, shots / "pipeline-after-redrive-1440.png")
    no_traceback(driver)


async def test_a_merchant_admin_cannot_reach_the_pipeline(
    server: str, browser: WebDriver, people: dict[str, Any], db: AsyncSession
) -> None:
    db.add_all(_letters(uuid.uuid4().hex))
    await db.commit()
    driver = browser
    browser_sign_in(driver, server, ALICE)
    assert not driver.find_elements(By.CSS_SELECTOR, css("nav-pipeline"))
    driver.get(f"{server}/pipeline")
    see(driver, "This page does not exist, or you are not allowed to see it.")
    assert not driver.find_elements(By.CSS_SELECTOR, css("dlq-group"))
    assert not driver.find_elements(By.CSS_SELECTOR, css("dlq-row"))
    assert AMOUNT not in driver.find_element(By.TAG_NAME, "body").text
    no_traceback(driver)
