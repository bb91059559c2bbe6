"""Fixtures every test folder may use: the real local test stack (PostgreSQL and Kafka).

Tests run against the stack named by ``LOYALTY_STACK`` (``make test`` sets ``test``; set here
too when absent, before anything reads the settings). The stack is started once per session
and left running for the next session. A stack that cannot start fails the tests that need it:
there is no skip. Fixtures of a package's own go into that package's ``conftest.py``.
"""

from __future__ import annotations

import os

os.environ.setdefault("LOYALTY_STACK", "test")

import pytest

from core.settings import Settings, get_settings
from loyalty.stack import LocalStack

# The database fixtures are registered once here: imported into several conftests, a
# session fixture would exist once per folder and each copy would recreate the same database.
pytest_plugins = ["nicegui.testing.user_plugin", "tests.support.db", "tests.support.smtp"]

RESTARTS_STACK = "restarts_stack"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{RESTARTS_STACK}: stops and starts the local stack; runs after every other test so "
        "their connections are not cut",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A stable sort: the restart tests go last, everything else keeps its order.
    items.sort(key=lambda item: item.get_closest_marker(RESTARTS_STACK) is not None)


@pytest.fixture(scope="session")
def local_stack() -> LocalStack:
    """The running test stack (started when it is not), for tests that manage it."""
    get_settings.cache_clear()
    stack = LocalStack(get_settings())
    stack.up()
    return stack


@pytest.fixture(scope="session")
def stack(local_stack: LocalStack) -> Settings:
    """The settings of the running test stack: ``bootstrap``, ``db_url``, ``async_db_url``."""
    return local_stack.settings
