"""``python -m bench.engine_cpu``: the worker's Python per event, without Kafka or PostgreSQL.

Parses the bench's purchases from their Kafka bytes (``consumers.pipeline.parse``) and applies
them with the engine's handlers (``engine.batch.apply_batch``) against an in-memory unit of work
whose loads hand out fresh card rows and whose flush packs the outbox as PostgreSQL's does,
so what is timed is the worker's own Python: parsing, rules, projections, ledger rows,
outputs and their encoding. The database's side (SQL, asyncpg's encoding) is
``bench.profile_engine``'s. Repeats the run and prints the best and the median, which move far
less from run to run on a shared machine than the full benchmark's figures.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from bench.profile_engine import Record
from bench.workload import MERCHANT_CODE, STORE_CODE, Workload, card_number
from consumers.pipeline import parse
from consumers.worker import GC_YOUNG_OBJECTS
from core.commands import ExpiryRun
from core.enums import ProgramType
from core.memory import keep_freed_memory
from domain.engine.batch import apply_batch
from domain.engine.expiry import RunTotals
from domain.engine.rollups import LedgerRollup
from domain.engine.state import BatchState, CardRow, CustomerRow, StoreInfo, Wanted
from domain.engine.writes import Effects, outbox_rows
from domain.rules.earn import projected_history
from domain.rules.values import CardBalance, ProgramTerms, StampHistory


class MemoryUnitOfWork:
    """Loads fresh rows from dicts, writes nothing but packs the outbox (``flush``)."""

    def __init__(self, cards: int) -> None:
        terms = ProgramTerms(
            program_id=1,
            merchant_id=1,
            type=ProgramType.HYBRID,
            stamps_target=10,
            points_per_euro=10,
            timezone=ZoneInfo("Europe/Luxembourg"),
        )
        self.store = StoreInfo(1, STORE_CODE, 1, MERCHANT_CODE, True, True, terms)
        self.cards = {card_number(i): i + 1 for i in range(cards)}
        self.packed = 0

    async def seen(self, event_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """No event was seen before."""
        return set()

    async def load(self, state: BatchState, wanted: Wanted) -> None:
        """The store, and a fresh row per card named (as a database read makes them)."""
        state.stores[STORE_CODE] = self.store
        for number in wanted.card_numbers:
            card_id = self.cards[number]
            state.add_card(
                CardRow(
                    balance=CardBalance(card_id=card_id),
                    card_number=number,
                    merchant_id=1,
                    program_id=1,
                    customer_id=card_id,
                    store_id=1,
                    qr_token="",
                    created_at=None,
                    written=(None, True),
                )
            )

    async def new_ids(self, sequence: str, count: int) -> list[int]:
        """Nothing enrols here."""
        return []

    async def stamp_history(
        self, state: BatchState, card: CardRow, terms: ProgramTerms, at: datetime
    ) -> StampHistory:
        """The projection's answer (the bench's events come in order)."""
        known = projected_history(card.balance, terms.local_day(at), at)
        assert known is not None
        return known

    async def lots(self, state: BatchState, card: CardRow) -> None:
        """Only the batch's own lots (the bench's purchases never spend any)."""
        card.lots = list(card.new_lots)

    def write_ahead(self, state: BatchState, effects: Effects) -> None:
        """Nothing is written ahead."""

    async def settle(self) -> None:
        """No writes in flight."""

    async def abandon(self) -> None:
        """No writes in flight."""

    async def flush(
        self, state: BatchState, effects: Effects, customers: list[CustomerRow]
    ) -> None:
        """Sum the rollups and pack the outbox as ``writes.flush`` does; write nothing."""
        rollup = LedgerRollup()
        rollup.add_cards(state, [c for c in state.cards.values() if c.dirty])
        rollup.add(state, effects.ledger)
        self.packed += len(outbox_rows(effects.outbox))
        effects.ledger.clear()
        effects.outbox.clear()

    async def write_totals(self) -> None:
        """Summed in ``flush``; nothing to write."""

    async def record_inbox(
        self, rows: Sequence[tuple[uuid.UUID, str, str]], earlier: dict[uuid.UUID, str]
    ) -> int:
        """Everything is new."""
        return len(rows)

    async def expire(self, run: ExpiryRun, now: datetime) -> RunTotals:
        """Not in this workload."""
        raise NotImplementedError


async def _once(batches: list[list[Record]], cards: int) -> float:
    uow = MemoryUnitOfWork(cards)
    now = datetime.now(UTC)
    start = time.process_time()
    for records in batches:
        parsed = parse(records)
        await apply_batch(uow, parsed.events, now)
    return time.process_time() - start


def _batches(cards: int, count: int, size: int, with_lines: bool) -> list[list[Record]]:
    workload = Workload(cards)
    out = []
    for b in range(count):
        events = workload.batch(size, f"c{b}", with_lines)
        out.append([Record(e.topic, 0, i, e.key, e.value) for i, e in enumerate(events)])
    return out


def main() -> None:
    """Time ``--runs`` runs of ``--batches`` batches of ``--size`` purchases."""
    parser = argparse.ArgumentParser(prog="python -m bench.engine_cpu", description=__doc__)
    parser.add_argument("--cards", type=int, default=100_000)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--lines", action="store_true", help="purchases of three line items")
    parser.add_argument(
        "--malloc-default",
        action="store_true",
        help="leave glibc's malloc as it is (the worker keeps freed memory: core.memory)",
    )
    args = parser.parse_args()
    batches = _batches(args.cards, args.batches, args.size, args.lines)
    events = args.batches * args.size
    # The worker's garbage collection (``consumers.worker``): its start-up frozen, young
    # collections every GC_YOUNG_OBJECTS; at Python's default the collector's walks of each
    # batch's live objects were timed here as the engine's, and landed on whatever function
    # happened to allocate then.
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_OBJECTS, 10, 10)
    if not args.malloc_default:
        keep_freed_memory()  # as the worker does (``loyalty worker``)
    results: list[float] = []
    for _ in range(args.runs):
        results.append(asyncio.run(_once(batches, args.cards)) / events * 1e6)
    print(
        f"engine Python per event over {events:,} purchases"
        + (" of three lines" if args.lines else "")
        + f": best {min(results):.1f} us, median {statistics.median(results):.1f} us "
        f"({', '.join(f'{r:.1f}' for r in results)})"
    )


if __name__ == "__main__":
    main()
