"""The ledger's daily totals, summed by the engine for its own batches.

``ledger_daily_totals`` is kept by a statement trigger on ``ledger_entries`` for every writer
(migration ``statistics rollups``): per statement it copies the new rows into a transition
table, joins merchants and programs, converts to local time and sums 13 ways; a batch of 1,000
purchases paid ~10 us of PostgreSQL CPU per event for it. The engine knows all of that
already (the card's program, the merchant's time zone), so for a batch's transaction it tells
the trigger to stand aside (``loyalty.ledger_rollups`` set to ``engine``, transaction-local),
sums its rows here and upserts the few totals once per segment, in key order as the trigger
does. Every other writer (admin actions, the set-based expiry, SQL by hand) still goes
through the trigger. ``tests/pipeline/test_rollups_exact.py`` checks the totals against a
rebuild from the ledger after a random workload.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from core.enums import LedgerType
from domain.engine.conn import Conn
from domain.engine.state import BatchState

_SET = "SELECT set_config('loyalty.ledger_rollups', $1, true)"

# The totals' columns after the key, in table order; for each entry type, the column its
# stamps delta and its points delta go to, and the sign (a redemption's negative delta counts
# as points redeemed).
TOTALS = (
    "entries",
    "stamps_earned",
    "stamps_redeemed",
    "stamps_voided",
    "stamps_adjusted",
    "stamps_net",
    "points_earned",
    "points_welcome",
    "points_redeemed",
    "points_voided",
    "points_expired",
    "points_adjusted",
    "points_net",
)
_STAMPS_NET, _POINTS_NET = TOTALS.index("stamps_net"), TOTALS.index("points_net")
_STAMPS_TO: dict[str, tuple[int, int]] = {
    LedgerType.STAMP_EARNED.value: (TOTALS.index("stamps_earned"), 1),
    LedgerType.STAMP_REDEEMED.value: (TOTALS.index("stamps_redeemed"), -1),
    LedgerType.STAMP_VOIDED.value: (TOTALS.index("stamps_voided"), -1),
    LedgerType.STAMP_ADJUSTED.value: (TOTALS.index("stamps_adjusted"), 1),
}
_POINTS_TO: dict[str, tuple[int, int]] = {
    LedgerType.POINTS_EARNED.value: (TOTALS.index("points_earned"), 1),
    LedgerType.WELCOME_BONUS.value: (TOTALS.index("points_welcome"), 1),
    LedgerType.POINTS_REDEEMED.value: (TOTALS.index("points_redeemed"), -1),
    LedgerType.POINTS_VOIDED.value: (TOTALS.index("points_voided"), -1),
    LedgerType.POINTS_EXPIRED.value: (TOTALS.index("points_expired"), -1),
    LedgerType.POINTS_ADJUSTED.value: (TOTALS.index("points_adjusted"), 1),
}

_KEY = "merchant_id, program_id, store_id, day"
_UPSERT = f"""
INSERT INTO ledger_daily_totals AS t ({_KEY}, {", ".join(TOTALS)})
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::date[],
    {", ".join(f"${i}::bigint[]" for i in range(5, 5 + len(TOTALS)))})
ON CONFLICT ({_KEY}) DO UPDATE SET {", ".join(f"{c} = t.{c} + excluded.{c}" for c in TOTALS)}
"""  # noqa: S608 - no outside input

Key = tuple[int, int, int, date]


class LedgerRollup:
    """The daily totals of the ledger rows one transaction of the engine writes."""

    def __init__(self) -> None:
        self.totals: dict[Key, list[int]] = {}
        self._standing_aside = False
        self._zones: dict[int, ZoneInfo] = {}

    async def before_copy(self, conn: Conn) -> None:
        """Tell the trigger to leave this transaction's ledger rows to the engine."""
        if not self._standing_aside:
            await conn.execute(_SET, "engine")
            self._standing_aside = True

    async def hand_back(self, conn: Conn) -> None:
        """Let the trigger count what follows (a writer of its own, such as the expiry SQL)."""
        if self._standing_aside:
            await conn.execute(_SET, "")
            self._standing_aside = False

    def add(self, state: BatchState, rows: Sequence[tuple[Any, ...]]) -> None:
        """Count ledger rows (``writes.LEDGER_COLUMNS`` order) of cards ``state`` holds."""
        for store in state.stores.values():
            if store.terms is not None and store.merchant_id not in self._zones:
                self._zones[store.merchant_id] = store.terms.timezone
        cards, zones, totals = state.cards, self._zones, self.totals
        last: tuple[int, datetime, date] | None = None
        for row in rows:
            card_id, merchant_id, store_id, entry_type, stamps, points = row[:6]
            at: datetime = row[17]
            # An event's rows share its instant: its local day is converted once.
            if last is not None and last[0] == merchant_id and last[1] is at:
                day = last[2]
            else:
                day = at.astimezone(zones[merchant_id]).date()
                last = (merchant_id, at, day)
            key = (merchant_id, cards[card_id].program_id, store_id or 0, day)
            sums = totals.get(key)
            if sums is None:
                sums = totals[key] = [0] * len(TOTALS)
            sums[0] += 1
            sums[_STAMPS_NET] += stamps
            sums[_POINTS_NET] += points
            to = _STAMPS_TO.get(entry_type)
            if to is not None:
                sums[to[0]] += to[1] * stamps
            to = _POINTS_TO.get(entry_type)
            if to is not None:
                sums[to[0]] += to[1] * points

    async def write(self, conn: Conn) -> None:
        """Upsert the totals so far, in key order (as the trigger: no deadlock between two
        transactions on shared rows), and start again."""
        if not self.totals:
            return
        keys = sorted(self.totals)
        columns: list[list[object]] = [[k[i] for k in keys] for i in range(4)]
        columns += [[self.totals[k][i] for k in keys] for i in range(len(TOTALS))]
        await conn.execute(_UPSERT, *columns)
        self.totals.clear()
