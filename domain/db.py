"""Engines and sessions. Created by each process at start-up, never at import time."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from core.settings import Settings
from domain import audit_trail as _audit_trail  # noqa: F401 - registers the audit trail's hook
from domain import soft_delete as _soft_delete  # noqa: F401 - registers the soft-delete hook
from domain.engine.conn import Conn


def make_engine(settings: Settings, *, pool_size: int = 5, url: str | None = None) -> AsyncEngine:
    """An asyncpg engine for the configured database (or ``url``)."""
    return create_async_engine(
        url or settings.async_db_url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        # Reconnects after a PostgreSQL restart instead of failing on stale connections.
        pool_recycle=1800,
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


async def driver_connection(session: AsyncSession) -> Conn:
    """The asyncpg connection under a session, inside the session's transaction.

    The batch engine and the admin actions speak asyncpg; this gives them the session's own
    connection, so their writes commit or roll back with the session's.
    """
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: Conn = raw.driver_connection  # type: ignore[assignment]
    if not driver.is_in_transaction():
        # SQLAlchemy's asyncpg adapter sends BEGIN lazily, with the session's first statement:
        # until then the driver connection is in autocommit, and each statement of the engine
        # would commit on its own (a refused action would leave its inbox row behind).
        await connection.exec_driver_sql("SELECT 1")
    if not driver.is_in_transaction():
        raise RuntimeError("the session's connection is not in a transaction")
    return driver
