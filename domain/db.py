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
