"""Fixtures of the tools' tests: a database of their own on the test stack, its settings and
the environment the ``loyalty`` commands run with.

The database is not ``tests.support.db``'s session database: the pipeline tests keep a worker
writing to that one, and a replay from the beginning of a shared topic must not land there.
Tests seed merchants with unique codes instead of emptying tables.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.settings import Settings, asyncpg_url, with_database
from domain.db import make_engine, make_sessionmaker
from tests.support.db import fresh_database


@pytest.fixture(scope="session")
def tools_database_url(stack: Settings) -> Iterator[str]:
    """A freshly migrated database for the tools' tests of this pytest process."""
    with fresh_database(stack.db_url, f"loyalty_tools_{os.getpid()}") as url:
        yield url


@pytest.fixture(scope="session")
def tool_settings(stack: Settings, tools_database_url: str) -> Settings:
    """Settings pointing the engine at the test stack's Kafka and the tools' database."""
    return Settings(database_url=tools_database_url, kafka_bootstrap=stack.bootstrap)


@pytest.fixture(scope="session")
def cli_env(tool_settings: Settings) -> dict[str, str]:
    """The environment of ``loyalty`` subprocesses."""
    env = dict(os.environ)
    env.update(
        LOYALTY_DATABASE_URL=tool_settings.db_url,
        LOYALTY_KAFKA_BOOTSTRAP=tool_settings.bootstrap,
        LOYALTY_LOG_LEVEL="WARNING",
        COLUMNS="200",
    )
    return env


@pytest.fixture(scope="session")
async def pool(tools_database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """An asyncpg pool on the tools' database (what the engine uses)."""
    created = await asyncpg.create_pool(tools_database_url, min_size=1, max_size=4)
    assert created is not None
    yield created
    await created.close()


@pytest.fixture(scope="session")
async def sessions(
    tool_settings: Settings, tools_database_url: str
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """ORM sessions on the tools' database, for seeding."""
    engine = make_engine(tool_settings, url=asyncpg_url(tools_database_url))
    yield make_sessionmaker(engine)
    await engine.dispose()
