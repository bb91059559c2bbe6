"""The lists as a person uses them in Chromium (issue 18 items 4, 5 and 7): a heading clicked
sorts, typing narrows the list without Enter, a merchant's deletion counts what it hides before
asking and its restore says what came back, a card hidden with its merchant says so; and the
merchants, stores, customers and cards lists and a card's page at 1440 and 390 px wide, the
page never scrolling sideways. Screenshots go to ``$LOYALTY_SCREENSHOTS``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.models import LoyaltyCard, Merchant, Store
from tests.admin_ui.browser import (
    browser_sign_in,
    click,
    css,
    element,
    no_traceback,
    replace,
    see,
    type_into,
    wait,
)
from tests.admin_ui.helpers import enrol, purchase

WIDE = (1440, 1000)
PHONE = (390, 844)


async def _names(db: AsyncSession, people: dict[str, Any]) -> None:
    """Names a person would give, for the screenshots."""
    await db.execute(update(Merchant).where(Merchant.id == people["a"]).values(name="Café Lux"))
    await db.execute(update(Merchant).where(Merchant.id == people["b"]).values(name="Bäckerei Bob"))
    for store_id, name in zip(people["a_stores"], ("Grand-Rue", "Gare"), strict=True):
        await db.execute(update(Store).where(Store.id == store_id).values(name=name))
    await db.commit()


def _rows(driver: WebDriver, name: str) -> list[str]:
    """The first cell's text of each row of the list ``name``."""
    return [
        row.find_element(By.CSS_SELECTOR, "td").text.split("\n")[0]
        for row in driver.find_elements(By.CSS_SELECTOR, css(f"{name}-row"))
    ]


def _no_sideways_scroll(driver: WebDriver) -> None:
    """Nothing of the page's content reaches past the window's right edge."""
    overflow = driver.execute_script(
        "const w = document.documentElement.clientWidth;"
        "return [...document.querySelectorAll('.nicegui-content *')]"
        "  .filter(e => e.getBoundingClientRect().right > w + 1 && e.offsetParent !== null"
        "          && !e.closest('.listing-box'))"
        "  .map(e => e.tagName + '.' + e.className).slice(0, 5);"
    )
    assert overflow == [], overflow
    width = driver.execute_script("return document.querySelector('.nicegui-content').scrollWidth")
    assert width <= PHONE[0], width


def _shoot(driver: WebDriver, screenshots: Path, name: str, testid: str) -> None:
    """The page at 1440 and at 390 px wide (checked for sideways scrolling), as the window
    shows it and whole (``-full``), then back."""
    for size, suffix in ((WIDE, "1440"), (PHONE, "390")):
        driver.set_window_size(*size)
        element(driver, testid)
        if size == PHONE:
            _no_sideways_scroll(driver)
        driver.save_screenshot(str(screenshots / f"{name}-{suffix}.png"))
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(size[0], min(int(height) + 100, 8000))
        element(driver, testid)
        driver.save_screenshot(str(screenshots / f"{name}-{suffix}-full.png"))
    driver.set_window_size(*WIDE)


async def test_sort_by_a_heading_and_search_as_you_type(
    server: str, browser: WebDriver, people: dict[str, Any], db: AsyncSession, screenshots: Path
) -> None:
    await _names(db, people)
    for i, name in enumerate(["Kirchberg", "Belair", "Limpertsberg", "Bonnevoie", "Merl"]):
        db.add(Store(merchant_id=people["a"], code=f"lux-{i:02d}", name=name))
    await db.commit()
    driver = browser
    driver.set_window_size(*WIDE)
    browser_sign_in(driver, server)
    driver.get(f"{server}/stores")
    see(driver, "8 in all")
    click(driver, "stores-sort-name")
    wait(driver).until(lambda d: _rows(d, "stores")[:2] == ["Belair", "Bonnevoie"])
    click(driver, "stores-sort-name")  # again: the other way round
    wait(driver).until(lambda d: _rows(d, "stores")[:2] == ["Shop 0", "Merl"])
    heading = element(driver, "stores-sort-name")
    assert heading.get_attribute("aria-sort") == "descending"

    # Typing narrows the list, no Enter pressed.
    type_into(driver, "stores-search", "berg")
    see(driver, "2 in all")
    assert sorted(_rows(driver, "stores")) == ["Kirchberg", "Limpertsberg"]
    type_into(driver, "stores-search", "zzz")
    see(driver, "No stores match “bergzzz”.")
    # Enter searches at once what the box shows.
    replace(driver, "stores-search", "Merl\n")
    see(driver, "1 in all")
    assert _rows(driver, "stores") == ["Merl"]
    no_traceback(driver)


async def test_delete_a_merchant_reading_the_counts_then_restore_it(
    server: str, browser: WebDriver, people: dict[str, Any], db: AsyncSession, screenshots: Path
) -> None:
    await _names(db, people)
    for i in range(3):
        await enrol(db, people["b_store_codes"][0], f"bob{i}@example.com")
    code = people["b_code"]
    driver = browser
    driver.set_window_size(*WIDE)
    browser_sign_in(driver, server)
    driver.get(f"{server}/merchants")
    # Delete is not beside the row's link: it waits in the row's menu.
    assert not driver.find_elements(By.CSS_SELECTOR, css(f"merchant-delete-{code}"))
    click(driver, f"merchant-menu-{code}")
    click(driver, f"merchant-delete-{code}")
    detail = element(driver, "confirm-detail").text
    assert detail.startswith(
        "Deleting Bäckerei Bob also hides 1 store, 1 program, 3 customers and 3 cards."
    ), detail
    driver.save_screenshot(str(screenshots / "merchant-delete-confirm-1440.png"))
    click(driver, "confirm-yes")
    see(driver, f"Merchant {code} deleted. Hidden with it: 1 store, 1 program, 3 customers")

    click(driver, "merchants-only-deleted")
    click(driver, f"merchant-restore-{code}")
    see(driver, f"Merchant {code} restored. Back with it: 1 store, 1 program, 3 customers")
    driver.save_screenshot(str(screenshots / "merchant-restored-1440.png"))
    no_traceback(driver)
    db.expire_all()
    assert await db.scalar(select(Merchant.deleted_at).where(Merchant.id == people["b"])) is None


async def test_the_lists_and_a_card_page_at_1440_and_390(
    server: str, browser: WebDriver, people: dict[str, Any], db: AsyncSession, screenshots: Path
) -> None:
    await _names(db, people)
    store = people["a_store_codes"][0]
    first = await enrol(db, store, "lea.muller@example.com", first_name="Léa", last_name="Muller")
    await enrol(db, store, "jean@example.com", first_name="Jean", last_name="Schmit")
    await enrol(db, people["a_store_codes"][1], "=cmd@example.com")
    await enrol(db, people["b_store_codes"][0], "bob@example.com", first_name="Bob")
    await purchase(db, store, first, 123_450, datetime.now(UTC) - timedelta(minutes=5))
    card_id = await db.scalar(select(LoyaltyCard.id).where(LoyaltyCard.card_number == first))
    driver = browser
    driver.set_window_size(*WIDE)
    browser_sign_in(driver, server)
    for page, name in (
        ("merchants", "merchants"),
        ("stores", "stores"),
        ("customers", "customers"),
        ("cards", "cards"),
    ):
        driver.get(f"{server}/{page}")
        element(driver, f"{name}-row")
        _shoot(driver, screenshots, f"list-{name}", f"{name}-list")
        no_traceback(driver)
    customer_id = await db.scalar(select(LoyaltyCard.customer_id).where(LoyaltyCard.id == card_id))
    for path, name, testid in (
        (f"/merchants/{people['a']}", "merchant-page", "merchant-save"),
        (f"/stores/{people['a_stores'][0]}", "store-page", "store-delete"),
        (f"/customers/{customer_id}", "customer-page", "customer-delete"),
    ):
        driver.get(f"{server}{path}")
        _shoot(driver, screenshots, name, testid)
        no_traceback(driver)
    # The store picker of merchant A's customers: A's stores only, searched by typing.
    driver.get(f"{server}/customers?merchant={people['a_code']}")
    click(driver, "new-customer")
    element(driver, "enrol-store")
    driver.save_screenshot(str(screenshots / "enrol-dialog-1440.png"))
    replace(driver, "enrol-store", "Gar")
    see(driver, f"Gare ({people['a_store_codes'][1]})")
    driver.save_screenshot(str(screenshots / "enrol-store-search-1440.png"))
    assert people["b_store_codes"][0] not in driver.find_element(By.TAG_NAME, "body").text

    driver.get(f"{server}/cards/{card_id}")
    element(driver, "ledger-list")
    see(driver, "12,345 points")  # 1,234.50 EUR at 10 points a euro, grouped
    body = driver.find_element(By.TAG_NAME, "body").text
    assert "Version" not in body and "admin:" not in body and " UTC" not in body
    # The danger zone comes after the ledger.
    ledger_y = element(driver, "ledger-list").location["y"]
    assert element(driver, "danger-zone").location["y"] > ledger_y
    _shoot(driver, screenshots, "card-page", "card-status")
    no_traceback(driver)


async def test_a_card_hidden_with_its_merchant_says_so_on_its_page(
    server: str, browser: WebDriver, people: dict[str, Any], db: AsyncSession, screenshots: Path
) -> None:
    await _names(db, people)
    number = await enrol(db, people["b_store_codes"][0], "gone@example.com")
    card_id = await db.scalar(select(LoyaltyCard.id).where(LoyaltyCard.card_number == number))
    driver = browser
    driver.set_window_size(*WIDE)
    browser_sign_in(driver, server)
    driver.get(f"{server}/merchants/{people['b']}")
    click(driver, "merchant-delete")
    see(driver, "Deleting Bäckerei Bob also hides 1 store, 1 program, 1 customer and 1 card.")
    click(driver, "confirm-yes")
    element(driver, "merchants-list")
    driver.get(f"{server}/cards/{card_id}")
    assert element(driver, "card-status").text == "hidden with its merchant"
    see(driver, "This card is hidden: its merchant was deleted on")
    see(driver, "by root (panel)")
    driver.save_screenshot(str(screenshots / "card-hidden-with-merchant-1440.png"))
    no_traceback(driver)
