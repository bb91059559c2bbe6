"""What a person clicks, in a real headless Chromium against the real app (``python -m loyalty
admin`` in a subprocess, on a free port, against this session's test database; the fixtures
and the hands are ``tests.admin_ui.browser``'s).

Chromium and its driver come from Debian (``apt-get install -y chromium chromium-driver``,
done by ``make setup``). Without them these tests fail with that sentence: no skip.
Screenshots of key pages go to ``$LOYALTY_SCREENSHOTS`` (default: pytest's tmp folder).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.models import LoyaltyCard, LoyaltyProgram, Merchant, Store
from domain.staff_pins import add_pin
from tests.admin_ui.browser import (
    browser_sign_in,
    click,
    css,
    element,
    gone,
    new_browser,
    no_traceback,
    replace,
    see,
    type_into,
)
from tests.admin_ui.helpers import ALICE, enrol
from tests.support.smtp import Inbox

# --- stories ---------------------------------------------------------------------------------


async def test_sign_in_create_a_merchant_with_a_store_and_program_delete_and_restore_it(
    server: str,
    browser: WebDriver,
    people: dict[str, Any],
    db: AsyncSession,
    screenshots: Path,
) -> None:
    driver = browser
    browser_sign_in(driver, server)
    click(driver, "nav-merchants")  # the start page is the dashboard
    see(driver, people["a_code"])  # the merchants list

    click(driver, "new-merchant")
    type_into(driver, "merchant-code", "web-cafe")
    type_into(driver, "merchant-name", "Web Café")
    click(driver, "merchant-create")
    see(driver, "Web Café (web-cafe)")

    click(driver, "new-store")
    type_into(driver, "store-code", "WEB-01")
    type_into(driver, "store-name", "Rue du Web")
    click(driver, "store-create")
    see(driver, "WEB-01")

    click(driver, "program-create")
    element(driver, "program-save")
    # A bad value is a message on the page, never a traceback.
    replace(driver, "program-stamps_target", "0")
    replace(driver, "program-background_color", "blue")
    click(driver, "program-save")
    see(driver, "Stamps for a reward: must be at least 1")
    see(driver, "must be a colour like #1F2937")
    no_traceback(driver)
    replace(driver, "program-stamps_target", "8")
    replace(driver, "program-background_color", "#7C2D12")
    click(driver, "program-save")
    see(driver, "Program saved.")
    driver.save_screenshot(str(screenshots / "program-settings.png"))

    merchant = (await db.scalars(select(Merchant).where(Merchant.code == "web-cafe"))).one()
    program = (
        await db.scalars(select(LoyaltyProgram).where(LoyaltyProgram.merchant_id == merchant.id))
    ).one()
    assert (program.stamps_target, program.background_color) == (8, "#7C2D12")
    assert await db.scalar(select(Store.code).where(Store.merchant_id == merchant.id)) == "WEB-01"

    driver.get(f"{server}/merchants")
    click(driver, "merchant-menu-web-cafe")  # Delete waits in the row's menu
    click(driver, "merchant-delete-web-cafe")
    element(driver, "confirm-dialog")
    assert element(driver, "confirm-detail").text.startswith(
        "Deleting Web Café also hides 1 store and 1 program."
    )
    click(driver, "confirm-yes")
    see(driver, "Merchant web-cafe deleted. Hidden with it: 1 store and 1 program.")
    gone(driver, "merchant-menu-web-cafe")

    click(driver, "merchants-only-deleted")
    element(driver, "merchant-restore-web-cafe")
    driver.save_screenshot(str(screenshots / "merchants-only-deleted.png"))
    click(driver, "merchant-restore-web-cafe")
    see(driver, "Merchant web-cafe restored. Back with it: 1 store and 1 program.")
    click(driver, "merchants-only-deleted")  # back to the live ones
    element(driver, "merchant-menu-web-cafe")
    no_traceback(driver)
    db.expire_all()
    restored = await db.scalar(select(Merchant.deleted_at).where(Merchant.code == "web-cafe"))
    assert restored is None

    driver.get(f"{server}/stats")
    element(driver, "chart-liability", "canvas")  # echarts drew its charts
    no_traceback(driver)
    driver.save_screenshot(str(screenshots / "statistics.png"))


async def test_a_terminal_stamp_with_a_pin(
    server: str, browser: WebDriver, people: dict[str, Any], db: AsyncSession, screenshots: Path
) -> None:
    await db.execute(
        update(LoyaltyProgram)
        .where(LoyaltyProgram.id == people["a_program"])
        .values(require_staff_pin=True)
    )
    store = people["a_store_codes"][0]
    await add_pin(db, store, "Anna", "4821", rounds=4)
    await db.commit()
    number = await enrol(db, store, "web@example.com", first_name="Wendy")

    driver = browser
    # Signed out, the terminal shows the sign-in and nothing of the till.
    driver.get(f"{server}/terminal/{store}")
    see(driver, "This device is not signed in as a terminal of this store.")
    assert not driver.find_elements(By.CSS_SELECTOR, css("terminal-pin"))
    click(driver, "terminal-sign-in")
    type_into(driver, "login-username", ALICE[0])
    type_into(driver, "login-password", ALICE[1])
    click(driver, "login-submit")
    type_into(driver, "terminal-pin", "1111")
    click(driver, "terminal-unlock")
    see(driver, "Wrong PIN: 4 tries left before the lock.")
    type_into(driver, "terminal-pin", "4821")
    click(driver, "terminal-unlock")
    see(driver, "Staff: Anna")
    type_into(driver, "terminal-search", number.replace("-", " "))
    click(driver, "terminal-find")
    see(driver, "0 / 10 stamps")
    click(driver, "terminal-stamp")
    see(driver, "1 / 10 stamps")
    see(driver, "Done: +1 stamp(s)")
    driver.save_screenshot(str(screenshots / "terminal.png"))
    db.expire_all()
    stamps = await db.scalar(
        select(LoyaltyCard.stamp_count).where(LoyaltyCard.card_number == number)
    )
    assert stamps == 1


async def test_a_self_enrolment_answers_alike_and_mails_the_link(
    server: str,
    browser: WebDriver,
    inbox: Inbox,
    people: dict[str, Any],
    db: AsyncSession,
    screenshots: Path,
) -> None:
    known = await enrol(db, people["a_store_codes"][1], "known@example.com")
    driver = browser
    answers = []
    for email in ("web.enrol@example.com", "KNOWN@example.com"):
        driver.get(f"{server}/enroll/{people['a_store_codes'][0]}?lang=fr")
        see(driver, "Rejoignez notre programme de fidélité")
        type_into(driver, "enroll-email", email)
        type_into(driver, "enroll-first-name", "Léa")
        click(driver, "enroll-submit")
        answers.append(element(driver, "enroll-message").text)
        assert known not in driver.find_element(By.TAG_NAME, "body").text
        assert not driver.find_elements(By.CSS_SELECTOR, "img")
        no_traceback(driver)
    driver.save_screenshot(str(screenshots / "enrolment.png"))
    assert answers[0] == answers[1]
    assert answers[0].startswith("Consultez votre boîte de réception")
    messages = inbox.wait_for(2)
    assert [r for r in inbox.recipients] == [["web.enrol@example.com"], ["KNOWN@example.com"]]
    cards = {c.card_number: c for c in (await db.scalars(select(LoyaltyCard))).all()}
    assert len(cards) == 2
    body = messages[1].get_content()
    assert f"{server}/card/{cards[known].link_token}" in body
    # The link opens the card.
    driver.get(f"{server}/card/{cards[known].link_token}")
    see(driver, known)
    no_traceback(driver)


async def test_a_device_is_paired_from_the_store_page_then_revoked(
    server: str,
    browser: WebDriver,
    people: dict[str, Any],
    db: AsyncSession,
    screenshots: Path,
    tmp_path: Path,
) -> None:
    await db.execute(
        update(LoyaltyProgram)
        .where(LoyaltyProgram.id == people["a_program"])
        .values(require_staff_pin=False, type="stamps", minimum_purchase_cents=500)
    )
    await db.commit()
    store = people["a_store_codes"][0]
    number = await enrol(db, store, "pair@example.com")
    driver = browser
    browser_sign_in(driver, server)
    driver.get(f"{server}/stores/{people['a_stores'][0]}")
    click(driver, "terminal-pair-start")
    code = element(driver, "pairing-code").text
    driver.save_screenshot(str(screenshots / "pairing-code.png"))
    click(driver, "pairing-code-done")

    # The till: another browser profile, nobody signed in.
    till = new_browser(tmp_path / "till-profile")
    try:
        till.get(f"{server}/terminal/{store}")
        see(till, "Pair this device")
        till.find_element(By.CSS_SELECTOR, css("terminal-pairing-code")).send_keys(code)
        till.find_element(By.CSS_SELECTOR, css("terminal-pair")).click()
        see(till, "paired terminal")
        cookie = till.get_cookie("loyalty_terminal")
        assert cookie is not None and cookie["httpOnly"] and cookie["path"] == f"/terminal/{store}"
        # "Add a stamp" under a minimum purchase: the stamp carries the minimum's worth.
        type_into(till, "terminal-search", number)
        click(till, "terminal-find")
        see(till, "0 / 10 stamps")
        click(till, "terminal-stamp")
        see(till, "1 / 10 stamps")
        till.save_screenshot(str(screenshots / "terminal-paired.png"))

        driver.get(f"{server}/stores/{people['a_stores'][0]}")
        click(driver, "terminal-revoke-Till")
        click(driver, "confirm-yes")
        see(driver, "Terminal Till is revoked.")

        click(till, "terminal-stamp")
        see(till, "This terminal is no longer signed in")
        till.get(f"{server}/terminal/{store}")
        see(till, "Pair this device")
        no_traceback(till)
    finally:
        till.quit()
    db.expire_all()
    stamps = await db.scalar(
        select(LoyaltyCard.stamp_count).where(LoyaltyCard.card_number == number)
    )
    assert stamps == 1
