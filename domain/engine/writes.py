"""Writing a batch's effects set-based: a handful of statements whatever the batch size.

``COPY`` for the append-only ledger, purchases and outbox (packed per shard,
``engine.outbox``) and for the card changes (through a scratch table); ``unnest`` arrays for
the rarer inserts and updates.

About 500 lines: every table a batch writes, with its statement beside the code that fills
it, and the write-ahead that sends them while the rules go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import operator
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from domain.engine.conn import Conn
from domain.engine.outbox import pack_payloads, write_packs
from domain.engine.outputs import OutboxEntry
from domain.engine.rollups import LedgerRollup
from domain.engine.state import (
    BALANCE_COLUMNS,
    BatchState,
    BudgetOvertaken,
    PurchaseRow,
    lock_campaigns,
)

LEDGER_COLUMNS = (
    "card_id",
    "merchant_id",
    "store_id",
    "entry_type",
    "stamps_delta",
    "points_delta",
    "stamp_count_after",
    "points_balance_after",
    "purchase_amount_cents",
    "order_reference",
    "reward_code",
    "reward_description",
    "staff_pin_id",
    "staff_ref",
    "actor",
    "source_event_id",
    "notes",
    "occurred_at",
    "pending_delta",
    "lots",
)

LedgerRow = tuple[Any, ...]


@dataclass
class Effects:
    """What a batch will write besides the projections held in ``BatchState``."""

    ledger: list[LedgerRow] = field(default_factory=list)
    outbox: list[OutboxEntry] = field(default_factory=list)
    # Status updates of inbox rows written earlier (admin actions, held returns applied now);
    # a batch's own events get their inbox rows, status included, in one insert at its end.
    inbox_status: dict[uuid.UUID, str] = field(default_factory=dict)


async def allocate_ids(conn: Conn, sequence: str, count: int) -> list[int]:
    """Take ``count`` ids from a sequence up front, so new rows can be referred to at once."""
    if count == 0:
        return []
    rows = await conn.fetch(
        "SELECT nextval($1::regclass) FROM generate_series(1, $2)", sequence, count
    )
    return [r[0] for r in rows]


_INSERT_CUSTOMERS = """
INSERT INTO customers (id, merchant_id, email, customer_ref, phone, first_name, last_name, locale)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[],
                     $6::text[], $7::text[], $8::text[])
"""

_INSERT_CARDS = """
INSERT INTO loyalty_cards (
    id, card_number, qr_token, merchant_id, program_id, customer_id, store_id,
    apple_authentication_token, stamp_count, points_balance, lifetime_stamps, rewards_redeemed,
    lifetime_points_earned, points_redeemed, points_voided, points_expired, last_stamp_at,
    stamp_day, stamp_day_count, last_points_at, last_redemption_at, last_activity_at,
    is_active, version, points_pending, lot_count, dated_points, next_expiry_at,
    next_expiry_points, tier, qualifying_points, qualifying_from, tier_below_since)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::bigint[],
    $6::bigint[], $7::bigint[], $8::text[], $9::int[], $10::bigint[], $11::int[], $12::int[],
    $13::bigint[], $14::bigint[], $15::bigint[], $16::bigint[], $17::timestamptz[],
    $18::date[], $19::int[], $20::timestamptz[], $21::timestamptz[], $22::timestamptz[],
    $23::bool[], $24::int[], $25::bigint[], $26::int[], $27::bigint[], $28::timestamptz[],
    $29::bigint[], $30::text[], $31::bigint[], $32::timestamptz[], $33::timestamptz[])
"""

CARD_CHANGE_COLUMNS = BALANCE_COLUMNS
"""The card columns a change of balance writes: the id, then the balance's (``CardBalance``)."""

# The card changes go to the database as one array of ``card_change`` records (a composite
# type of the cards' balance columns, migration ``card change type``): one statement, and
# asyncpg checks each record once against the collection ABCs, not each of its values
# (measured: 10-20 us of worker CPU per card as 26 arrays of values). It replaced a COPY
# into a temporary table and an UPDATE from it: a statement fewer and no scratch rows
# (per card 25 -> 17-18 us of the database's time at 1,000 cards, 2.4 -> 1.5 ms for 30).
# The planner finds the cards by their primary key (a nested loop over the array; EXPLAIN
# ANALYZE with 1,000 changes of 100,000 cards, first and seventh run of the statement).
_UPDATE_CARDS = f"""
UPDATE loyalty_cards AS c SET
    {", ".join(f"{col} = u.{col}" for col in CARD_CHANGE_COLUMNS[1:])}, updated_at = now()
FROM unnest($1::card_change[]) AS u
WHERE c.id = u.id
"""  # noqa: S608 - no outside input


async def update_cards(conn: Conn, rows: list[tuple[Any, ...]]) -> None:
    """Write balances (rows in ``CARD_CHANGE_COLUMNS`` order, each card once)."""
    if rows:
        await conn.execute(_UPDATE_CARDS, rows)


PURCHASE_COLUMNS = (
    "merchant_id",
    "order_reference",
    "card_id",
    "store_id",
    "amount_cents",
    "currency",
    "points_earned",
    "stamps_earned",
    "refunded_cents",
    "points_voided",
    "stamps_voided",
    "source_event_id",
    "occurred_at",
    "earnings",
    "tier",
    "tier_points",
)

_UPDATE_PURCHASES = """
UPDATE purchases AS p SET refunded_cents = u.refunded, points_voided = u.points_voided,
    stamps_voided = u.stamps_voided, earnings = u.earnings::jsonb
FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::int[], $5::text[])
    AS u(id, refunded, points_voided, stamps_voided, earnings)
WHERE p.id = u.id
"""

_CAMPAIGNS_AWARDED = """
UPDATE campaigns AS c SET points_awarded = c.points_awarded + u.added
FROM unnest($1::bigint[], $2::bigint[]) AS u(id, added)
WHERE c.id = u.id
"""

_CARD_AWARDS = """
INSERT INTO campaign_card_awards AS a (campaign_id, card_id, awards)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::int[])
ON CONFLICT (campaign_id, card_id) DO UPDATE SET awards = a.awards + EXCLUDED.awards
"""

_INSERT_HELD = """
INSERT INTO held_returns (merchant_id, store_id, order_reference, source_event_id, payload,
    applied_at)
SELECT m, s, o, e, p::jsonb, CASE WHEN a THEN now() END
FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::uuid[], $5::text[], $6::bool[])
    AS u(m, s, o, e, p, a)
"""

_APPLY_HELD = "UPDATE held_returns SET applied_at = now() WHERE id = ANY($1::bigint[])"

_INBOX_STATUS = """
UPDATE processed_events AS e SET status = u.status
FROM unnest($1::uuid[], $2::text[]) AS u(event_id, status)
WHERE e.event_id = u.event_id
"""


class WriteBehind:
    """A batch's append-only writes, sent while its rules go on (same connection, in order).

    PostgreSQL then works on one chunk's ledger rows and card updates while Python applies
    the rules to the next chunk, instead of each waiting for the other. The outbox waits for
    ``flush``: packed once per segment, it is a few rows whatever the segment's size.
    Whatever reads on the connection meanwhile must ``settle()`` first: asyncpg runs one
    operation at a time, and the read must see the rows already taken out of the batch.
    """

    def __init__(self, conn: Conn, rollup: LedgerRollup | None = None) -> None:
        self.conn = conn
        self.rollup = rollup
        self._tail: asyncio.Future[None] | None = None

    def submit(self, state: BatchState, effects: Effects) -> None:
        """Queue the ledger rows and card changes so far, taken out of the batch.

        The batch's not yet written stamps (``state.pending_stamps``) are in these ledger rows
        now: a later stamp history reads them from the ledger, after ``settle()``.
        """
        job = _take_chunk(state, effects, self.rollup)
        if job is None:
            return
        previous = self._tail

        async def write() -> None:
            if previous is not None:
                await previous
            await job.write(self.conn)

        self._tail = asyncio.ensure_future(write())

    async def settle(self) -> None:
        """Wait until every queued write is done; raises what a write raised."""
        if self._tail is not None:
            tail, self._tail = self._tail, None
            await tail

    async def abandon(self) -> None:
        """Wait for the queued writes, ignoring their errors: the batch fails anyway, and its
        transaction can only roll back once the connection is idle again."""
        with contextlib.suppress(Exception):
            await self.settle()


@dataclass
class _Chunk:
    ledger: list[LedgerRow]
    cards: list[tuple[Any, ...]]
    rollup: LedgerRollup | None

    async def write(self, conn: Conn) -> None:
        if self.rollup is not None:
            await self.rollup.stand_aside(conn)
        await update_cards(conn, self.cards)
        await copy_ledger(conn, self.ledger, self.rollup)


async def copy_ledger(conn: Conn, rows: list[LedgerRow], rollup: LedgerRollup | None) -> None:
    """Insert ledger rows; with ``rollup``, their daily totals are the engine's to write."""
    if rows:
        if rollup is not None:
            await rollup.stand_aside(conn)
        await conn.copy_records_to_table("ledger_entries", records=rows, columns=LEDGER_COLUMNS)


def _take_chunk(state: BatchState, effects: Effects, rollup: LedgerRollup | None) -> _Chunk | None:
    if not effects.ledger:
        return None
    # Values are copied now: the rules go on changing the cards while the write waits.
    dirty = [c for c in state.cards.values() if c.dirty and not c.is_new]
    if rollup is not None:
        rollup.add(state, effects.ledger)
        rollup.add_cards(state, dirty)
    chunk = _Chunk(
        ledger=effects.ledger,
        rollup=rollup,
        cards=[(c.card_id, *_balance_values(c.balance)) for c in dirty],
    )
    for card in dirty:
        card.dirty = False
    effects.ledger = []
    state.pending_stamps.clear()
    return chunk


def outbox_rows(entries: list[OutboxEntry]) -> list[Any]:
    """The outbox rows of a segment's messages (``engine.outbox.pack``)."""
    return pack_payloads((o.topic, o.key, o.payload) for o in entries)


async def flush(
    conn: Conn,
    state: BatchState,
    effects: Effects,
    customers: list[Any],
    rollup: LedgerRollup | None = None,
) -> None:
    """Write every effect of a batch segment (the caller holds the transaction).

    ``rollup``: the engine sums the ledger's daily totals itself (``engine.rollups``), and
    the caller writes them once, at the batch's end (``rollup.write``); without it, the
    database's trigger does.
    """
    new_customers = [c for c in customers if c.is_new]
    if new_customers:
        await conn.execute(
            _INSERT_CUSTOMERS,
            *_columns(
                [
                    (
                        c.customer_id,
                        c.merchant_id,
                        c.email,
                        c.customer_ref,
                        c.values.get("phone"),
                        c.values.get("first_name"),
                        c.values.get("last_name"),
                        c.values.get("locale") or "en",
                    )
                    for c in new_customers
                ],
                8,
            ),
        )
    new_cards = [c for c in state.cards.values() if c.is_new]
    if new_cards:
        await conn.execute(
            _INSERT_CARDS,
            *_columns(
                [
                    (
                        c.card_id,
                        c.card_number,
                        c.qr_token,
                        c.merchant_id,
                        c.program_id,
                        c.customer_id,
                        c.store_id,
                        c.apple_authentication_token,
                        *_balance_values(c.balance),
                    )
                    for c in new_cards
                ],
                33,
            ),
        )
    dirty = [c for c in state.cards.values() if c.dirty and not c.is_new]
    if dirty:
        if rollup is not None:
            rollup.add_cards(state, dirty)
            await rollup.stand_aside(conn)
        await update_cards(conn, [(c.card_id, *_balance_values(c.balance)) for c in dirty])
    await _write_purchases(conn, state)
    await _write_lots(conn, state)
    if state.tier_changes:
        await conn.execute(_TIER_CHANGES, *_columns(state.tier_changes, 7))
        state.tier_changes.clear()
    await _write_campaign_awards(conn, state)
    await _write_held(conn, state)
    if rollup is not None:
        rollup.add(state, effects.ledger)
    await copy_ledger(conn, effects.ledger, rollup)
    await write_packs(conn, outbox_rows(effects.outbox))
    if effects.inbox_status:
        await conn.execute(
            _INBOX_STATUS, list(effects.inbox_status), list(effects.inbox_status.values())
        )
    for card in state.cards.values():
        card.is_new = card.dirty = False
    effects.ledger.clear()
    effects.outbox.clear()
    effects.inbox_status.clear()


# A balance's values after the card's id, in ``CARD_CHANGE_COLUMNS`` order.
_balance_values: Callable[[Any], tuple[Any, ...]] = operator.attrgetter(*BALANCE_COLUMNS[1:])


async def _write_purchases(conn: Conn, state: BatchState) -> None:
    new = [p for p in state.purchases.values() if p.is_new]
    if new:
        # COPY: a third less client CPU than the same rows as unnest arrays (measured).
        await conn.copy_records_to_table(
            "purchases",
            records=[
                (
                    p.merchant_id,
                    p.order_reference,
                    p.card_id,
                    p.store_id,
                    p.record.amount_cents,
                    p.currency,
                    p.record.points_earned,
                    p.record.stamps_earned,
                    p.record.refunded_cents,
                    p.record.points_voided,
                    p.record.stamps_voided,
                    p.source_event_id,
                    p.occurred_at,
                    _earnings_json(p),
                    p.tier,
                    p.tier_points,
                )
                for p in new
            ],
            columns=PURCHASE_COLUMNS,
        )
    changed = [p for p in state.purchases.values() if p.dirty and not p.is_new]
    if changed:
        await conn.execute(
            _UPDATE_PURCHASES,
            *_columns(
                [
                    (
                        p.purchase_id,
                        p.record.refunded_cents,
                        p.record.points_voided,
                        p.record.stamps_voided,
                        _earnings_json(p),
                    )
                    for p in changed
                ],
                5,
            ),
        )
    for p in state.purchases.values():
        p.is_new = p.dirty = False


LOT_COLUMNS = (
    "card_id",
    "lot_no",
    "merchant_id",
    "points",
    "remaining",
    "earned_at",
    "releases_at",
    "expires_at",
    "pending",
    "source_event_id",
)

_TIER_CHANGES = """
INSERT INTO tier_changes (card_id, merchant_id, from_tier, to_tier, qualifying_points,
    occurred_at, source_event_id)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::bigint[],
    $6::timestamptz[], $7::uuid[])
"""

_UPDATE_LOTS = """
UPDATE point_lots AS l SET remaining = u.remaining, pending = u.pending
FROM unnest($1::bigint[], $2::int[], $3::bigint[], $4::bool[])
    AS u(card_id, lot_no, remaining, pending)
WHERE l.card_id = u.card_id AND l.lot_no = u.lot_no
"""


async def _write_lots(conn: Conn, state: BatchState) -> None:
    """The segment's new lots (COPY, as they stand now) and the changes of loaded ones."""
    new: list[tuple[Any, ...]] = []
    changed: list[tuple[int, int, int, bool]] = []
    for card in state.cards.values():
        if card.new_lots:
            new.extend(
                (
                    lot.card_id,
                    lot.lot_no,
                    card.merchant_id,
                    lot.points,
                    lot.remaining,
                    lot.earned_at,
                    lot.releases_at,
                    lot.expires_at,
                    lot.pending,
                    lot.source_event_id,
                )
                for lot in card.new_lots
            )
            for lot in card.new_lots:
                lot.is_new = lot.dirty = False
            card.new_lots = []
        if card.lots is not None:
            for lot in card.lots:
                if lot.dirty:
                    changed.append((lot.card_id, lot.lot_no, lot.remaining, lot.pending))
                    lot.dirty = False
    if new:
        await conn.copy_records_to_table("point_lots", records=new, columns=LOT_COLUMNS)
    if changed:
        await conn.execute(_UPDATE_LOTS, *_columns(changed, 4))


def _earnings_json(p: PurchaseRow) -> str | None:
    return None if p.earnings is None else orjson.dumps(p.earnings.as_json()).decode()


# The database's check that a campaign's counter stays within its budget: the batch read the
# counter without a lock (``state.load_stores``); broken here, others awarded meanwhile.
_WITHIN_BUDGET = "ck_campaigns_within_budget"


async def _write_campaign_awards(conn: Conn, state: BatchState) -> None:
    """Move the campaigns' counters by this segment's awards; ``BudgetOvertaken`` when they
    no longer fit in a budget (its row is locked by this update until the commit, so what
    fits now stays so)."""
    if state.campaign_added:
        added = state.campaign_added
        try:
            await conn.execute(_CAMPAIGNS_AWARDED, list(added), list(added.values()))
        except asyncpg.CheckViolationError as exc:
            if exc.constraint_name != _WITHIN_BUDGET:
                raise
            lock_campaigns(added)
            raise BudgetOvertaken(f"campaign(s) {sorted(added)}: budget spent meanwhile") from exc
        added.clear()
    if state.card_awards_added:
        rows = state.card_awards_added
        await conn.execute(
            _CARD_AWARDS, [k[0] for k in rows], [k[1] for k in rows], list(rows.values())
        )
        rows.clear()


async def _write_held(conn: Conn, state: BatchState) -> None:
    rows = [h for hs in state.held.values() for h in hs]
    new = [h for h in rows if h.is_new]
    if new:
        await conn.execute(
            _INSERT_HELD,
            *_columns(
                [
                    (
                        h.merchant_id,
                        h.store_id,
                        h.order_reference,
                        h.source_event_id,
                        json.dumps(h.payload),
                        h.applied,
                    )
                    for h in new
                ],
                6,
            ),
        )
    applied = [h.held_id for h in rows if h.applied and not h.is_new and h.held_id is not None]
    if applied:
        await conn.execute(_APPLY_HELD, applied)
    for key in list(state.held):
        state.held[key] = [h for h in state.held[key] if not h.applied]
        for h in state.held[key]:
            h.is_new = False


def _columns(rows: list[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows to the column arrays ``unnest`` takes."""
    return [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


def ledger_row(
    *,
    card_id: int,
    merchant_id: int,
    store_id: int | None,
    entry_type: str,
    stamps_delta: int,
    points_delta: int,
    stamp_count_after: int,
    points_balance_after: int,
    occurred_at: datetime,
    source_event_id: uuid.UUID | None,
    purchase_amount_cents: int | None = None,
    order_reference: str | None = None,
    reward_code: str | None = None,
    reward_description: str | None = None,
    staff_pin_id: int | None = None,
    staff_ref: str | None = None,
    actor: str | None = None,
    notes: str | None = None,
    pending_delta: int = 0,
    lots: str | None = None,
) -> LedgerRow:
    """One ledger row in ``LEDGER_COLUMNS`` order."""
    return (
        card_id,
        merchant_id,
        store_id,
        entry_type,
        stamps_delta,
        points_delta,
        stamp_count_after,
        points_balance_after,
        purchase_amount_cents,
        order_reference,
        reward_code,
        reward_description,
        staff_pin_id,
        staff_ref,
        actor,
        source_event_id,
        notes,
        occurred_at,
        pending_delta,
        lots,
    )
