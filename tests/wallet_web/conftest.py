"""The wallet's web side (PassKit web service, the customer's card page) against the real
test database, with the generated Apple PKI and a Google service account."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from admin_ui.passkit import create_passkit_app
from tests.support.wallet_fakes import *
from tests.support.wallet_fakes import wallet_settings_for
from tests.wallet.pki import ApplePki
from wallet import WalletSettings

WEB_SERVICE_URL = "https://loyalty.example.lu/passkit"


@pytest.fixture
def apple_wallet(apple_pki: ApplePki, tmp_path: Path) -> WalletSettings:
    """Apple pass signing on, with a web service at ``/passkit``."""
    return wallet_settings_for(tmp_path, apple_pki=apple_pki, apple_web_service_url=WEB_SERVICE_URL)


@pytest.fixture
async def passkit(
    db_sessions: async_sessionmaker[AsyncSession], apple_wallet: WalletSettings
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the PassKit web service app, over the test database."""
    app = create_passkit_app(sessions=lambda: db_sessions, wallet_settings=apple_wallet)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://wallet.test") as client:
        yield client
