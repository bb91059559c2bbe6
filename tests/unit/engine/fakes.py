"""An in-memory unit of work: the engine's handlers run against it exactly as against
PostgreSQL (``domain.engine.unit_of_work.UnitOfWork``), in microseconds, with no stack.

Its tables are dicts; ``load`` hands the batch deep copies (as a database hands fresh rows),
so a batch that fails leaves them as they were, like a rolled-back transaction. The expiry run
applies ``domain.rules.expire`` card by card: the rule the SQL of ``engine.expiry`` follows.
"""

from __future__ import annotations

import copy
import itertools
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from core.commands import ExpiryRun
from domain.engine.apply import Origin, apply_decision
from domain.engine.expiry import RunTotals
from domain.engine.outputs import OutboxEntry
from domain.engine.state import (
    BatchState,
    CardRow,
    CustomerRow,
    HeldRow,
    PurchaseRow,
    StoreInfo,
    Wanted,
)
from domain.engine.tiers import window_ranges
from domain.engine.writes import Effects, LedgerRow
from domain.rules.earn import projected_history
from domain.rules.expire import decide_run, run_decisions
from domain.rules.lots import Lot
from domain.rules.tiers import judge_daily, qualifying_in_window, window_start
from domain.rules.values import ProgramTerms, StampHistory

# Positions in a ledger row (``writes.LEDGER_COLUMNS``).
_CARD, _TYPE, _STAMPS, _AT = 0, 3, 4, 17


class FakeUnitOfWork:
    """The database of one test, in memory."""

    def __init__(self) -> None:
        self.stores: dict[str, StoreInfo] = {}
        self.cards: dict[int, CardRow] = {}
        self.customers: dict[int, CustomerRow] = {}
        self.purchases: dict[tuple[int, str], PurchaseRow] = {}
        self.held: dict[tuple[int, str], list[HeldRow]] = {}
        self.inbox: dict[uuid.UUID, tuple[str, str]] = {}
        self.ledger: list[LedgerRow] = []
        self.outbox: list[OutboxEntry] = []
        # Events another worker commits while this one works (a rebalance overlap).
        self.committed_elsewhere: set[uuid.UUID] = set()
        # Campaigns' points awarded, and purchases of a card each rewarded.
        self.campaign_awarded: dict[int, int] = {}
        self.card_awards: dict[tuple[int, int], int] = {}
        self.point_lots: dict[int, dict[int, Lot]] = {}  # card id -> lot number -> lot
        self.tier_changes: list[tuple[Any, ...]] = []
        self._ids = itertools.count(1)

    # --- the unit of work -----------------------------------------------------------------

    async def seen(self, event_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Events of the inbox."""
        return {i for i in event_ids if i in self.inbox}

    async def load(self, state: BatchState, wanted: Wanted) -> None:
        """Copies of what the batch names, indexed as PostgreSQL's loads index them."""
        for code in wanted.store_codes:
            if code in self.stores:
                state.stores[code] = self.stores[code]
        for store_code, reference in wanted.orders:
            store = self.stores.get(store_code)
            if store is None:
                continue
            key = (store.merchant_id, reference)
            if key in self.purchases:
                state.purchases[key] = copy.deepcopy(self.purchases[key])
            if key in self.held:
                state.held[key] = copy.deepcopy(self.held[key])
        ids = {p.card_id for p in state.purchases.values() if p.card_id is not None}
        for card in self.cards.values():
            if card.card_number in wanted.card_numbers or card.qr_token in wanted.qr_codes:
                ids.add(card.card_id)
        named = [(code, "email", v) for code, v in wanted.emails]
        named += [(code, "customer_ref", v) for code, v in wanted.refs]
        for store_code, field, value in named:
            store = self.stores.get(store_code)
            for customer in self.customers.values():
                if store is None or customer.merchant_id != store.merchant_id:
                    continue
                if getattr(customer, field) != value:
                    continue
                state.add_customer(copy.deepcopy(customer))
                cid = customer.customer_id
                ids.update(c.card_id for c in self.cards.values() if c.customer_id == cid)
        for card_id in sorted(ids):
            if card_id in self.cards:
                state.add_card(copy.deepcopy(self.cards[card_id]))
        for card_id, (lo, hi) in window_ranges(state, wanted.span).items():
            rows = state.cards[card_id].window_rows
            assert rows is not None
            for p in self.purchases.values():
                if p.card_id == card_id and lo <= p.occurred_at < hi:
                    net = p.record.points_earned - p.record.points_voided
                    rows[p.order_reference] = [p.occurred_at, net]
        for store in state.stores.values():
            for c in store.terms.campaigns if store.terms else ():
                state.campaign_awarded[c.campaign_id] = self.campaign_awarded.get(c.campaign_id, 0)
                for card_id in state.cards:
                    pair = (c.campaign_id, card_id)
                    if pair in self.card_awards:
                        state.card_awards[pair] = self.card_awards[pair]

    async def new_ids(self, sequence: str, count: int) -> list[int]:
        """Ids from one counter for every table."""
        return [next(self._ids) for _ in range(count)]

    async def stamp_history(
        self, state: BatchState, card: CardRow, terms: ProgramTerms, at: datetime
    ) -> StampHistory:
        """The projection's answer, else the ledger's (this batch's stamps included)."""
        day = terms.local_day(at)
        known = projected_history(card.balance, day, at)
        if known is not None:
            return known
        start = datetime(day.year, day.month, day.day, tzinfo=terms.timezone)
        end = start + timedelta(days=1)
        stamps = [
            (row[_AT], row[_STAMPS])
            for row in self.ledger
            if row[_CARD] == card.card_id and row[_TYPE] == "stamp_earned"
        ]
        stamps += state.pending_stamps.get(card.card_id, [])
        earlier = [when for when, _ in stamps if when <= at]
        on_day = sum(n for when, n in stamps if start <= when < end)
        return StampHistory(max(earlier) if earlier else None, on_day)

    async def lots(self, state: BatchState, card: CardRow) -> None:
        """Copies of the card's open lots, with the batch's own."""
        stored = self.point_lots.get(card.card_id, {})
        card.lots = [
            *(copy.deepcopy(lot) for lot in stored.values() if lot.remaining > 0),
            *card.new_lots,
        ]

    def write_ahead(self, state: BatchState, effects: Effects) -> None:
        """Nothing is written ahead in memory: ``flush`` writes it all."""

    async def settle(self) -> None:
        """No writes in flight."""

    async def abandon(self) -> None:
        """No writes in flight."""

    async def flush(
        self, state: BatchState, effects: Effects, customers: list[CustomerRow]
    ) -> None:
        """The batch's rows into the tables."""
        for customer in customers:
            self.customers[customer.customer_id] = copy.deepcopy(customer)
        for card in state.cards.values():
            lots = self.point_lots.setdefault(card.card_id, {})
            for lot in (*card.new_lots, *(card.lots or ())):
                if lot.is_new or lot.dirty:
                    lot.is_new = lot.dirty = False
                    lots[lot.lot_no] = copy.deepcopy(lot)
            card.new_lots = []
            if card.is_new or card.dirty:
                stored = copy.deepcopy(card)
                stored.is_new = stored.dirty = False
                stored.lots = None
                stored.window_rows = None
                self.cards[card.card_id] = stored
        for key, purchase in state.purchases.items():
            if purchase.is_new or purchase.dirty:
                self.purchases[key] = copy.deepcopy(purchase)
        for key, rows in state.held.items():
            waiting = [copy.deepcopy(r) for r in rows if not r.applied]
            if waiting:
                self.held[key] = waiting
            else:
                self.held.pop(key, None)
        for cid, added in state.campaign_added.items():
            self.campaign_awarded[cid] = self.campaign_awarded.get(cid, 0) + added
        for pair, count in state.card_awards_added.items():
            self.card_awards[pair] = self.card_awards.get(pair, 0) + count
        state.campaign_added.clear()
        state.card_awards_added.clear()
        self.tier_changes.extend(state.tier_changes)
        state.tier_changes.clear()
        self.ledger.extend(effects.ledger)
        self.outbox.extend(effects.outbox)
        for event_id, status in effects.inbox_status.items():
            topic, _ = self.inbox[event_id]
            self.inbox[event_id] = (topic, status)
        effects.ledger.clear()
        effects.outbox.clear()

    async def write_totals(self) -> None:
        """No statistics in memory."""

    async def record_inbox(
        self, rows: Sequence[tuple[uuid.UUID, str, str]], earlier: dict[uuid.UUID, str]
    ) -> int:
        """Insert what no one else committed; update the earlier ones."""
        inserted = 0
        for event_id, topic, status in rows:
            if event_id not in self.inbox and event_id not in self.committed_elsewhere:
                self.inbox[event_id] = (topic, status)
                inserted += 1
        for event_id, status in earlier.items():
            self.inbox[event_id] = (self.inbox[event_id][0], status)
        return inserted

    async def expire(self, run: ExpiryRun, now: datetime) -> RunTotals:
        """``rules.expire.decide_run`` over every card of the run's merchants (the reminders
        are the SQL's alone: ``tests/domain/test_expiry_agreement.py``)."""
        totals = RunTotals()
        state, effects = BatchState(), Effects()
        programs = {
            s.merchant_id: (s.merchant_code, s.terms)
            for s in self.stores.values()
            if s.terms is not None
        }
        for card_id in sorted(self.cards):
            card = copy.deepcopy(self.cards[card_id])
            code, terms = programs.get(card.merchant_id, ("", None))
            if terms is None or (run.merchant_code is not None and code != run.merchant_code):
                continue
            await self.lots(state, card)
            assert card.lots is not None
            run_outcome = decide_run(terms, card.balance, card.lots, run.occurred_at)
            origin = Origin(run.event_id, code, store_id=None)
            for decision in run_decisions(run_outcome):
                apply_decision(state, effects, card, terms, decision, origin, run.occurred_at, now)
            moved = self._judge_tier(state, card, terms, run.occurred_at)
            if run_outcome.released or run_outcome.expired or terms.tiers.tiers:
                state.add_card(card)
                totals = RunTotals(
                    cards_expired=totals.cards_expired + bool(run_outcome.expired),
                    points_expired=totals.points_expired + run_outcome.expired,
                    cards_released=totals.cards_released + bool(run_outcome.released),
                    points_released=totals.points_released + run_outcome.released,
                    tiers_changed=totals.tiers_changed + moved,
                )
        await self.flush(state, effects, [])
        return totals

    def _judge_tier(
        self, state: BatchState, card: CardRow, terms: ProgramTerms, at: datetime
    ) -> bool:
        """``rules.tiers.judge_daily`` on one card: the SQL of ``engine.expiry``'s tiers."""
        plan = terms.tiers
        if not plan.tiers:
            return False
        start = window_start(plan, at, terms.timezone)
        rows = [
            (p.occurred_at, p.record.points_earned - p.record.points_voided)
            for p in self.purchases.values()
            if p.card_id == card.card_id
        ]
        b = card.balance
        b.qualifying_points = qualifying_in_window(rows, start, datetime.max.replace(tzinfo=UTC))
        b.qualifying_from = start
        verdict = judge_daily(plan, b.tier, b.qualifying_points, b.tier_below_since, at)
        before = b.tier
        b.tier, b.tier_below_since = verdict.tier, verdict.below_since
        card.dirty = True
        if verdict.changed:
            b.version += 1
            state.tier_changes.append(
                (card.card_id, card.merchant_id, before, b.tier, b.qualifying_points, at, None)
            )
        return verdict.changed

    # --- the caller's transaction ---------------------------------------------------------

    def begin(self) -> dict[str, Any]:
        """What a rollback goes back to."""
        tables = ("cards", "customers", "purchases", "held", "inbox", "ledger", "outbox")
        return {name: copy.deepcopy(getattr(self, name)) for name in tables}

    def rollback(self, saved: dict[str, Any]) -> None:
        """Undo everything since ``begin``."""
        for name, value in saved.items():
            setattr(self, name, value)

    # --- what the tests look at ---------------------------------------------------------------

    def card(self, number: str) -> CardRow:
        """The stored card with this number."""
        return next(c for c in self.cards.values() if c.card_number == number)

    def outputs(self, topic: str) -> list[OutboxEntry]:
        """The outbox rows of a topic, in order."""
        return [o for o in self.outbox if o.topic == topic]
