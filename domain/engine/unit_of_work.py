"""The engine's unit of work: everything a batch reads from and writes to its store.

The handlers see only this interface, so they run the same against PostgreSQL
(``PgUnitOfWork``, set-based SQL inside the caller's transaction) and in memory (the tests'
``FakeUnitOfWork``), as in cosmicpython's service layer. The caller owns the transaction:
nothing here commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

import asyncpg

from core.commands import ExpiryRun
from domain.engine.conn import Conn
from domain.engine.expiry import RunTotals, run_in_sql
from domain.engine.rollups import LedgerRollup
from domain.engine.state import (
    BatchState,
    CardRow,
    CustomerRow,
    Wanted,
    load_cards,
    load_lots,
    load_orders,
    load_stores,
    load_window_rows,
    stamp_history,
)
from domain.engine.tiers import window_ranges
from domain.engine.writes import Effects, WriteBehind, allocate_ids, flush
from domain.rules.values import ProgramTerms, StampHistory

CUSTOMER_IDS = "customers_id_seq"
CARD_IDS = "loyalty_cards_id_seq"


class UnitOfWork(Protocol):
    """What a batch needs of the database."""

    async def seen(self, event_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Which of these events were processed before (the inbox)."""

    async def load(self, state: BatchState, wanted: Wanted) -> None:
        """Stores with their programs, orders and held returns, then cards (locked, in id
        order) and their customers, into ``state``."""

    async def new_ids(self, sequence: str, count: int) -> list[int]:
        """``count`` fresh ids of a table, for the rows a batch creates."""

    async def stamp_history(
        self, state: BatchState, card: CardRow, terms: ProgramTerms, at: datetime
    ) -> StampHistory:
        """Earlier stamps of the card as the cooldown and the daily cap see them at ``at``."""

    async def lots(self, state: BatchState, card: CardRow) -> None:
        """Load the card's open point lots into ``card.lots`` (with those the batch made)."""

    def write_ahead(self, state: BatchState, effects: Effects) -> None:
        """Start writing what the batch decided so far while its rules go on (may do
        nothing); the rows sent are taken out of ``effects``."""

    async def settle(self) -> None:
        """Wait for the writes started ahead."""

    async def abandon(self) -> None:
        """The batch failed: wait for the writes in flight, ignoring their errors."""

    async def flush(
        self, state: BatchState, effects: Effects, customers: list[CustomerRow]
    ) -> None:
        """Write every remaining effect of the segment."""

    async def write_totals(self) -> None:
        """Write the statistics the batch summed (``engine.rollups``), once, after its
        last segment."""

    async def record_inbox(
        self, rows: Sequence[tuple[uuid.UUID, str, str]], earlier: dict[uuid.UUID, str]
    ) -> int:
        """Insert the inbox rows ``(event_id, topic, status)`` of fresh events; returns how
        many were inserted (fewer: another worker committed some meanwhile). ``earlier``:
        new statuses of events recorded by earlier batches (held returns applied now)."""

    async def expire(self, run: ExpiryRun, now: datetime) -> RunTotals:
        """The daily run as of ``run.occurred_at``: pending points due released, lots due
        expired, reminders sent, with ledger rows and wallet updates."""


_SEEN = "SELECT event_id FROM processed_events WHERE event_id = ANY($1::uuid[])"

INBOX_COLUMNS = ("event_id", "topic", "status")

_INBOX_UPDATE = """
UPDATE processed_events AS e SET status = u.status
FROM unnest($1::uuid[], $2::text[]) AS u(event_id, status)
WHERE e.event_id = u.event_id
"""


class PgUnitOfWork:
    """The unit of work over one asyncpg connection, inside the caller's transaction."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        self._rollup = LedgerRollup()
        self._writer = WriteBehind(conn, self._rollup)

    async def seen(self, event_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Which of these events the inbox holds."""
        return {r[0] for r in await self.conn.fetch(_SEEN, list(event_ids))}

    async def load(self, state: BatchState, wanted: Wanted) -> None:
        """A few set-based queries, whatever the batch's size."""
        await load_stores(self.conn, state, wanted.store_codes)
        await load_orders(self.conn, state, wanted)
        extra = {p.card_id for p in state.purchases.values() if p.card_id is not None}
        await load_cards(self.conn, state, wanted, extra_card_ids=extra)
        await load_window_rows(self.conn, state, window_ranges(state, wanted.span))

    async def new_ids(self, sequence: str, count: int) -> list[int]:
        """Ids from the table's sequence."""
        return await allocate_ids(self.conn, sequence, count)

    async def stamp_history(
        self, state: BatchState, card: CardRow, terms: ProgramTerms, at: datetime
    ) -> StampHistory:
        """From the card's projection, or from the ledger for an event out of order."""
        return await stamp_history(self.conn, state, card, terms, at, self._writer.settle)

    async def lots(self, state: BatchState, card: CardRow) -> None:
        """One query, after the writes in flight."""
        await load_lots(self.conn, [card], self._writer.settle)

    def write_ahead(self, state: BatchState, effects: Effects) -> None:
        """Queue a chunk of writes on the connection (``writes.WriteBehind``)."""
        self._writer.submit(state, effects)

    async def settle(self) -> None:
        """Wait for the queued writes."""
        await self._writer.settle()

    async def abandon(self) -> None:
        """Wait for the queued writes, ignoring their errors."""
        await self._writer.abandon()

    async def flush(
        self, state: BatchState, effects: Effects, customers: list[CustomerRow]
    ) -> None:
        """Write the rest, the segment's outbox rows included (its totals are summed)."""
        await flush(self.conn, state, effects, customers, self._rollup)

    async def write_totals(self) -> None:
        """The rollups' rows, shared by every writer, at the batch's end: a batch takes its
        cards' and orders' locks (in one or two parts, ``engine.overlap``) before any of
        these, as every batch does, so two batches never wait for each other in a circle."""
        await self._rollup.write(self.conn)

    async def record_inbox(
        self, rows: Sequence[tuple[uuid.UUID, str, str]], earlier: dict[uuid.UUID, str]
    ) -> int:
        """One insert for the batch, one update for held returns of earlier batches."""
        inserted = 0
        if rows:
            # COPY, not an insert of unnest arrays: 0.9 us of worker CPU per event against
            # 2.3 (asyncpg checks every array element against the collection ABCs). A row
            # another worker committed meanwhile fails the whole COPY, where ON CONFLICT
            # would have skipped it: the caller rolls back either way.
            try:
                await self.conn.copy_records_to_table(
                    "processed_events", records=rows, columns=INBOX_COLUMNS
                )
            except asyncpg.UniqueViolationError:
                return 0  # the transaction is aborted: nothing more can be written
            inserted = len(rows)
        if earlier:
            await self.conn.execute(_INBOX_UPDATE, list(earlier), list(earlier.values()))
        return inserted

    async def expire(self, run: ExpiryRun, now: datetime) -> RunTotals:
        """A few statements for every due card of the run's merchants (``engine.expiry``).

        Its ledger rows are written by SQL: the database's trigger counts them.
        """
        await self._rollup.hand_back(self.conn)
        return await run_in_sql(self.conn, run, now)
