"""The local PostgreSQL answers on the URL the engine is given."""

from __future__ import annotations

from urllib.parse import urlsplit

import asyncpg

from core.settings import Settings


async def test_postgres_answers_on_the_engine_url(stack: Settings) -> None:
    conn = await asyncpg.connect(stack.db_url)
    try:
        assert await conn.fetchval("SELECT 1") == 1
        version_num = int(await conn.fetchval("SHOW server_version_num"))
        database = await conn.fetchval("SELECT current_database()")
        encoding = await conn.fetchval("SHOW server_encoding")
    finally:
        await conn.close()

    # The project targets PostgreSQL 15 (Debian 12's) and later.
    assert version_num >= 150000
    assert conn.get_server_version().major == version_num // 10000
    assert database == urlsplit(stack.db_url).path.lstrip("/")
    assert encoding == "UTF8"


async def test_the_local_cluster_has_the_engine_role_and_database(stack: Settings) -> None:
    conn = await asyncpg.connect(stack.db_url)
    try:
        row = await conn.fetchrow("SELECT current_user, current_database()")
        assert row is not None
        user, database = row
    finally:
        await conn.close()
    if stack.uses_local_database:
        assert (user, database) == ("loyalty", "loyalty")
    else:
        assert database == urlsplit(stack.db_url).path.lstrip("/")
