"""What one batch knows: its stores and programs, cards, customers and purchases.

Everything is loaded set-based, a few queries per batch whatever its size, and kept in
memory while the batch's events are applied in order. Cards are locked (``FOR UPDATE``) in
id order, so two workers can never deadlock on the same cards; the active campaigns of the
batch's programs are read as committed, their budgets checked when their counters move.

About 500 lines: every load of a batch (stores, programs and campaigns, orders, cards,
customers, stamp history) with its SQL beside the rows it builds.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from core.enums import ExpiryPolicy, ProgramType
from domain.engine.conn import Conn
from domain.rules.basket import Earnings
from domain.rules.campaigns import WEEKDAYS, CampaignTerms, parse_hours
from domain.rules.earn import projected_history
from domain.rules.lots import Lot
from domain.rules.tiers import TierPlan, tier_plan
from domain.rules.values import CardBalance, ProgramTerms, RewardTerms, StampHistory
from domain.rules.void import PurchaseRecord


@dataclass(frozen=True)
class StoreInfo:
    """A live store of a live merchant, with the merchant's program (None when it has none)."""

    store_id: int
    store_code: str
    merchant_id: int
    merchant_code: str
    allow_self_enrollment: bool
    cross_location: bool
    terms: ProgramTerms | None


@dataclass
class CardRow:
    """A card as the batch holds it: identity, owner and the mutable balance."""

    balance: CardBalance
    card_number: str
    merchant_id: int
    program_id: int
    customer_id: int
    store_id: int | None
    is_new: bool = False
    dirty: bool = False
    qr_token: str = ""
    apple_authentication_token: str = ""
    created_at: datetime | None = None
    # (last activity, active) as the database last had them: the statistics' card counts move
    # from these to the card's new values when the engine writes it (``engine.rollups``).
    written: tuple[datetime | None, bool] | None = None
    # The latest month of activity the finance rollups hold for the card (``engine.rollups``;
    # None: none, or a card new in this batch).
    active_month: date | None = None
    # Its open point lots, loaded only when a debit needs them (None: not loaded), and the
    # lots this batch created (written at the segment's end).
    lots: list[Lot] | None = None
    new_lots: list[Lot] = field(default_factory=list)
    # Tiers: purchases that may enter or leave the card's window during the batch
    # (order key -> [occurred_at, net points]; ``load_window_rows``), and its tier moves.
    window_rows: dict[str, list[Any]] | None = None

    @property
    def card_id(self) -> int:
        return self.balance.card_id


@dataclass
class CustomerRow:
    """A customer the batch knows of (loaded, or created by an enrolment of this batch)."""

    customer_id: int
    merchant_id: int
    email: str | None
    customer_ref: str | None
    is_new: bool = False
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class PurchaseRow:
    """A purchase record and whether this batch created or changed it."""

    purchase_id: int | None
    merchant_id: int
    order_reference: str
    card_id: int | None
    store_id: int | None
    currency: str
    source_event_id: uuid.UUID
    occurred_at: datetime
    record: PurchaseRecord
    is_new: bool = False
    dirty: bool = False
    earnings: Earnings | None = None
    """What its lines and campaign bonuses earned (None: voided in proportion, as in v1)."""
    tier: str | None = None
    tier_points: int = 0


@dataclass
class HeldRow:
    """A return waiting for its purchase."""

    held_id: int | None
    merchant_id: int
    store_id: int
    order_reference: str
    source_event_id: uuid.UUID
    payload: dict[str, Any]
    is_new: bool = False
    applied: bool = False


@dataclass
class BatchState:
    """The loaded world of one batch, indexed the ways the events look things up."""

    stores: dict[str, StoreInfo] = field(default_factory=dict)
    cards: dict[int, CardRow] = field(default_factory=dict)
    card_by_number: dict[str, int] = field(default_factory=dict)
    card_by_qr: dict[str, int] = field(default_factory=dict)
    customers_by_email: dict[tuple[int, str], CustomerRow] = field(default_factory=dict)
    customers_by_ref: dict[tuple[int, str], CustomerRow] = field(default_factory=dict)
    cards_by_customer: dict[int, list[int]] = field(default_factory=dict)
    purchases: dict[tuple[int, str], PurchaseRow] = field(default_factory=dict)
    held: dict[tuple[int, str], list[HeldRow]] = field(default_factory=dict)
    # Stamp ledger rows written by this batch, for the rare event older than a card's last stamp.
    pending_stamps: dict[int, list[tuple[datetime, int]]] = field(default_factory=dict)
    # Campaigns of the batch's programs (as read, ``load_stores``): points awarded so far,
    # and purchases of a card each rewarded; ``*_added``: this segment's part, to be written.
    campaign_awarded: dict[int, int] = field(default_factory=dict)
    campaign_added: dict[int, int] = field(default_factory=dict)
    # Only campaigns with ``max_awards_per_card`` count a card's awards (``limited``).
    limited_campaigns: set[int] = field(default_factory=set)
    card_awards: dict[tuple[int, int], int] = field(default_factory=dict)
    card_awards_added: dict[tuple[int, int], int] = field(default_factory=dict)
    # Tier moves to record (``tier_changes``): card, merchant, from, to, qualifying points,
    # when, source event.
    tier_changes: list[tuple[Any, ...]] = field(default_factory=list)

    def add_card(self, row: CardRow) -> None:
        """Index a card every way an event can name it."""
        self.cards[row.card_id] = row
        self.card_by_number[row.card_number] = row.card_id
        if row.qr_token:
            self.card_by_qr[row.qr_token] = row.card_id
        self.cards_by_customer.setdefault(row.customer_id, []).append(row.card_id)

    def add_customer(self, row: CustomerRow) -> None:
        """Index a customer by email and by the merchant's own customer id."""
        if row.email:
            self.customers_by_email[(row.merchant_id, row.email)] = row
        if row.customer_ref:
            self.customers_by_ref[(row.merchant_id, row.customer_ref)] = row


@dataclass(frozen=True)
class Wanted:
    """What a batch's events ask for, gathered before loading."""

    store_codes: set[str] = field(default_factory=set)
    card_numbers: set[str] = field(default_factory=set)
    qr_codes: set[str] = field(default_factory=set)
    codes_needing_merchant: set[str] = field(default_factory=set)
    emails: set[tuple[str, str]] = field(default_factory=set)  # (store_code, email)
    refs: set[tuple[str, str]] = field(default_factory=set)  # (store_code, customer_ref)
    orders: set[tuple[str, str]] = field(default_factory=set)  # (store_code, order_reference)
    span: list[datetime] = field(default_factory=list)
    """The earliest and latest event times of the batch (tiers' windows move between)."""


_STORES_SQL = """
SELECT s.id, s.code, s.merchant_id, m.code AS merchant_code, m.timezone,
       m.allow_self_enrollment, m.allow_cross_location_redemption,
       p.id AS program_id, p.type, p.currency, p.stamps_target, p.stamps_reward_description,
       p.points_per_euro, p.minimum_purchase_cents, p.cooldown_minutes, p.max_daily_stamps,
       p.welcome_bonus_points, p.minimum_redemption_points, p.points_expiration_days,
       p.is_active, p.non_earning_categories, p.pending_days, p.expiry_policy,
       p.expiry_reminder_days, p.tiers, p.tier_window, p.tier_grace_days,
       (SELECT json_agg(json_build_array(r.code, r.name, r.points_required, r.is_active)
                        ORDER BY r.id)
        FROM rewards r WHERE r.program_id = p.id)::text AS rewards,
       EXISTS (SELECT FROM campaigns k WHERE k.program_id = p.id AND k.status = 'active'
               AND k.deleted_at IS NULL) AS has_campaigns
FROM stores s
JOIN merchants m ON m.id = s.merchant_id AND m.deleted_at IS NULL
LEFT JOIN loyalty_programs p ON p.merchant_id = m.id AND p.deleted_at IS NULL
WHERE s.code = ANY($1::text[]) AND s.deleted_at IS NULL
"""

# Read without a lock: a batch judges the budgets on what was committed when it read them,
# and moves the counters at its end (``writes._write_campaign_awards``), where the database's
# check (``ck_campaigns_within_budget``) tells whether others awarded meanwhile more than the
# budget had room for. Until 2026-12-07 every batch locked the row here, so a program with a
# campaign ran one batch at a time, the two batches in flight and the workers of a group alike.
_CAMPAIGNS_SQL = """
SELECT id, program_id, code, multiplier, bonus_points, min_basket_cents, starts_at, ends_at,
       days, hours, skus, categories, budget_points, max_awards_per_card, points_awarded
FROM campaigns
WHERE program_id = ANY($1::bigint[]) AND status = 'active' AND deleted_at IS NULL
ORDER BY id
"""

# Campaigns whose budget ran short under a batch (``BudgetOvertaken``), locked from then on in
# this process: the budget is nearly spent, so batches would keep overtaking each other.
# Locked before any card, by every batch that locks them: no deadlock among those. A batch of
# another process that still reads them unlocked takes the row at its end, after its cards:
# the two may deadlock once, which PostgreSQL breaks and the worker retries (``CONTENTION``).
_CAMPAIGNS_LOCKED_SQL = _CAMPAIGNS_SQL + "FOR UPDATE\n"
_LOCKED_CAMPAIGNS: set[int] = set()


class BudgetOvertaken(Exception):
    """Other transactions awarded a campaign's points after this batch read its budget, and
    the batch's awards no longer fit in it: the batch rolls back and is applied again with the
    campaign locked (``lock_campaigns``)."""


def lock_campaigns(ids: Iterable[int]) -> None:
    """From now on, batches of this process lock these campaigns when they read them."""
    _LOCKED_CAMPAIGNS.update(ids)


_CARD_AWARDS_SQL = """
SELECT campaign_id, card_id, awards FROM campaign_card_awards
WHERE campaign_id = ANY($1::bigint[]) AND card_id = ANY($2::bigint[])
"""

# One query per way of naming a card, run only when the batch names cards that way.
_IDS_BY_CUSTOMER_SQL = """
SELECT c.id FROM loyalty_cards c
JOIN customers cu ON cu.id = c.customer_id AND cu.deleted_at IS NULL
WHERE c.deleted_at IS NULL AND (
    (cu.merchant_id, cu.email) IN (SELECT * FROM unnest($1::bigint[], $2::text[]))
    OR (cu.merchant_id, cu.customer_ref) IN (SELECT * FROM unnest($3::bigint[], $4::text[])))
"""

# Named by id, number or QR token, in one statement, locked in id order. The customer's email
# and reference are not read: enrolments find customers with their own query.
# The columns of ``CardBalance``, in its order (its ``card_id`` is the card's ``id``): the
# cards' read returns them first, so a row's balance is built by position (measured: 5.2 ->
# 2.6 us a card against 36 lookups by name), and the cards' update writes them
# (``writes.CARD_CHANGE_COLUMNS``).
BALANCE_COLUMNS = tuple("id" if f.name == "card_id" else f.name for f in fields(CardBalance))
_CARD_COLUMNS = (
    "card_number",
    "qr_token",
    "merchant_id",
    "program_id",
    "customer_id",
    "store_id",
    "created_at",
)

_CARDS_SQL = f"""
SELECT {", ".join(f"c.{col}" for col in BALANCE_COLUMNS + _CARD_COLUMNS)},
       (SELECT max(a.month) FROM card_active_months a WHERE a.card_id = c.id) AS active_month
FROM loyalty_cards c
WHERE c.deleted_at IS NULL
  AND (c.id = ANY($1::bigint[]) OR c.card_number = ANY($2::text[])
       OR c.qr_token = ANY($3::text[]))
ORDER BY c.id
FOR UPDATE OF c
"""  # noqa: S608 - no outside input

_CUSTOMERS_SQL = """
SELECT id, merchant_id, email, customer_ref FROM customers
WHERE deleted_at IS NULL AND (
    (merchant_id, email) IN (SELECT * FROM unnest($1::bigint[], $2::text[]))
    OR (merchant_id, customer_ref) IN (SELECT * FROM unnest($3::bigint[], $4::text[])))
"""

_PURCHASES_SQL = """
SELECT p.id, p.merchant_id, p.order_reference, p.card_id, p.store_id, p.currency,
       p.amount_cents, p.points_earned, p.stamps_earned, p.refunded_cents, p.points_voided,
       p.stamps_voided, p.source_event_id, p.occurred_at, p.earnings
FROM purchases p
JOIN unnest($1::bigint[], $2::text[]) AS k(merchant_id, order_reference)
  ON p.merchant_id = k.merchant_id AND p.order_reference = k.order_reference
ORDER BY p.id
FOR UPDATE OF p
"""

_ORDER_LOCKS_SQL = """
SELECT pg_advisory_xact_lock(k) FROM (
    SELECT DISTINCT hashtextextended(m::text || ':' || o, 0) AS k
    FROM unnest($1::bigint[], $2::text[]) AS u(m, o)
    ORDER BY 1) AS keys
"""

_HELD_SQL = """
SELECT h.id, h.merchant_id, h.store_id, h.order_reference, h.source_event_id, h.payload
FROM held_returns h
JOIN unnest($1::bigint[], $2::text[]) AS k(merchant_id, order_reference)
  ON h.merchant_id = k.merchant_id AND h.order_reference = k.order_reference
WHERE h.applied_at IS NULL
ORDER BY h.id
FOR UPDATE OF h
"""

_STAMP_HISTORY_SQL = """
SELECT max(occurred_at) FILTER (WHERE occurred_at <= $2) AS last_before,
       coalesce(sum(stamps_delta) FILTER (WHERE occurred_at >= $3 AND occurred_at < $4), 0)
FROM ledger_entries WHERE card_id = $1 AND entry_type = 'stamp_earned'
"""


def campaign_terms(r: Any) -> CampaignTerms:
    """A campaign row (``campaigns``) as the rules read it."""
    return CampaignTerms(
        campaign_id=r["id"],
        code=r["code"],
        multiplier_milli=int(r["multiplier"] * 1000),
        bonus_points=r["bonus_points"],
        min_basket_cents=r["min_basket_cents"],
        starts_at=r["starts_at"],
        ends_at=r["ends_at"],
        days=frozenset(WEEKDAYS.index(d) for d in r["days"] or ()),
        hours=parse_hours(r["hours"]) if r["hours"] else None,
        skus=frozenset(r["skus"] or ()),
        categories=frozenset(r["categories"] or ()),
        budget_points=r["budget_points"],
        max_awards_per_card=r["max_awards_per_card"],
    )


def _terms(
    r: asyncpg.Record,
    rewards: dict[int, dict[str, RewardTerms]],
    campaigns: dict[int, tuple[CampaignTerms, ...]],
) -> ProgramTerms | None:
    if r["program_id"] is None:
        return None
    return ProgramTerms(
        program_id=r["program_id"],
        merchant_id=r["merchant_id"],
        type=ProgramType(r["type"]),
        currency=r["currency"],
        stamps_target=r["stamps_target"],
        stamps_reward_description=r["stamps_reward_description"],
        points_per_euro=r["points_per_euro"],
        minimum_purchase_cents=r["minimum_purchase_cents"],
        cooldown_minutes=r["cooldown_minutes"],
        max_daily_stamps=r["max_daily_stamps"],
        welcome_bonus_points=r["welcome_bonus_points"],
        minimum_redemption_points=r["minimum_redemption_points"],
        points_expiration_days=r["points_expiration_days"],
        expiry_policy=ExpiryPolicy(r["expiry_policy"]),
        pending_days=r["pending_days"],
        expiry_reminder_days=r["expiry_reminder_days"],
        is_active=r["is_active"],
        timezone=ZoneInfo(r["timezone"]),
        rewards=rewards.get(r["program_id"], {}),
        non_earning_categories=frozenset(r["non_earning_categories"] or ()),
        campaigns=campaigns.get(r["program_id"], ()),
        tiers=tier_plan(_as_list(r["tiers"]), r["tier_window"], r["tier_grace_days"])
        if r["tiers"] and r["tiers"] != "[]"
        else _NO_TIERS,
    )


async def load_stores(conn: Conn, state: BatchState, codes: set[str]) -> None:
    """Stores by code, with their merchant, program and rewards (one query), and the
    programs' active campaigns, locked (a second one, only for programs running one)."""
    if not codes:
        return
    rows = await conn.fetch(_STORES_SQL, list(codes))
    # The rewards come as JSON beside their program: one round trip fewer per batch. As
    # text: connections with a JSON codec (the admin's) would decode it, the engine's not.
    rewards: dict[int, dict[str, RewardTerms]] = {
        r["program_id"]: {
            code: RewardTerms(code, name, points, active)
            for code, name, points, active in json.loads(r["rewards"])
        }
        for r in rows
        if r["rewards"] is not None
    }
    campaigns: dict[int, tuple[CampaignTerms, ...]] = {}
    # Most programs run no campaign: their batches skip the campaigns' read (a round trip). A
    # campaign started between the two reads counts from the next batch on, as one started
    # a moment later would.
    with_campaigns = [r["program_id"] for r in rows if r["has_campaigns"]]
    if with_campaigns:
        found = await conn.fetch(_CAMPAIGNS_SQL, with_campaigns)
        if not _LOCKED_CAMPAIGNS.isdisjoint(c["id"] for c in found):
            found = await conn.fetch(_CAMPAIGNS_LOCKED_SQL, with_campaigns)
        for c in found:
            campaigns[c["program_id"]] = (*campaigns.get(c["program_id"], ()), campaign_terms(c))
            state.campaign_awarded[c["id"]] = c["points_awarded"]
            if c["max_awards_per_card"] is not None:
                state.limited_campaigns.add(c["id"])
    for r in rows:
        state.stores[r["code"]] = StoreInfo(
            store_id=r["id"],
            store_code=r["code"],
            merchant_id=r["merchant_id"],
            merchant_code=r["merchant_code"],
            allow_self_enrollment=r["allow_self_enrollment"],
            cross_location=r["allow_cross_location_redemption"],
            terms=_terms(r, rewards, campaigns),
        )


def _merchant_keyed(state: BatchState, pairs: set[tuple[str, str]]) -> tuple[list[int], list[str]]:
    # Each (merchant, value) once: two stores of a merchant naming one order would make the
    # JOINs on unnest below return its rows twice, and a held return be applied twice.
    keyed: dict[tuple[int, str], None] = {}
    for store_code, value in pairs:
        store = state.stores.get(store_code)
        if store is not None:
            keyed[(store.merchant_id, value)] = None
    return [m for m, _ in keyed], [v for _, v in keyed]


async def load_cards(
    conn: Conn, state: BatchState, wanted: Wanted, extra_card_ids: set[int]
) -> None:
    """Every card the batch names, and the customers enrolments look for.

    The cards are locked in one query, in id order, whichever way they were named.
    """
    em, ev = _merchant_keyed(state, wanted.emails)
    rm, rv = _merchant_keyed(state, wanted.refs)
    ids = set(extra_card_ids)
    if em or rm:
        ids.update(r[0] for r in await conn.fetch(_IDS_BY_CUSTOMER_SQL, em, ev, rm, rv))
    if ids or wanted.card_numbers or wanted.qr_codes:
        rows = await conn.fetch(
            _CARDS_SQL, list(ids), list(wanted.card_numbers), list(wanted.qr_codes)
        )
        for r in rows:
            state.add_card(_card_row(r))
    if state.limited_campaigns and state.cards:
        for r in await conn.fetch(
            _CARD_AWARDS_SQL, list(state.limited_campaigns), list(state.cards)
        ):
            state.card_awards[(r["campaign_id"], r["card_id"])] = r["awards"]
    if em or rm:
        for r in await conn.fetch(_CUSTOMERS_SQL, em, ev, rm, rv):
            state.add_customer(
                CustomerRow(r["id"], r["merchant_id"], r["email"], r["customer_ref"])
            )


def _card_row(r: asyncpg.Record) -> CardRow:
    balance = CardBalance(*r[:_BALANCE_WIDTH])
    number, qr_token, merchant_id, program_id, customer_id, store_id, created_at, month = r[
        _BALANCE_WIDTH:
    ]
    return CardRow(
        balance=balance,
        card_number=number,
        merchant_id=merchant_id,
        program_id=program_id,
        customer_id=customer_id,
        store_id=store_id,
        qr_token=qr_token,
        created_at=created_at,
        written=(balance.last_activity_at, balance.is_active),
        active_month=month,
    )


_BALANCE_WIDTH = len(BALANCE_COLUMNS)


async def load_orders(conn: Conn, state: BatchState, wanted: Wanted) -> None:
    """Purchases the batch's purchases and returns name, and returns held for them.

    An order's purchase and its return may travel on different partitions to different
    workers; a lock per order (taken in a fixed order) makes one of them see the other.
    """
    merchants, orders = _merchant_keyed(state, wanted.orders)
    if not merchants:
        return
    await conn.execute(_ORDER_LOCKS_SQL, merchants, orders)
    for r in await conn.fetch(_PURCHASES_SQL, merchants, orders):
        state.purchases[(r["merchant_id"], r["order_reference"])] = PurchaseRow(
            purchase_id=r["id"],
            merchant_id=r["merchant_id"],
            order_reference=r["order_reference"],
            card_id=r["card_id"],
            store_id=r["store_id"],
            currency=r["currency"],
            source_event_id=r["source_event_id"],
            occurred_at=r["occurred_at"],
            record=PurchaseRecord(
                amount_cents=r["amount_cents"],
                points_earned=r["points_earned"],
                stamps_earned=r["stamps_earned"],
                refunded_cents=r["refunded_cents"],
                points_voided=r["points_voided"],
                stamps_voided=r["stamps_voided"],
            ),
            earnings=Earnings.from_json(_as_dict(r["earnings"])) if r["earnings"] else None,
        )
    for r in await conn.fetch(_HELD_SQL, merchants, orders):
        state.held.setdefault((r["merchant_id"], r["order_reference"]), []).append(
            HeldRow(
                held_id=r["id"],
                merchant_id=r["merchant_id"],
                store_id=r["store_id"],
                order_reference=r["order_reference"],
                source_event_id=r["source_event_id"],
                payload=_as_dict(r["payload"]),
            )
        )


_WINDOW_ROWS_SQL = """
SELECT p.card_id, p.order_reference, p.occurred_at, p.points_earned - p.points_voided AS net
FROM purchases p
JOIN unnest($1::bigint[], $2::timestamptz[], $3::timestamptz[]) AS u(card_id, lo, hi)
  ON p.card_id = u.card_id AND p.occurred_at >= u.lo AND p.occurred_at < u.hi
"""


async def load_window_rows(
    conn: Conn, state: BatchState, ranges: dict[int, tuple[datetime, datetime]]
) -> None:
    """For cards of tiered programs: their purchases whose time lies where the batch moves
    their window (``engine.tiers``), one query for the batch."""
    if not ranges:
        return
    ids = list(ranges)
    rows = await conn.fetch(
        _WINDOW_ROWS_SQL, ids, [ranges[i][0] for i in ids], [ranges[i][1] for i in ids]
    )
    for card_id in ids:
        state.cards[card_id].window_rows = {}
    for r in rows:
        window = state.cards[r["card_id"]].window_rows
        assert window is not None
        window[r["order_reference"]] = [r["occurred_at"], r["net"]]


_LOTS_SQL = """
SELECT card_id, lot_no, points, remaining, earned_at, releases_at, expires_at, pending,
       source_event_id
FROM point_lots WHERE card_id = ANY($1::bigint[]) AND remaining > 0
ORDER BY card_id, lot_no
"""


async def load_lots(
    conn: Conn, cards: list[CardRow], settle: Callable[[], Awaitable[None]] | None = None
) -> None:
    """The open lots of ``cards`` (those not loaded yet), with the lots this batch made.

    The batch's own lots are written at its end only, so the database holds none of them.
    """
    todo = [c for c in cards if c.lots is None]
    if not todo:
        return
    stored = [c.card_id for c in todo if not c.is_new]
    found: dict[int, list[Lot]] = {}
    if stored:
        if settle is not None:
            await settle()
        for r in await conn.fetch(_LOTS_SQL, stored):
            found.setdefault(r["card_id"], []).append(
                Lot(
                    card_id=r["card_id"],
                    lot_no=r["lot_no"],
                    points=r["points"],
                    remaining=r["remaining"],
                    earned_at=r["earned_at"],
                    releases_at=r["releases_at"],
                    expires_at=r["expires_at"],
                    pending=r["pending"],
                    source_event_id=r["source_event_id"],
                )
            )
    for card in todo:
        card.lots = [*found.get(card.card_id, ()), *card.new_lots]


_NO_TIERS = TierPlan()


def _as_list(value: Any) -> list[dict[str, Any]]:
    return value if isinstance(value, list) else list(json.loads(value))


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else dict(json.loads(value))


async def stamp_history(
    conn: Conn,
    state: BatchState,
    card: CardRow,
    terms: ProgramTerms,
    at: datetime,
    settle: Callable[[], Awaitable[None]] | None = None,
) -> StampHistory:
    """Earlier stamps as the cooldown and the daily cap see them at ``at``.

    The card's projection answers for events in order (the usual case); an event older than
    the card's last stamp asks the ledger, plus this batch's not yet written stamps.
    ``settle`` waits for this batch's writes in flight (``writes.WriteBehind``) first.
    """
    known = projected_history(card.balance, terms.local_day(at), at)
    if known is not None:
        return known
    return await _history_from_ledger(conn, state, card, terms, at, settle)


async def _history_from_ledger(
    conn: Conn,
    state: BatchState,
    card: CardRow,
    terms: ProgramTerms,
    at: datetime,
    settle: Callable[[], Awaitable[None]] | None,
) -> StampHistory:
    day = terms.local_day(at)
    start = datetime(day.year, day.month, day.day, tzinfo=terms.timezone)
    end = start + timedelta(days=1)
    last: datetime | None = None
    on_day = 0
    if settle is not None:
        await settle()
    # Asked even for a card new in this batch: its first stamps may be written already.
    row = await conn.fetchrow(_STAMP_HISTORY_SQL, card.card_id, at, start, end)
    if row is not None:
        last, on_day = row[0], int(row[1])
    for when, stamps in state.pending_stamps.get(card.card_id, []):
        if when <= at and (last is None or when > last):
            last = when
        if start <= when < end:
            on_day += stamps
    return StampHistory(last, on_day)
