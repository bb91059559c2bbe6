"""A database session for one CLI command: an engine of its own, disposed of at the end."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from core.settings import get_settings
from domain.db import make_engine, make_sessionmaker

T = TypeVar("T")


async def with_session(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``work`` with a session on the configured database; ``work`` commits if it writes."""
    engine = make_engine(get_settings(), pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session:
            return await work(session)
    finally:
        await engine.dispose()
