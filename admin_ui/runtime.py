"""What every page of one admin panel process shares: its settings and its database engine.

The engine is created when the app starts (``app.on_startup``) and disposed when it stops,
never at import time: NiceGUI's test ``user`` fixture starts the app once per test, each time
in a fresh event loop state, and an engine made at import would outlive its loop.

Who acts, for the admin audit trail (``domain.audit_trail``): ``admin_ui.guard`` builds each
admin page as its signed-in admin (``acting_admin``) and tells the runtime how to find that
admin again from the page's event handlers (``page_admin``: NiceGUI's per-page storage, which
this module, below the pages, does not know); ``transaction`` makes that admin the actor of
its writes. A handler runs long after its page was built, outside the page's context, so the
page itself is the one place both can find the admin.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager, nullcontext
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.logs import get_logger
from core.settings import Settings
from domain.audit_trail import acting_as
from domain.db import driver_connection, make_engine, make_sessionmaker
from domain.engine.conn import Conn

log = get_logger(__name__)


def _nobody() -> str | None:
    return None


@dataclass
class Runtime:
    """The settings of the process and, once started, its engine and session factory.

    ``page_admin`` names the signed-in admin of the page whose code runs now (``None``: not
    an admin page); ``admin_ui.guard`` sets it.
    """

    settings: Settings
    engine: AsyncEngine | None = None
    _sessions: async_sessionmaker[AsyncSession] | None = field(default=None, repr=False)
    page_admin: Callable[[], str | None] = field(default=_nobody, repr=False)

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
    """The asyncpg connection under a session, inside the session's transaction
    (``domain.db.driver_connection``)."""
    return await driver_connection(session)


@contextmanager
def acting_admin(username: str) -> Iterator[None]:
    """Within the block, changes are made by the admin ``username`` from the panel."""
    with acting_as(username, source="panel"):
        yield


@asynccontextmanager
async def transaction(runtime: Runtime) -> AsyncIterator[AsyncSession]:
    """A session in a transaction committed at the end of the block (rolled back on error).

    On an admin page its changes are that admin's in the audit trail (the commit's flush,
    which records them, is inside the block that says so).
    """
    admin = runtime.page_admin()
    with acting_admin(admin) if admin is not None else nullcontext():
        async with runtime.session() as session, session.begin():
            yield session
