"""Fixtures of the admin panel's tests: the real test database, users, a signed-in ``user``.

NiceGUI's ``user`` fixture (``nicegui.testing.user_plugin``, enabled in the root conftest) runs
the app's main file, ``admin_ui/main.py``, named by the ``nicegui_main_file`` marker each test
module sets (``pytestmark = MAIN_FILE``). The app reads its settings when that file runs, so
the autouse ``admin_settings`` fixture points them at this session's database first. The
database fixtures come from ``tests.support.db``, which the top-level conftest registers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.settings import get_settings
from tests.admin_ui.browser import browser, inbox, module_inbox, screenshots, server
from tests.admin_ui.helpers import seed_users


@pytest.fixture(autouse=True)
def admin_settings(
    database_url: str,
    db_sessions: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[None]:
    """The app's settings: this session's (emptied) database, fast bcrypt, a test secret."""
    monkeypatch.setenv("LOYALTY_DATABASE_URL", database_url)
    monkeypatch.setenv("LOYALTY_BCRYPT_ROUNDS", "4")
    monkeypatch.setenv("LOYALTY_PIN_BCRYPT_ROUNDS", "4")
    monkeypatch.setenv("LOYALTY_SESSION_SECRET", "admin-ui-tests-secret")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
async def people(db_sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[dict[str, int]]:
    """Two merchants with a store each, a platform admin and a merchant admin per merchant."""
    async with db_sessions() as session:
        yield await seed_users(session)
