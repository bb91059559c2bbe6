"""The customer's card page in a real headless Chromium, at a phone's width and a desktop's.

The app runs as ``python -m loyalty admin`` in a subprocess, as in the admin panel's browser
tests (``tests/admin_ui/test_browser.py``, whose Chromium and screenshot fixtures this module
uses), with Apple and Google Wallet set up in its environment so the wallet buttons are part
of the layout. Screenshots go to ``$LOYALTY_SCREENSHOTS`` (default: pytest's tmp folder).
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.settings import REPO_ROOT
from domain.models import LedgerType
from tests.admin_ui.browser import browser, screenshots
from tests.support.wallet_fakes import GOOGLE_ISSUER, write_service_account
from tests.support.wallet_seed import add_entry, seed_card, seed_wallet_merchant
from tests.wallet.pki import PASS_TYPE_ID, TEAM_ID, ApplePki, Issued

__all__ = ["browser", "screenshots"]

PHONE = (390, 844)
DESKTOP = (1440, 900)
PRIVACY_URL = "https://cafe-lux.example.lu/privacy"
START_S = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wallet_environment(apple: ApplePki, google_key: Issued, folder: Path) -> dict[str, str]:
    """Apple pass signing and Google save links, as ``LOYALTY_WALLET_*`` variables."""
    values = {
        "APPLE_PASS_TYPE_ID": PASS_TYPE_ID,
        "APPLE_TEAM_ID": TEAM_ID,
        "APPLE_SIGNER_CERT_PATH": str(apple.signer_cert_path),
        "APPLE_SIGNER_KEY_PATH": str(apple.signer_key_path),
        "APPLE_SIGNER_KEY_PASSWORD": apple.signer_key_password,
        "APPLE_WWDR_CERT_PATH": str(apple.wwdr_path),
        "GOOGLE_ISSUER_ID": GOOGLE_ISSUER,
        "GOOGLE_SERVICE_ACCOUNT_PATH": str(
            write_service_account(folder, google_key, "http://127.0.0.1:9/token")
        ),
    }
    return {f"LOYALTY_WALLET_{name}": value for name, value in values.items()}


@pytest.fixture(scope="module")
def card_server(
    database_url: str,
    apple_pki: ApplePki,
    google_sa_key: Issued,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """``python -m loyalty admin`` over this session's database, both wallets set up."""
    port = _free_port()
    folder = tmp_path_factory.mktemp("card-page-server")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_WALLET_")}
    env.update(_wallet_environment(apple_pki, google_sa_key, folder))
    env.update(
        {
            "LOYALTY_STACK": "test",
            "LOYALTY_DATABASE_URL": database_url,
            "LOYALTY_ADMIN_HOST": "127.0.0.1",
            "LOYALTY_ADMIN_PORT": str(port),
            "LOYALTY_SESSION_SECRET": "card-page-browser-tests",
            "NICEGUI_STORAGE_PATH": str(folder / "storage"),
        }
    )
    for name in ("PYTEST_CURRENT_TEST", "NICEGUI_USER_SIMULATION", "NICEGUI_SCREEN_TEST_PORT"):
        env.pop(name, None)
    log_path = folder / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "loyalty", "admin"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + START_S
            while True:
                if process.poll() is not None:
                    pytest.fail(
                        f"`loyalty admin` exited with {process.returncode}:\n"
                        + log_path.read_text(errors="replace")[-3000:]
                    )
                try:
                    with urllib.request.urlopen(f"{url}/healthz", timeout=2) as answer:  # noqa: S310
                        if answer.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"`loyalty admin` did not answer within {START_S} s")
                time.sleep(0.3)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _emulate(driver: WebDriver, size: tuple[int, int], *, mobile: bool) -> None:
    width, height = size
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {
            "width": width,
            "height": height,
            "deviceScaleFactor": 2 if mobile else 1,
            "mobile": mobile,
        },
    )


def _full_page_screenshot(driver: WebDriver, path: Path) -> None:
    # The whole page, not only the viewport: a phone's page is taller than its screen.
    shot: dict[str, Any] = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
    )
    path.write_bytes(base64.b64decode(shot["data"]))


def _wait_for_grid(driver: WebDriver) -> None:
    WebDriverWait(driver, 20).until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, '[data-testid="stamp-grid"]'))
    )


async def test_the_card_page_fits_a_phone(
    card_server: str,
    browser: WebDriver,
    db_sessions: async_sessionmaker[AsyncSession],
    screenshots: Path,
) -> None:
    async with db_sessions() as db:
        merchant, program = await seed_wallet_merchant(
            db,
            stamps_reward_description="A free coffee of your choice with a pastry",
            privacy_url=PRIVACY_URL,
        )
        card = await seed_card(
            db, merchant, program, locale="en", stamp_count=7, points_balance=120
        )
        when = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
        await add_entry(db, card, LedgerType.WELCOME_BONUS, points=50, occurred_at=when)
        await add_entry(
            db,
            card,
            LedgerType.STAMP_EARNED,
            stamps=1,
            points=70,
            occurred_at=when.replace(hour=10),
        )
        await add_entry(
            db,
            card,
            LedgerType.POINTS_REDEEMED,
            points=-100,
            reward_description="A free coffee of your choice with a pastry",
            occurred_at=when.replace(hour=11),
        )

    driver = browser
    _emulate(driver, PHONE, mobile=True)
    driver.get(f"{card_server}/card/{card.link_token}")
    _wait_for_grid(driver)

    widths = driver.execute_script(
        "return [document.documentElement.scrollWidth, document.body.scrollWidth,"
        " window.innerWidth]"
    )
    # A phone widens its layout to fit content wider than its screen, innerWidth included:
    # so the window must still be the phone's 390 px, and nothing wider than it.
    assert widths[2] == PHONE[0]
    assert max(widths[0], widths[1]) <= widths[2], f"sideways scroll at 390 px: {widths}"

    grid = driver.find_element(By.CSS_SELECTOR, '[data-testid="stamp-grid"]')
    assert grid.get_attribute("aria-label") == "7 of 10 stamps"
    assert len(grid.find_elements(By.CSS_SELECTOR, '[data-testid="stamp-filled"]')) == 7
    assert len(grid.find_elements(By.CSS_SELECTOR, '[data-testid="stamp-reward"]')) == 1
    # Every circle inside the page: none cut off at the right edge.
    right = driver.execute_script(
        "return Math.max(...[...document.querySelectorAll('[data-testid=stamp-grid] > *')]"
        ".map(e => e.getBoundingClientRect().right))"
    )
    assert right <= PHONE[0]

    switch = driver.find_element(By.CSS_SELECTOR, '[data-testid="language-switch"]')
    links = switch.find_elements(By.TAG_NAME, "a")
    assert [link.text for link in links] == ["English", "Français", "Deutsch", "Lëtzebuergesch"]
    assert (links[1].get_attribute("href") or "").endswith(f"/card/{card.link_token}?lang=fr")
    wallets = [
        driver.find_element(By.CSS_SELECTOR, '[data-testid="apple-wallet"]'),
        driver.find_element(By.CSS_SELECTOR, '[data-testid="google-wallet"]'),
    ]
    privacy = driver.find_element(By.CSS_SELECTOR, '[data-testid="privacy-link"]')
    for element in [*links, *wallets, privacy]:
        box = element.rect
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= PHONE[0], element.text
    assert "Traceback" not in driver.page_source
    driver.save_screenshot(str(screenshots / "card-page-390.png"))
    _full_page_screenshot(driver, screenshots / "card-page-390-full.png")

    _emulate(driver, DESKTOP, mobile=False)
    driver.get(f"{card_server}/card/{card.link_token}?lang=fr")
    _wait_for_grid(driver)
    grid = driver.find_element(By.CSS_SELECTOR, '[data-testid="stamp-grid"]')
    assert grid.get_attribute("aria-label") == "7 sur 10 tampons"
    # Wide enough for two columns: the code beside the card, not under it.
    card_box = driver.find_element(By.CSS_SELECTOR, '[data-testid="brand-card"]').rect
    code_box = driver.find_element(By.CSS_SELECTOR, '[data-testid="qr"]').rect
    assert code_box["x"] >= card_box["x"] + card_box["width"]
    assert code_box["y"] < card_box["y"] + card_box["height"]
    driver.save_screenshot(str(screenshots / "card-page-1440.png"))
