"""The statistics' rollups, summed by the engine for its own batches.

``ledger_daily_totals`` is kept by a statement trigger on ``ledger_entries`` for every writer
(migration ``statistics rollups``): per statement it copies the new rows into a transition
table, joins merchants and programs, converts to local time and sums 13 ways; a batch of 1,000
purchases paid ~10 us of PostgreSQL CPU per event for it. The engine knows all of that
already (the card's program, the merchant's time zone), so for a batch's transaction it tells
the trigger to stand aside (``loyalty.ledger_rollups`` set to ``engine``, transaction-local),
sums its rows here and upserts the few totals once per segment, in key order as the trigger
does. Every other writer (admin actions, the set-based expiry, SQL by hand) still goes
through the trigger.

The same for ``card_daily_counts`` and the engine's card updates (``loyalty.card_rollups``;
~11 us of PostgreSQL CPU per event): ``CardRollup`` moves a card's counts from the values the
database last had (``CardRow.written``) to the new ones, statement by statement, by the
trigger's rules (migration ``statistics rollups``, ``_CARD_MOVES``). New cards are inserted,
and counted by the insert trigger.

The same for the finance report's monthly activity (``card_active_months`` and its counts,
migration ``finance report``): the ledger's trigger looks up every row's (card, month) in an
index (~4 us each) and records the new ones. The engine reads each card's latest recorded
month with the card (``CardRow.active_month``): a card active again in that month, the usual
case, needs nothing; only the other (card, month) pairs go to ``activity_record``, once per
segment. (``last_activity_at`` will not do: an enrolment that finds its card already there
moves it without an activity entry.)

``tests/pipeline/test_rollups_exact.py`` and ``test_finance_exact.py`` check them against a
rebuild after random workloads.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from core.enums import LedgerType
from domain.engine.conn import Conn
from domain.engine.state import BatchState, CardRow
from domain.rules.project import ACTIVITY

_SET = """
SELECT set_config('loyalty.ledger_rollups', $1, true), set_config('loyalty.card_rollups', $1, true)
"""

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

# Pending points (CONTRACT.md 7.2) count as issued, or voided, when and where they were
# earned: with these entries the pending part joins the spendable one. The net stays the
# spendable balance's (a release adds to it).
_WITH_PENDING = frozenset({LedgerType.POINTS_EARNED.value, LedgerType.POINTS_VOIDED.value})

_ACTIVE_KINDS = frozenset(kind.value for kind in ACTIVITY)
_RECORD_ACTIVITY = "SELECT activity_record($1::bigint[], $2::date[])"

# The usual case, months after every month recorded for the card (``LedgerRollup.write``,
# which reads each card's latest month first): the engine then knows each new month's
# previous one and the card's cohort, so it inserts the months and adds the counts without
# ``activity_record``'s reads of the cards, the merchants and the card's earlier months
# (measured: 15.7 -> 8.1 us of PostgreSQL CPU per event of the bench, where every card has
# its first purchase of the month). Only a month actually inserted is counted, as there.
_LATEST_MONTHS = """
SELECT card_id, max(month) FROM card_active_months WHERE card_id = ANY($1::bigint[])
GROUP BY card_id
"""

_RECORD_IN_ORDER = """
WITH u AS (
    SELECT * FROM unnest($1::bigint[], $2::date[], $3::bigint[], $4::date[], $5::date[])
        AS u(card_id, month, merchant_id, cohort, previous)
), fresh AS (
    INSERT INTO card_active_months AS t (card_id, month)
    SELECT card_id, month FROM u
    ON CONFLICT (card_id, month) DO NOTHING
    RETURNING t.card_id, t.month
)
INSERT INTO active_month_counts AS t (merchant_id, cohort, previous, month, writer, cards)
SELECT u.merchant_id, u.cohort, coalesce(u.previous, '-infinity'::date), u.month,
       pg_backend_pid(), count(*)
FROM u JOIN fresh f ON f.card_id = u.card_id AND f.month = u.month
GROUP BY 1, 2, 3, 4
ON CONFLICT (merchant_id, cohort, previous, month, writer)
DO UPDATE SET cards = t.cards + excluded.cards
"""

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
        self.cards = CardRollup()
        self._standing_aside = False
        self._zones: dict[int, ZoneInfo] = {}
        # (card, first day of the merchant-local month) of activity not recorded yet, and
        # those known to be recorded (each card's latest month when loaded, and ours).
        self.active_months: set[tuple[int, date]] = set()
        self._recorded: set[tuple[int, date]] = set()
        self._active_cards: dict[int, CardRow] = {}

    def zones(self, state: BatchState) -> dict[int, ZoneInfo]:
        """The time zone of every merchant ``state`` has a store of."""
        for store in state.stores.values():
            if store.terms is not None and store.merchant_id not in self._zones:
                self._zones[store.merchant_id] = store.terms.timezone
        return self._zones

    def add_cards(self, state: BatchState, updated: Iterable[CardRow]) -> None:
        """Count the moves of cards about to be updated (``CardRollup``)."""
        self.cards.add(updated, self.zones(state))

    async def stand_aside(self, conn: Conn) -> None:
        """Tell the triggers to leave this transaction's ledger rows and card updates to
        the engine."""
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
        cards, zones, totals = state.cards, self.zones(state), self.totals
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
            if entry_type in _ACTIVE_KINDS:
                self._add_activity(cards[card_id], card_id, day)
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
                if entry_type in _WITH_PENDING:
                    sums[to[0]] += to[1] * (points + row[18])
                else:
                    sums[to[0]] += to[1] * points

    def _add_activity(self, card: CardRow, card_id: int, day: date) -> None:
        pair = (card_id, day.replace(day=1))
        if card.active_month is not None:
            self._recorded.add((card_id, card.active_month))
        if pair not in self._recorded:
            self.active_months.add(pair)
            self._active_cards[card_id] = card

    async def write(self, conn: Conn) -> None:
        """Upsert the totals and counts so far, in key order (as the triggers: no deadlock
        between two transactions on shared rows), record the new months of activity, and
        start again."""
        if self.totals:
            await conn.execute(_UPSERT, *_columns(self.totals, len(TOTALS)))
            self.totals.clear()
        await self.cards.write(conn)
        if self.active_months:
            pairs = sorted(self.active_months)
            in_order, others = self._in_order(pairs, await self._latest_months(conn))
            if in_order:
                columns = (list(c) for c in zip(*in_order, strict=True))
                await conn.execute(_RECORD_IN_ORDER, *columns)
            if others:
                await conn.execute(_RECORD_ACTIVITY, [p[0] for p in others], [p[1] for p in others])
            # Recorded now: the rest of the batch need not send them again.
            self._recorded.update(pairs)
            self.active_months.clear()
            self._active_cards.clear()

    async def _latest_months(self, conn: Conn) -> dict[int, date]:
        """The latest month recorded for each existing card with new months, read now.

        Not the ``active_month`` read with the card: when that read waited for another
        writer's lock on the card, its subquery saw the months before that writer's commit
        (READ COMMITTED), and a month recorded meanwhile would be counted as missing. The
        cards are locked now, so no writer can add a month until this transaction ends.
        """
        ids = [i for i, c in self._active_cards.items() if not c.is_new and c.created_at]
        if not ids:
            return {}
        return {r[0]: r[1] for r in await conn.fetch(_LATEST_MONTHS, ids)}

    def _in_order(
        self, pairs: list[tuple[int, date]], latest: dict[int, date]
    ) -> tuple[list[tuple[int, date, int, date, date | None]], list[tuple[int, date]]]:
        """Split sorted (card, month) pairs: rows (card, month, merchant, cohort, previous
        month) for cards whose new months all come after every month recorded for them
        (``latest``), and the pairs ``activity_record`` works out (a late month; a card just
        made, whose cohort its insert counts)."""
        in_order: list[tuple[int, date, int, date, date | None]] = []
        others: list[tuple[int, date]] = []
        by_card: dict[int, list[date]] = {}
        for card_id, month in pairs:
            by_card.setdefault(card_id, []).append(month)
        for card_id, months in by_card.items():
            card = self._active_cards[card_id]
            previous = latest.get(card_id)
            if (
                card.is_new
                or card.created_at is None
                or (previous is not None and months[0] <= previous)
            ):
                others.extend((card_id, m) for m in months)
                continue
            zone = self._zones[card.merchant_id]
            cohort = card.created_at.astimezone(zone).date().replace(day=1)
            for month in months:
                in_order.append((card_id, month, card.merchant_id, cohort, previous))
                previous = month
        return in_order, others


def _columns(sums: dict[Key, list[int]], width: int) -> list[list[object]]:
    keys = sorted(k for k, v in sums.items() if any(v))  # as the triggers: no zero rows
    columns: list[list[object]] = [[k[i] for k in keys] for i in range(4)]
    return columns + [[sums[k][i] for k in keys] for i in range(width)]


COUNTS = ("cards_created", "active_cards_created", "last_active_cards")
_UPSERT_COUNTS = f"""
INSERT INTO card_daily_counts AS t ({_KEY}, {", ".join(COUNTS)})
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::date[],
    $5::bigint[], $6::bigint[], $7::bigint[])
ON CONFLICT ({_KEY}) DO UPDATE SET {", ".join(f"{c} = t.{c} + excluded.{c}" for c in COUNTS)}
"""  # noqa: S608 - no outside input

# The statistics read last-activity days over the 30 days up to today, never further back; a
# card's old day further back than that from its new one is left (see ``_CARD_MOVES``).
_ACTIVITY_REACH = timedelta(days=30)


class CardRollup:
    """The card counts' moves of the cards one transaction of the engine updates."""

    def __init__(self) -> None:
        self.counts: dict[Key, list[int]] = {}

    def _add(self, key: Key, active: int, last_active: int) -> None:
        sums = self.counts.get(key)
        if sums is None:
            sums = self.counts[key] = [0, 0, 0]
        sums[1] += active
        sums[2] += last_active

    def add(self, updated: Iterable[CardRow], zones: dict[int, ZoneInfo]) -> None:
        """Move each card's counts from its written values to its values now.

        The engine never moves a card to another merchant, program, store or creation time,
        nor deletes one: only its activation and its last activity move.
        """
        for card in updated:
            assert card.written is not None, "a card the engine updates was loaded by it"
            old_at, old_active = card.written
            new_at, new_active = card.balance.last_activity_at, card.balance.is_active
            if old_at == new_at and old_active == new_active:
                continue
            card.written = (new_at, new_active)
            tz = zones[card.merchant_id]
            m, p, s = card.merchant_id, card.program_id, card.store_id or 0
            if old_active != new_active:
                assert card.created_at is not None
                self._add(
                    (m, p, s, card.created_at.astimezone(tz).date()), new_active - old_active, 0
                )
            old_day = old_at.astimezone(tz).date() if old_at is not None else None
            new_day = new_at.astimezone(tz).date() if new_at is not None else None
            if old_day == new_day:
                continue
            if old_day is not None and not (
                new_day is not None and old_day < new_day - _ACTIVITY_REACH
            ):
                self._add((m, p, s, old_day), 0, -1)
            if new_day is not None:
                self._add((m, p, s, new_day), 0, 1)

    async def write(self, conn: Conn) -> None:
        """Upsert the moves so far, in key order, and start again."""
        columns = _columns(self.counts, len(COUNTS))
        if columns[0]:
            await conn.execute(_UPSERT_COUNTS, *columns)
        self.counts.clear()
