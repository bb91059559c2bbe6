"""The browser tests' kit: the admin app served by ``python -m loyalty admin`` (a subprocess,
on a free port, against this session's test database), a headless Chromium, where screenshots
go, and a person's hands (click, type, see). The fixtures are registered by the conftest.

Chromium and its driver come from Debian (``apt-get install -y chromium chromium-driver``,
done by ``make setup``). Without them these tests fail with that sentence: no skip.
Screenshots go to ``$LOYALTY_SCREENSHOTS`` (default: pytest's tmp folder).
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

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from core.settings import REPO_ROOT
from tests.admin_ui.helpers import PLATFORM
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


def new_browser(profile: Path) -> WebDriver:
    """A headless Chromium with its own profile folder (quit it when done)."""
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
    driver = new_browser(tmp_path / "chromium-profile")
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


def css(testid: str) -> str:
    """The CSS selector of the element named ``testid`` (``widgets.tag``)."""
    return f'[data-testid="{testid}"]'


def element(driver: WebDriver, testid: str, inner: str = "") -> WebElement:
    """The element named ``testid`` (or its descendant ``inner``), once it is visible."""
    selector = css(testid) + (f" {inner}" if inner else "")
    found: WebElement = wait(driver).until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, selector))
    )
    return found


def wait(driver: WebDriver) -> WebDriverWait[WebDriver]:
    """A wait of ``WAIT_S`` seconds that looks elements up again when redrawn."""
    # A list redrawn by the server replaces its elements: look them up again, as a person would.
    return WebDriverWait(driver, WAIT_S, ignored_exceptions=[StaleElementReferenceException])


def click(driver: WebDriver, testid: str) -> None:
    """Click the element named ``testid`` once it is clickable."""
    for attempt in range(3):
        try:
            wait(driver).until(ec.element_to_be_clickable((By.CSS_SELECTOR, css(testid)))).click()
            return
        except StaleElementReferenceException:
            if attempt == 2:
                raise


def input_of(driver: WebDriver, testid: str) -> WebElement:
    """The native ``<input>`` of the input named ``testid``."""
    # Quasar hands a QInput's attributes to its native <input>.
    selector = f"input{css(testid)}, {css(testid)} input"
    found: WebElement = wait(driver).until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, selector))
    )
    return found


def type_into(driver: WebDriver, testid: str, text: str) -> None:
    """Type ``text`` at the end of an input."""
    input_of(driver, testid).send_keys(text)


def replace(driver: WebDriver, testid: str, text: str) -> None:
    """Type ``text`` over what an input holds."""
    field = input_of(driver, testid)
    field.send_keys("\ue009a")  # Ctrl+A: select what is there
    field.send_keys("\ue017")  # Delete
    field.send_keys(text)


def see(driver: WebDriver, text: str) -> None:
    """Wait until the page shows ``text``; fail with what it shows otherwise."""
    try:
        wait(driver).until(lambda d: text in d.find_element(By.TAG_NAME, "body").text)
    except TimeoutException:
        body = driver.find_element(By.TAG_NAME, "body").text
        raise AssertionError(f"{text!r} never showed; the page says:\n{body[:3000]}") from None


def gone(driver: WebDriver, testid: str) -> None:
    """Wait until the element named ``testid`` is hidden or removed."""
    wait(driver).until(ec.invisibility_of_element_located((By.CSS_SELECTOR, css(testid))))


def browser_sign_in(
    driver: WebDriver, server: str, credentials: tuple[str, str] = PLATFORM
) -> None:
    """Sign in through the sign-in page (the platform admin unless told) and wait for the
    panel's frame."""
    driver.get(f"{server}/login")
    type_into(driver, "login-username", credentials[0])
    type_into(driver, "login-password", credentials[1])
    click(driver, "login-submit")
    element(driver, "whoami")


def no_traceback(driver: WebDriver) -> None:
    """The page shows no traceback and no server error."""
    source = driver.page_source
    assert "Traceback" not in source
    assert "Internal Server Error" not in source
