"""Where the benchmark runs: the ``bench`` local stack and a fresh ``loyalty_bench`` database."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

import asyncpg

from bench.workload import MERCHANT_CODE, STORE_CODE, card_number
from core.settings import Settings, with_database
from domain.db import make_engine, make_sessionmaker
from domain.models import LoyaltyProgram, Merchant, ProgramType, Store
from loyalty import migrate
from loyalty.stack import LocalStack

DATABASE = "loyalty_bench"
DEFAULT_STACK = "bench"


def bench_settings() -> Settings:
    """The settings of the benchmark's stack: ``LOYALTY_STACK`` if set, else ``bench``.

    ``LOYALTY_DATABASE_URL`` and ``LOYALTY_KAFKA_BOOTSTRAP`` still point at external services;
    the benchmark then uses the database ``loyalty_bench`` on that server.
    """
    return Settings(stack=os.environ.get("LOYALTY_STACK", DEFAULT_STACK))


@dataclass
class Stack:
    """The running stack and whether this run started it (and so stops it)."""

    settings: Settings
    started_here: bool

    @property
    def database_url(self) -> str:
        return with_database(self.settings.db_url, DATABASE)


def stack_up(settings: Settings) -> Stack:
    """Start the stack unless it runs; the topics are ensured either way."""
    local = LocalStack(settings)
    was_running = local.status().running
    local.up()
    return Stack(settings, started_here=not was_running)


def stack_down(stack: Stack) -> None:
    """Stop the local services this run started; their data stays."""
    if stack.started_here:
        LocalStack(stack.settings).down()


async def fresh_database(stack: Stack) -> str:
    """Drop and create ``loyalty_bench``, migrate it to head; returns its URL."""
    admin = await asyncpg.connect(with_database(stack.settings.db_url, "postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await admin.close()
    url = stack.database_url
    # Alembic's env runs its own event loop: give it a thread without one.
    await asyncio.to_thread(migrate.upgrade, url)
    return url


@dataclass(frozen=True)
class Seeded:
    """What the seed created."""

    merchant_id: int
    store_id: int
    program_id: int
    cards: int


_CUSTOMERS = """
INSERT INTO customers (merchant_id, email, customer_ref, locale)
SELECT $1, 'bench-' || g || '@example.com', 'bench-' || g, 'en'
FROM generate_series(1, $2) AS g
"""

# Customer n (1-based, in id order) gets card n-1: ids come from one sequence in one statement.
_CARDS = """
INSERT INTO loyalty_cards (
    card_number, qr_token, apple_authentication_token, merchant_id, program_id, customer_id,
    store_id, stamp_count, lifetime_stamps, rewards_redeemed, points_balance,
    lifetime_points_earned, points_redeemed, points_voided, points_expired, stamp_day_count,
    is_active, version)
SELECT n.card_number,
       replace(gen_random_uuid()::text, '-', ''),
       replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''),
       $2, $3, c.id, $4, 0, 0, 0, 0, 0, 0, 0, 0, 0, true, 1
FROM unnest($1::text[]) WITH ORDINALITY AS n(card_number, i)
JOIN (SELECT id, row_number() OVER (ORDER BY id) AS i FROM customers WHERE merchant_id = $2) c
  ON c.i = n.i
"""


async def seed(database_url: str, settings: Settings, cards: int) -> Seeded:
    """A merchant, its store and hybrid program (ORM), then customers and cards (set-based)."""
    engine = make_engine(
        settings, url=database_url.replace("postgresql://", "postgresql+asyncpg://")
    )
    try:
        async with make_sessionmaker(engine)() as session:
            merchant = Merchant(code=MERCHANT_CODE, name="Bench", timezone="Europe/Luxembourg")
            session.add(merchant)
            await session.flush()
            store = Store(merchant_id=merchant.id, code=STORE_CODE, name="Bench store")
            # Every purchase earns a stamp and points: the hybrid program does the most work.
            program = LoyaltyProgram(
                merchant_id=merchant.id,
                type=ProgramType.HYBRID,
                stamps_target=10,
                points_per_euro=10,
                cooldown_minutes=0,
            )
            session.add_all([store, program])
            await session.flush()
            ids = (merchant.id, store.id, program.id)
            await session.commit()
    finally:
        await engine.dispose()
    merchant_id, store_id, program_id = ids
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            await conn.execute(_CUSTOMERS, merchant_id, cards)
            numbers = [card_number(i) for i in range(cards)]
            await conn.execute(_CARDS, numbers, merchant_id, program_id, store_id)
        await conn.execute("ANALYZE")
        count = await conn.fetchval("SELECT count(*) FROM loyalty_cards")
    finally:
        await conn.close()
    return Seeded(merchant_id, store_id, program_id, int(count))
