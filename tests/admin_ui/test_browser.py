"""What a person clicks, in a real headless Chromium against the real app (``python -m loyalty
admin`` in a subprocess, on a free port, against this session's test database).

Chromium and its driver come from Debian (``apt-get install -y chromium chromium-driver``,
done by ``make setup``). Without them these tests fail with that sentence: no skip.
Screenshots of two key pages go to ``$LOYALTY_SCREENSHOTS`` (default: pytest's tmp folder).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.settings import REPO_ROOT
from domain.models import LoyaltyCard, LoyaltyProgram, Merchant, Store
from domain.staff_pins import add_pin
from tests.admin_ui.helpers import ALICE, PLATFORM, enrol
from tests.support.smtp import Inbox, running_inbox

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL = "apt-get update && apt-get install -y chromium chromium-driver"
CHROME_OPTIONS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1400,1000",
)
WAIT_S = 20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def module_inbox() -> Iterator[Inbox]:
    """The SMTP server the browser tests' admin app sends its email to."""
    with running_inbox() as inbox:
        yield inbox


@pytest.fixture
def inbox(module_inbox: Inbox) -> Inbox:
    """``module_inbox``, emptied for this test."""
    with module_inbox.lock:
        module_inbox.messages.clear()
        module_inbox.recipients.clear()
    return module_inbox


@pytest.fixture(scope="module")
def server(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, module_inbox: Inbox
) -> Iterator[str]:
    """The admin app served by ``python -m loyalty admin``; yields its base URL."""
    port = _free_port()
    folder = tmp_path_factory.mktemp("admin-server")
    env = {
        **os.environ,
        "LOYALTY_STACK": "test",
        "LOYALTY_DATABASE_URL": database_url,
        "LOYALTY_ADMIN_HOST": "127.0.0.1",
        "LOYALTY_ADMIN_PORT": str(port),
        "LOYALTY_BCRYPT_ROUNDS": "4",
        "LOYALTY_PIN_BCRYPT_ROUNDS": "4",
        "LOYALTY_SESSION_SECRET": "browser-tests-secret",
        "LOYALTY_SMTP_HOST": module_inbox.host,
        "LOYALTY_SMTP_PORT": str(module_inbox.port),
        "LOYALTY_SMTP_TLS": "none",
        "NICEGUI_STORAGE_PATH": str(folder / "storage"),
        "_TYPER_STANDARD_TRACEBACK": "1",
    }
    for name in ("PYTEST_CURRENT_TEST", "NICEGUI_USER_SIMULATION", "NICEGUI_SCREEN_TEST_PORT"):
        env.pop(name, None)
    log = (folder / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "loyalty", "admin"],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"`loyalty admin` exited with {process.returncode}:\n"
                    + (folder / "server.log").read_text(errors="replace")[-3000:]
                )
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("`loyalty admin` did not answer within 60 s")
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _new_browser(profile: Path) -> WebDriver:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(f"Chromium is missing ({', '.join(missing)}): install it with `{INSTALL}`")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for option in CHROME_OPTIONS:
        options.add_argument(option)
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    return driver


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    """A fresh headless Chromium (its own profile folder)."""
    driver = _new_browser(tmp_path / "chromium-profile")
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go."""
    folder = os.environ.get("LOYALTY_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


# --- a person's hands -----------------------------------------------------------------------


def _css(testid: str) -> str:
    return f'[data-testid="{testid}"]'


def _element(driver: WebDriver, testid: str, inner: str = "") -> WebElement:
    selector = _css(testid) + (f" {inner}" if inner else "")
    found: WebElement = _wait(driver).until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, selector))
    )
    return found


def _wait(driver: WebDriver) -> WebDriverWait[WebDriver]:
    # A list redrawn by the server replaces its elements: look them up again, as a person would.
    return WebDriverWait(driver, WAIT_S, ignored_exceptions=[StaleElementReferenceException])


def _click(driver: WebDriver, testid: str) -> None:
    for attempt in range(3):
        try:
            _wait(driver).until(ec.element_to_be_clickable((By.CSS_SELECTOR, _css(testid)))).click()
            return
        except StaleElementReferenceException:
            if attempt == 2:
                raise


def _input(driver: WebDriver, testid: str) -> WebElement:
    # Quasar hands a QInput's attributes to its native <input>.
    selector = f"input{_css(testid)}, {_css(testid)} input"
    found: WebElement = _wait(driver).until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, selector))
    )
    return found


def _type(driver: WebDriver, testid: str, text: str) -> None:
    _input(driver, testid).send_keys(text)


def _replace(driver: WebDriver, testid: str, text: str) -> None:
    field = _input(driver, testid)
    field.send_keys("\ue009a")  # Ctrl+A: select what is there
    field.send_keys("\ue017")  # Delete
    field.send_keys(text)


def _see(driver: WebDriver, text: str) -> None:
    try:
        _wait(driver).until(lambda d: text in d.find_element(By.TAG_NAME, "body").text)
    except TimeoutException:
        body = driver.find_element(By.TAG_NAME, "body").text
        raise AssertionError(f"{text!r} never showed; the page says:\n{body[:3000]}") from None


def _gone(driver: WebDriver, testid: str) -> None:
    _wait(driver).until(ec.invisibility_of_element_located((By.CSS_SELECTOR, _css(testid))))


def _sign_in(driver: WebDriver, server: str) -> None:
    driver.get(f"{server}/login")
    _type(driver, "login-username", PLATFORM[0])
    _type(driver, "login-password", PLATFORM[1])
    _click(driver, "login-submit")
    _element(driver, "whoami")


def _no_traceback(driver: WebDriver) -> None:
    source = driver.page_source
    assert "Traceback" not in source
    assert "Internal Server Error" not in source


# --- stories ---------------------------------------------------------------------------------


async def test_sign_in_create_a_merchant_with_a_store_and_program_delete_and_restore_it(
    server: str,
    browser: WebDriver,
    people: dict[str, Any],
    db: AsyncSession,
    screenshots: Path,
) -> None:
    driver = browser
    _sign_in(driver, server)
    _see(driver, people["a_code"])  # the merchants list

    _click(driver, "new-merchant")
    _type(driver, "merchant-code", "web-cafe")
    _type(driver, "merchant-name", "Web Café")
    _click(driver, "merchant-create")
    _see(driver, "Web Café (web-cafe)")

    _click(driver, "new-store")
    _type(driver, "store-code", "WEB-01")
    _type(driver, "store-name", "Rue du Web")
    _click(driver, "store-create")
    _see(driver, "WEB-01")

    _click(driver, "program-create")
    _element(driver, "program-save")
    # A bad value is a message on the page, never a traceback.
    _replace(driver, "program-stamps_target", "0")
    _replace(driver, "program-background_color", "blue")
    _click(driver, "program-save")
    _see(driver, "must be >= 1")
    _see(driver, "must be a colour like #1F2937")
    _no_traceback(driver)
    _replace(driver, "program-stamps_target", "8")
    _replace(driver, "program-background_color", "#7C2D12")
    _click(driver, "program-save")
    _see(driver, "Program saved.")
    driver.save_screenshot(str(screenshots / "program-settings.png"))

    merchant = (await db.scalars(select(Merchant).where(Merchant.code == "web-cafe"))).one()
    program = (
        await db.scalars(select(LoyaltyProgram).where(LoyaltyProgram.merchant_id == merchant.id))
    ).one()
    assert (program.stamps_target, program.background_color) == (8, "#7C2D12")
    assert await db.scalar(select(Store.code).where(Store.merchant_id == merchant.id)) == "WEB-01"

    driver.get(f"{server}/merchants")
    _click(driver, "merchant-delete-web-cafe")
    _element(driver, "confirm-dialog")
    _click(driver, "confirm-yes")
    _see(driver, "Merchant web-cafe deleted.")
    _gone(driver, "merchant-delete-web-cafe")

    _click(driver, "merchants-only-deleted")
    _element(driver, "merchant-restore-web-cafe")
    driver.save_screenshot(str(screenshots / "merchants-only-deleted.png"))
    _click(driver, "merchant-restore-web-cafe")
    _see(driver, "Merchant web-cafe restored.")
    _click(driver, "merchants-only-deleted")  # back to the live ones
    _element(driver, "merchant-delete-web-cafe")
    _no_traceback(driver)
    db.expire_all()
    restored = await db.scalar(select(Merchant.deleted_at).where(Merchant.code == "web-cafe"))
    assert restored is None

    driver.get(f"{server}/stats")
    _element(driver, "chart-liability", "canvas")  # echarts drew its charts
    _no_traceback(driver)
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
    _see(driver, "This device is not signed in as a terminal of this store.")
    assert not driver.find_elements(By.CSS_SELECTOR, _css("terminal-pin"))
    _click(driver, "terminal-sign-in")
    _type(driver, "login-username", ALICE[0])
    _type(driver, "login-password", ALICE[1])
    _click(driver, "login-submit")
    _type(driver, "terminal-pin", "1111")
    _click(driver, "terminal-unlock")
    _see(driver, "Wrong PIN: 4 tries left before the lock.")
    _type(driver, "terminal-pin", "4821")
    _click(driver, "terminal-unlock")
    _see(driver, "Staff: Anna")
    _type(driver, "terminal-search", number.replace("-", " "))
    _click(driver, "terminal-find")
    _see(driver, "0 / 10 stamps")
    _click(driver, "terminal-stamp")
    _see(driver, "1 / 10 stamps")
    _see(driver, "Done: +1 stamp(s)")
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
        _see(driver, "Rejoignez notre programme de fidélité")
        _type(driver, "enroll-email", email)
        _type(driver, "enroll-first-name", "Léa")
        _click(driver, "enroll-submit")
        answers.append(_element(driver, "enroll-message").text)
        assert known not in driver.find_element(By.TAG_NAME, "body").text
        assert not driver.find_elements(By.CSS_SELECTOR, "img")
        _no_traceback(driver)
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
    _see(driver, known)
    _no_traceback(driver)


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
    _sign_in(driver, server)
    driver.get(f"{server}/stores/{people['a_stores'][0]}")
    _click(driver, "terminal-pair-start")
    code = _element(driver, "pairing-code").text
    driver.save_screenshot(str(screenshots / "pairing-code.png"))
    _click(driver, "pairing-code-done")

    # The till: another browser profile, nobody signed in.
    till = _new_browser(tmp_path / "till-profile")
    try:
        till.get(f"{server}/terminal/{store}")
        _see(till, "Pair this device")
        till.find_element(By.CSS_SELECTOR, _css("terminal-pairing-code")).send_keys(code)
        till.find_element(By.CSS_SELECTOR, _css("terminal-pair")).click()
        _see(till, "paired terminal")
        cookie = till.get_cookie("loyalty_terminal")
        assert cookie is not None and cookie["httpOnly"] and cookie["path"] == f"/terminal/{store}"
        # "Add a stamp" under a minimum purchase: the stamp carries the minimum's worth.
        _type(till, "terminal-search", number)
        _click(till, "terminal-find")
        _see(till, "0 / 10 stamps")
        _click(till, "terminal-stamp")
        _see(till, "1 / 10 stamps")
        till.save_screenshot(str(screenshots / "terminal-paired.png"))

        driver.get(f"{server}/stores/{people['a_stores'][0]}")
        _click(driver, "terminal-revoke-Till")
        _click(driver, "confirm-yes")
        _see(driver, "Terminal Till is revoked.")

        _click(till, "terminal-stamp")
        _see(till, "This terminal is no longer signed in")
        till.get(f"{server}/terminal/{store}")
        _see(till, "Pair this device")
        _no_traceback(till)
    finally:
        till.quit()
    db.expire_all()
    stamps = await db.scalar(
        select(LoyaltyCard.stamp_count).where(LoyaltyCard.card_number == number)
    )
    assert stamps == 1
