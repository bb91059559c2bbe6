"""What every page of one admin panel process shares: its settings and its database engine.

The engine is created when the app starts (``app.on_startup``) and disposed when it stops,
never at import time: NiceGUI's test ``user`` fixture starts the app once per test, each time
in a fresh event loop state, and an engine made at import would outlive its loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.logs import get_logger
from core.settings import Settings
from domain.db import make_engine, make_sessionmaker
from domain.engine.conn import Conn

log = get_logger(__name__)


@dataclass
class Runtime:
    """The settings of the process and, once started, its engine and session factory."""

    settings: Settings
    engine: AsyncEngine | None = None
    _sessions: async_sessionmaker[AsyncSession] | None = field(default=None, repr=False)

    async def start(self) -> None:
        """Create the engine (called from ``app.on_startup``)."""
        self.engine = make_engine(self.settings)
        self._sessions = make_sessionmaker(self.engine)

    async def stop(self) -> None:
        """Dispose of the engine (called from ``app.on_shutdown``)."""
        engine, self.engine, self._sessions = self.engine, None, None
        if engine is None:
            return
        try:
            await engine.dispose()
        except Exception as exc:  # the app must stop even when the database went away first
            log.warning("admin_ui.engine_dispose_failed", error=str(exc)[:200])

    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        """The session factory (for modules that take one, like the wallet routes)."""
        if self._sessions is None:
            raise RuntimeError("the admin panel has not started: no database engine yet")
        return self._sessions

    def session(self) -> AsyncSession:
        """A new session; use it as ``async with runtime.session() as session``."""
        if self._sessions is None:
            raise RuntimeError("the admin panel has not started: no database engine yet")
        return self._sessions()


async def raw_connection(session: AsyncSession) -> Conn:
    """The asyncpg connection under a session, inside the session's transaction.

    The batch engine (``process_batch``) and the admin actions speak asyncpg; this gives them
    the session's own connection so their writes commit or roll back with the session.
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


@asynccontextmanager
async def transaction(runtime: Runtime) -> AsyncIterator[AsyncSession]:
    """A session in a transaction committed at the end of the block (rolled back on error)."""
    async with runtime.session() as session, session.begin():
        yield session
