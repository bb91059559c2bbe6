"""Webhooks in a real headless Chromium (``tests.admin_ui.browser``): a merchant admin adds an
endpoint after a refusal, sees its secret once, finds a parked delivery with its last error on
the endpoint's page and re-sends it. Screenshots of the form, the secret, the endpoint's page
and the list at 1440 and 390 pixels wide go to ``$LOYALTY_SCREENSHOTS``; at 390 the page must
not scroll sideways."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.models import WebhookDelivery, WebhookEndpoint
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
from tests.admin_ui.helpers import ALICE

WIDTHS = (1440, 390)
URL = "https://hooks.example.com/loyalty"


@pytest.fixture(scope="module", autouse=True)
def allow_private() -> Iterator[None]:
    """The served app allows any address, as webhook tests do: an example.com name is then
    taken as given, not looked up (the ``server`` fixture copies the environment)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LOYALTY_WEBHOOK_ALLOW_PRIVATE", "true")
        yield


async def _deliveries(db: AsyncSession, endpoint_id: int) -> int:
    """A delivered, a pending and a parked delivery, written as the dispatcher leaves them;
    the parked one's id."""
    now = datetime.now(UTC)
    rows = [
        WebhookDelivery(
            endpoint_id=endpoint_id,
            event_id=uuid.uuid4(),
            event_type="card.balance_changed",
            card_number="1000-0000-0001",
            body=b"{}",
            status="delivered",
            attempts=1,
            last_status=200,
            created_at=now - timedelta(minutes=9),
            delivered_at=now - timedelta(minutes=8),
        ),
        WebhookDelivery(
            endpoint_id=endpoint_id,
            event_id=uuid.uuid4(),
            event_type="tier.changed",
            card_number="1000-0000-0002",
            body=b"{}",
            status="pending",
            attempts=3,
            last_status=503,
            last_error="Service Unavailable",
            next_attempt_at=now + timedelta(minutes=4),
        ),
        WebhookDelivery(
            endpoint_id=endpoint_id,
            event_id=uuid.uuid4(),
            event_type="card.balance_changed",
            card_number="1000-0000-0003",
            body=b"{}",
            status="parked",
            attempts=17,
            last_status=502,
            last_error="Bad Gateway\r\n\x1b[31m<html>upstream timed out</html>",
        ),
    ]
    db.add_all(rows)
    await db.commit()
    return rows[-1].id


async def _shoot(driver: WebDriver, folder: Path, name: str) -> None:
    """Screenshots at each width, as tall as the page; at a phone's width the page itself
    must not be wider than the screen (tables scroll inside their box)."""
    # The notifications of the last clicks would hide what the page shows.
    wait(driver).until(ec.invisibility_of_element_located((By.CSS_SELECTOR, ".q-notification")))
    for width in WIDTHS:
        driver.set_window_size(width, 900)
        await asyncio.sleep(1.0)  # the layout follows the new width
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{name} at {width} px scrolls sideways by {overflow} px"
        height = driver.execute_script(
            "return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)"
        )
        # The window's frame takes a little of its height from the page.
        driver.set_window_size(width, min(max(int(height) + 150, 900), 4000))
        await asyncio.sleep(0.3)
        driver.execute_script("window.scrollTo(0, 0)")
        driver.save_screenshot(str(folder / f"{name}-{width}.png"))
    driver.set_window_size(1400, 1000)


async def test_a_merchant_adds_an_endpoint_and_re_sends_a_parked_delivery(
    server: str, browser: WebDriver, people: dict[str, Any], db: AsyncSession, screenshots: Path
) -> None:
    driver = browser
    browser_sign_in(driver, server, ALICE)
    click(driver, "nav-webhooks")
    see(driver, "No endpoint yet.")

    click(driver, "new-webhook")
    type_into(driver, "webhook-url", "hooks.example.com/loyalty")
    click(driver, "webhook-create")
    see(driver, "must be an https:// or http:// address")
    no_traceback(driver)
    await _shoot(driver, screenshots, "webhook-form-refused")

    replace(driver, "webhook-url", URL)
    click(driver, "webhook-type-card.balance_changed")
    click(driver, "webhook-type-tier.changed")
    type_into(driver, "webhook-description", "Shop backend (balances and tiers)")
    click(driver, "webhook-create")
    see(driver, "Endpoint created.")
    shown = element(driver, "webhook-secret").text
    endpoint = (await db.scalars(select(WebhookEndpoint))).one()
    assert shown == endpoint.secret and shown.startswith("whsec_")
    await _shoot(driver, screenshots, "webhook-secret")

    parked = await _deliveries(db, endpoint.id)
    click(driver, "webhook-opened")
    # The parked one is shown first, its error with the control characters escaped.
    see(driver, "Bad Gateway\\r\\n\\x1b[31m<html>upstream timed out</html>")
    assert shown not in driver.page_source  # masked from now on
    assert element(driver, "webhook-secret-hint").text.endswith(shown[-4:])
    no_traceback(driver)
    await _shoot(driver, screenshots, "webhook-endpoint")

    click(driver, f"webhook-resend-{parked}")
    see(driver, "Delivery queued again")
    gone(driver, f"webhook-resend-{parked}")
    db.expire_all()
    delivery = await db.get(WebhookDelivery, parked)
    assert delivery is not None and (delivery.status, delivery.attempts) == ("pending", 0)
    # Every status: the table is wider than a phone and scrolls inside its box.
    toggle = element(driver, "webhook-status-filter")
    toggle.find_element(By.XPATH, ".//button[.//*[normalize-space(text())='All']]").click()
    see(driver, "Service Unavailable")
    await _shoot(driver, screenshots, "webhook-deliveries-all")

    click(driver, "back-link")
    see(driver, "Shop backend (balances and tiers)")
    await _shoot(driver, screenshots, "webhook-list")
    no_traceback(driver)
