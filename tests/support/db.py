"""Database fixtures for tests against the real PostgreSQL of the test stack.

Each test session gets a database of its own (migrated with Alembic from empty), and every
test that asks for ``db`` starts from empty tables. The root conftest registers this module
as a plugin; ``fresh_database`` serves tests that need a database of their own.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.settings import Settings, with_database
from domain.db import make_engine, make_sessionmaker
from domain.models import Base
from loyalty import migrate

__all__ = ["database_url", "db", "db_engine", "db_sessions"]


async def _recreate(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@contextmanager
def fresh_database(server_url: str, name: str) -> Iterator[str]:
    """Database ``name`` on the server of ``server_url``, created empty and migrated to head;
    dropped on exit."""
    admin = with_database(server_url, "postgres")
    asyncio.run(_recreate(admin, name))
    url = with_database(server_url, name)
    try:
        migrate.upgrade(url)
        yield url
    finally:
        asyncio.run(_drop(admin, name))


@pytest.fixture(scope="session")
def database_url(stack: Settings) -> Iterator[str]:
    """A freshly migrated database for this test session."""
    # One database per pytest process: two sessions running at once never share one.
    with fresh_database(stack.db_url, f"loyalty_test_{os.getpid()}") as url:
        yield url


@pytest.fixture(scope="session")
async def db_engine(stack: Settings, database_url: str) -> AsyncIterator[AsyncEngine]:
    """One engine for the session's database."""
    engine = make_engine(stack, url=database_url.replace("postgresql://", "postgresql+asyncpg://"))
    yield engine
    await engine.dispose()


async def truncate_all(engine: AsyncEngine) -> None:
    """Empty every table of the model (the ledger trigger only guards UPDATE and DELETE)."""
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
async def db_sessions(db_engine: AsyncEngine) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A session factory over empty tables."""
    await truncate_all(db_engine)
    yield make_sessionmaker(db_engine)


@pytest.fixture
async def db(db_sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session over empty tables."""
    async with db_sessions() as session:
        yield session
