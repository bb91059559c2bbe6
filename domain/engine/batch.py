"""Applying a batch of input events in one transaction: inbox, rules, ledger, outbox.

The caller opens the transaction and commits it; Kafka offsets are committed only after that.
Within a batch, events are applied in order to in-memory projections, so the second
purchase of a card sees the first one's stamp.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain import identifiers
from domain.engine import expiry
from domain.engine.conn import Conn
from domain.engine.outputs import (
    APPLIED,
    DUPLICATE,
    HELD,
    REJECTED,
    Result,
    result_message,
    wallet_message,
)
from domain.engine.state import (
    BatchState,
    CardRow,
    CustomerRow,
    HeldRow,
    PurchaseRow,
    StoreInfo,
    Wanted,
    load_cards,
    load_orders,
    load_stores,
    stamp_history,
)
from domain.engine.writes import Effects, WriteBehind, allocate_ids, flush, ledger_row
from domain.models import LedgerType
from domain.rules.earn import PurchaseFacts, decide_purchase
from domain.rules.enrol import card_valid_at_store, may_enrol, new_card
from domain.rules.project import apply_change
from domain.rules.redeem import redeem_points, redeem_stamps
from domain.rules.values import CardBalance, Decision, ProgramTerms, Reason, StampHistory
from domain.rules.void import PurchaseRecord, decide_return
from streams.inputs import (
    CardRef,
    CardRefKind,
    EnrollmentRequested,
    ExpiryRunRequested,
    PointsReward,
    PurchaseCompleted,
    PurchaseReturned,
    RewardRedeemRequested,
)
from streams.topics import Topic

InputEvent = (
    PurchaseCompleted
    | PurchaseReturned
    | EnrollmentRequested
    | RewardRedeemRequested
    | ExpiryRunRequested
)


@dataclass(frozen=True)
class Inbound:
    """An input event and where it came from; staff fields are set by the staff terminal."""

    topic: str
    message: InputEvent
    staff_pin_id: int | None = None
    actor: str | None = None


@dataclass
class BatchOutcome:
    """What a batch did, event by event, for counters and for callers waiting on a result."""

    results: list[Result] = field(default_factory=list)
    duplicates: list[uuid.UUID] = field(default_factory=list)

    def count(self, status: str) -> int:
        """How many results of this batch have ``status`` (``duplicate`` counts duplicates)."""
        if status == DUPLICATE:
            return len(self.duplicates)
        return sum(1 for r in self.results if r.status == status)


_SEEN = "SELECT event_id FROM processed_events WHERE event_id = ANY($1::uuid[])"

_INBOX = """
INSERT INTO processed_events (event_id, topic, status)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[])
ON CONFLICT DO NOTHING
RETURNING event_id
"""


class ConcurrentDuplicate(Exception):
    """Another worker committed one of this batch's events meanwhile (a rebalance overlap).

    The batch rolls back; applied again (one by one), the event is then a plain duplicate.
    """


async def process_batch(conn: Conn, events: Sequence[Inbound], now: datetime) -> BatchOutcome:
    """Apply ``events`` inside the caller's transaction; duplicates change nothing."""
    outcome = BatchOutcome()
    unique: dict[uuid.UUID, Inbound] = {}
    for ev in events:
        if ev.message.event_id in unique:
            outcome.duplicates.append(ev.message.event_id)
        else:
            unique[ev.message.event_id] = ev
    if not unique:
        return outcome
    seen = {r[0] for r in await conn.fetch(_SEEN, list(unique))}
    outcome.duplicates.extend(eid for eid in unique if eid in seen)
    fresh = [ev for eid, ev in unique.items() if eid not in seen]
    segment: list[Inbound] = []
    for ev in fresh:
        if isinstance(ev.message, ExpiryRunRequested):
            await _apply_segment(conn, segment, now, outcome)
            segment = []
            result = await expiry.run_expiry(conn, ev.message, ev.topic, now)
            await _write_results(conn, [result], now)
            outcome.results.append(result)
        else:
            segment.append(ev)
    await _apply_segment(conn, segment, now, outcome)
    await _record_inbox(conn, fresh, outcome)
    return outcome


async def _record_inbox(conn: Conn, fresh: list[Inbound], outcome: BatchOutcome) -> None:
    # The inbox row is the idempotency guard, written once with the event's final status.
    # Two workers racing on one event (a rebalance) both get here; the primary key lets one
    # through, and the other rolls its whole batch back.
    status = {r.source_event_id: r.status for r in outcome.results}
    ids = [ev.message.event_id for ev in fresh]
    if ids:
        inserted = await conn.fetch(
            _INBOX, ids, [ev.topic for ev in fresh], [status.get(i, REJECTED) for i in ids]
        )
        if len(inserted) != len(ids):
            raise ConcurrentDuplicate(f"{len(ids) - len(inserted)} event(s) applied elsewhere")
    # Held returns of earlier batches applied now: their inbox rows exist, the status moves.
    fresh_ids = set(ids)
    earlier = {i: s for i, s in status.items() if i not in fresh_ids}
    if earlier:
        await conn.execute(_INBOX_UPDATE, list(earlier), list(earlier.values()))


_INBOX_UPDATE = """
UPDATE processed_events AS e SET status = u.status
FROM unnest($1::uuid[], $2::text[]) AS u(event_id, status)
WHERE e.event_id = u.event_id
"""


async def _write_results(conn: Conn, results: list[Result], now: datetime) -> None:
    effects = Effects()
    for r in results:
        effects.outbox.append(result_message(r, now))
    await flush(conn, BatchState(), effects, [])


async def _apply_segment(
    conn: Conn, events: list[Inbound], now: datetime, outcome: BatchOutcome
) -> None:
    if not events:
        return
    run = _Run(conn, now)
    await run.load(events)
    # A few chunks whatever the size: small batches (low load, where latency counts) get
    # their overlap too, large ones no more statements than they need.
    chunk = max(WRITE_CHUNK, len(events) // WRITE_CHUNKS)
    try:
        for i, ev in enumerate(events, 1):
            await run.apply(ev)
            if i % chunk == 0 and i < len(events):
                run.writer.submit(run.state, run.effects)
            if i % YIELD_EVERY == 0:
                # The rules never wait on anything: without this the queued writes would
                # not go out (nor their replies come in) before the segment's end.
                await asyncio.sleep(0)
        await run.writer.settle()
    except BaseException:
        await run.writer.abandon()
        raise
    await flush(conn, run.state, run.effects, run.customers, notify=run.writer.wrote_outbox)
    outcome.results.extend(run.results)


# Writes sent ahead (``writes.WriteBehind``): a segment's events in about this many chunks,
# of at least WRITE_CHUNK events (below that the extra statements cost more than the overlap
# gives: batches of 50 took 31 ms with chunks of 40, 21-25 ms without); the queued writes
# get a chance to progress every YIELD_EVERY events.
WRITE_CHUNKS = 4
WRITE_CHUNK = 100
YIELD_EVERY = 20


def _wanted(events: list[Inbound]) -> Wanted:
    wanted = Wanted()
    for ev in events:
        msg = ev.message
        if isinstance(msg, ExpiryRunRequested):
            continue
        wanted.store_codes.add(msg.store_code)
        if isinstance(msg, EnrollmentRequested):
            if msg.customer.email:
                wanted.emails.add((msg.store_code, msg.customer.email))
            if msg.customer.customer_ref:
                wanted.refs.add((msg.store_code, msg.customer.customer_ref))
            continue
        if isinstance(msg, PurchaseCompleted | PurchaseReturned):
            wanted.orders.add((msg.store_code, msg.order_reference))
        if msg.card is not None:
            _want_card(wanted, msg.store_code, msg.card)
    return wanted


def _want_card(wanted: Wanted, store_code: str, ref: CardRef) -> None:
    kind, value = ref.kind, ref.value
    if kind is CardRefKind.CARD_NUMBER:
        wanted.card_numbers.add(value)
    elif kind is CardRefKind.QR_CODE:
        wanted.qr_codes.add(value)
    elif kind is CardRefKind.EMAIL:
        wanted.emails.add((store_code, value))
    else:
        wanted.refs.add((store_code, value))


class _Run:
    """One segment of a batch: loaded state, effects so far, results so far."""

    def __init__(self, conn: Conn, now: datetime) -> None:
        self.conn = conn
        self.now = now
        # Every output of the batch carries the same processing time: format it once.
        self.now_text = now.isoformat()
        self.state = BatchState()
        self.effects = Effects()
        self.results: list[Result] = []
        self.writer = WriteBehind(conn)
        self.customers: list[CustomerRow] = []
        self._customer_ids: list[int] = []
        self._card_ids: list[int] = []

    async def load(self, events: list[Inbound]) -> None:
        """Everything the segment's events will look at, in a few queries."""
        wanted = _wanted(events)
        await load_stores(self.conn, self.state, wanted.store_codes)
        await load_orders(self.conn, self.state, wanted)
        extra = {p.card_id for p in self.state.purchases.values() if p.card_id is not None}
        await load_cards(self.conn, self.state, wanted, extra_card_ids=extra)
        enrolments = sum(1 for ev in events if isinstance(ev.message, EnrollmentRequested))
        self._customer_ids = await allocate_ids(self.conn, "customers_id_seq", enrolments)
        self._card_ids = await allocate_ids(self.conn, "loyalty_cards_id_seq", enrolments)

    async def apply(self, ev: Inbound) -> None:
        """Apply one event and record its result."""
        msg = ev.message
        if isinstance(msg, PurchaseCompleted):
            await self.purchase(ev, msg)
        elif isinstance(msg, PurchaseReturned):
            self.returned(ev, msg)
        elif isinstance(msg, EnrollmentRequested):
            self.enrol(ev, msg)
        elif isinstance(msg, RewardRedeemRequested):
            self.redeem(ev, msg)

    # --- outcomes -------------------------------------------------------------------------

    def finish(
        self,
        ev_id: uuid.UUID,
        topic: str,
        status: str,
        reasons: Sequence[Reason] = (),
        store: StoreInfo | None = None,
        store_code: str | None = None,
        card: CardRow | None = None,
        deltas: tuple[int, int] = (0, 0),
    ) -> Result:
        """Record an event's result in the outbox and the inbox."""
        # A store whose merchant has no (active) program still names its merchant.
        if store is None and store_code is not None:
            store = self.state.stores.get(store_code)
        terms = store.terms if store else None
        result = Result(
            source_event_id=ev_id,
            source_topic=topic,
            status=status,
            reasons=list(reasons),
            merchant_code=store.merchant_code if store else None,
            store_code=store.store_code if store else store_code,
            card_number=card.card_number if card else None,
            stamps_delta=deltas[0],
            points_delta=deltas[1],
            stamp_count=card.balance.stamp_count if card else None,
            stamps_target=terms.stamps_target if terms and terms.stamps_enabled else None,
            points_balance=card.balance.points_balance if card else None,
        )
        self.results.append(result)
        self.effects.outbox.append(result_message(result, self.now_text))
        return result

    def change(
        self,
        card: CardRow,
        store: StoreInfo,
        decision: Decision,
        ev: Inbound,
        at: datetime,
        **ledger: Any,
    ) -> tuple[int, int]:
        """Apply a decision to a card: projection, ledger rows, one wallet update."""
        terms = store.terms
        assert terms is not None
        stamps = points = 0
        notes = ledger.pop("notes", None)
        for ch in decision.changes:
            apply_change(card.balance, ch, at, terms)
            stamps += ch.stamps_delta
            points += ch.points_delta
            if ch.entry_type is LedgerType.STAMP_EARNED:
                self.state.pending_stamps.setdefault(card.card_id, []).append((at, ch.stamps_delta))
            self.effects.ledger.append(
                ledger_row(
                    card_id=card.card_id,
                    merchant_id=card.merchant_id,
                    store_id=store.store_id,
                    entry_type=ch.entry_type.value,
                    stamps_delta=ch.stamps_delta,
                    points_delta=ch.points_delta,
                    stamp_count_after=card.balance.stamp_count,
                    points_balance_after=card.balance.points_balance,
                    occurred_at=at,
                    source_event_id=ev.message.event_id,
                    reward_code=ch.reward_code,
                    reward_description=ch.reward_description,
                    notes=ch.notes or notes,
                    staff_pin_id=ev.staff_pin_id,
                    actor=ev.actor,
                    **ledger,
                )
            )
        if decision.changes:
            card.balance.version += 1
            card.dirty = True
            self.effects.outbox.append(
                wallet_message(
                    card_number=card.card_number,
                    merchant_code=store.merchant_code,
                    stamp_count=card.balance.stamp_count,
                    stamps_target=terms.stamps_target if terms.stamps_enabled else None,
                    points_balance=card.balance.points_balance,
                    is_active=card.balance.is_active,
                    version=card.balance.version,
                    reason=decision.changes[-1].entry_type.value,
                    source_event_id=ev.message.event_id,
                    now=self.now_text,
                )
            )
        return stamps, points

    # --- lookups --------------------------------------------------------------------------

    def store(self, code: str, *, active_program: bool = True) -> StoreInfo | Reason:
        """The event's store, or why it cannot be used."""
        store = self.state.stores.get(code)
        if store is None:
            return Reason.STORE_NOT_FOUND
        if store.terms is None:
            return Reason.PROGRAM_NOT_FOUND
        if active_program and not store.terms.is_active:
            return Reason.PROGRAM_INACTIVE
        return store

    def card(self, store: StoreInfo, ref: CardRef) -> tuple[CardRow | None, Reason | None]:
        """The card a reference names within the store's merchant, and why it cannot be used.

        A card that exists but is refused (inactive, or of another store) is returned with
        the reason, so the result still names it.
        """
        kind, value = ref.kind, ref.value
        card_id: int | None
        if kind is CardRefKind.CARD_NUMBER:
            card_id = self.state.card_by_number.get(value)
        elif kind is CardRefKind.QR_CODE:
            card_id = self.state.card_by_qr.get(value)
        else:
            index = (
                self.state.customers_by_email
                if kind is CardRefKind.EMAIL
                else self.state.customers_by_ref
            )
            customer = index.get((store.merchant_id, value))
            ids = self.state.cards_by_customer.get(customer.customer_id, []) if customer else []
            if not ids:
                return None, Reason.CARD_NOT_FOUND
            here = [i for i in ids if self.state.cards[i].store_id == store.store_id]
            card_id = (here or ids)[0]
        card = self.state.cards.get(card_id) if card_id is not None else None
        if card is None or card.merchant_id != store.merchant_id:
            return None, Reason.CARD_NOT_FOUND
        if not card_valid_at_store(store.cross_location, card.store_id, store.store_id):
            return card, Reason.CARD_NOT_VALID_AT_STORE
        if not card.balance.is_active:
            return card, Reason.CARD_INACTIVE
        return card, None

    def store_and_card(
        self, ev: Inbound, msg: PurchaseCompleted | RewardRedeemRequested
    ) -> tuple[StoreInfo, CardRow, ProgramTerms] | None:
        """The store, card and program an event acts on, or None once its refusal is recorded."""
        store = self.store(msg.store_code)
        if isinstance(store, Reason):
            self.finish(msg.event_id, ev.topic, REJECTED, [store], store_code=msg.store_code)
            return None
        card, refused = self.card(store, msg.card)
        if refused is not None or card is None:
            reasons = [refused or Reason.CARD_NOT_FOUND]
            self.finish(msg.event_id, ev.topic, REJECTED, reasons, store, card=card)
            return None
        assert store.terms is not None  # self.store() refuses a store without a program
        return store, card, store.terms

    # --- events ---------------------------------------------------------------------------

    async def purchase(self, ev: Inbound, msg: PurchaseCompleted) -> None:
        """``purchase.completed``: earn, record the order, apply returns held for it."""
        found = self.store_and_card(ev, msg)
        if found is None:
            return
        store, card, terms = found
        key = (store.merchant_id, msg.order_reference)
        if key in self.state.purchases:
            self.finish(
                msg.event_id, ev.topic, REJECTED, [Reason.DUPLICATE_ORDER], store, card=card
            )
            return
        history = StampHistory(None, 0)
        if terms.stamps_enabled and msg.stamps > 0 and msg.currency == terms.currency:
            history = await stamp_history(
                self.conn, self.state, card, terms, msg.occurred_at, self.writer.settle
            )
        facts = PurchaseFacts(msg.amount_cents, msg.currency, msg.stamps, msg.occurred_at)
        decision = decide_purchase(terms, facts, history)
        if Reason.UNSUPPORTED_CURRENCY in decision.reasons:
            self.finish(msg.event_id, ev.topic, REJECTED, decision.reasons, store, card=card)
            return
        deltas = self.change(
            card,
            store,
            decision,
            ev,
            msg.occurred_at,
            purchase_amount_cents=msg.amount_cents,
            order_reference=msg.order_reference,
            staff_ref=msg.staff_ref,
        )
        self.state.purchases[key] = PurchaseRow(
            purchase_id=None,
            merchant_id=store.merchant_id,
            order_reference=msg.order_reference,
            card_id=card.card_id,
            store_id=store.store_id,
            currency=msg.currency,
            source_event_id=msg.event_id,
            occurred_at=msg.occurred_at,
            record=PurchaseRecord(msg.amount_cents, deltas[1], deltas[0]),
            is_new=True,
        )
        status = APPLIED if decision.changed else REJECTED
        self.finish(
            msg.event_id, ev.topic, status, decision.reasons, store, card=card, deltas=deltas
        )
        for held in self.state.held.get(key, []):
            if not held.applied:
                held.applied = True
                returned = PurchaseReturned.model_validate(held.payload)
                self.void(
                    Inbound(Topic.RETURNS.value, returned), returned, self.state.purchases[key]
                )

    def returned(self, ev: Inbound, msg: PurchaseReturned) -> None:
        """``purchase.returned``: void in proportion, or hold until the purchase is seen."""
        store = self.store(msg.store_code, active_program=False)
        if isinstance(store, Reason):
            self.finish(msg.event_id, ev.topic, REJECTED, [store], store_code=msg.store_code)
            return
        key = (store.merchant_id, msg.order_reference)
        purchase = self.state.purchases.get(key)
        if purchase is not None:
            self.void(ev, msg, purchase)
            return
        self.state.held.setdefault(key, []).append(
            HeldRow(
                held_id=None,
                merchant_id=store.merchant_id,
                store_id=store.store_id,
                order_reference=msg.order_reference,
                source_event_id=msg.event_id,
                payload=msg.model_dump(mode="json"),
                is_new=True,
            )
        )
        self.finish(msg.event_id, ev.topic, HELD, [Reason.PURCHASE_NOT_SEEN_YET], store)

    def void(self, ev: Inbound, msg: PurchaseReturned, purchase: PurchaseRow) -> None:
        """Take back what the purchase earned, pro rata to everything refunded so far."""
        store = self.store(msg.store_code, active_program=False)
        if isinstance(store, Reason):  # the return's store vanished while it was held
            self.finish(msg.event_id, ev.topic, REJECTED, [store], store_code=msg.store_code)
            return
        card = self.state.cards.get(purchase.card_id) if purchase.card_id else None
        if card is None:
            self.finish(msg.event_id, ev.topic, REJECTED, [Reason.CARD_NOT_FOUND], store)
            return
        outcome = decide_return(purchase.record, card.balance, msg.refund_amount_cents)
        if outcome.purchase == purchase.record:
            self.finish(
                msg.event_id, ev.topic, REJECTED, outcome.decision.reasons, store, card=card
            )
            return
        deltas = self.change(
            card,
            store,
            outcome.decision,
            ev,
            msg.occurred_at,
            order_reference=msg.order_reference,
            notes=f"refund of {msg.refund_amount_cents} cents",
        )
        purchase.record = outcome.purchase
        purchase.dirty = True
        self.finish(
            msg.event_id,
            ev.topic,
            APPLIED,
            outcome.decision.reasons,
            store,
            card=card,
            deltas=deltas,
        )

    def redeem(self, ev: Inbound, msg: RewardRedeemRequested) -> None:
        """``reward.redeem_requested``: a full stamp card or a catalog reward."""
        found = self.store_and_card(ev, msg)
        if found is None:
            return
        store, card, terms = found
        if isinstance(msg.reward, PointsReward):
            decision = redeem_points(terms, card.balance, msg.reward.reward_id)
        else:
            decision = redeem_stamps(terms, card.balance)
        deltas = self.change(card, store, decision, ev, msg.occurred_at, staff_ref=msg.staff_ref)
        status = APPLIED if decision.changed else REJECTED
        self.finish(
            msg.event_id, ev.topic, status, decision.reasons, store, card=card, deltas=deltas
        )

    def enrol(self, ev: Inbound, msg: EnrollmentRequested) -> None:
        """``enrollment.requested``: the existing card, or a new one with its welcome bonus."""
        store = self.store(msg.store_code)
        if isinstance(store, Reason):
            self.finish(msg.event_id, ev.topic, REJECTED, [store], store_code=msg.store_code)
            return
        refused = may_enrol(msg.channel.value, store.allow_self_enrollment)
        if refused is not None:
            self.finish(msg.event_id, ev.topic, REJECTED, [refused], store)
            return
        customer = self._customer(store, msg)
        existing = self._existing_card(store, customer)
        if existing is not None:
            self.finish(
                msg.event_id, ev.topic, APPLIED, [Reason.ALREADY_ENROLLED], store, card=existing
            )
            return
        terms = store.terms
        assert terms is not None
        card = CardRow(
            balance=CardBalance(card_id=self._card_ids.pop(), version=0),
            card_number=identifiers.new_card_number(),
            merchant_id=store.merchant_id,
            program_id=terms.program_id,
            customer_id=customer.customer_id,
            store_id=store.store_id,
            email=customer.email,
            customer_ref=customer.customer_ref,
            is_new=True,
            qr_token=identifiers.new_qr_token(),
            apple_authentication_token=identifiers.new_authentication_token(),
        )
        self.state.add_card(card)
        deltas = self.change(card, store, new_card(terms), ev, msg.occurred_at)
        self.finish(msg.event_id, ev.topic, APPLIED, (), store, card=card, deltas=deltas)

    def _customer(self, store: StoreInfo, msg: EnrollmentRequested) -> CustomerRow:
        c = msg.customer
        found = (
            self.state.customers_by_email.get((store.merchant_id, c.email)) if c.email else None
        ) or (
            self.state.customers_by_ref.get((store.merchant_id, c.customer_ref))
            if c.customer_ref
            else None
        )
        if found is not None:
            return found
        row = CustomerRow(
            customer_id=self._customer_ids.pop(),
            merchant_id=store.merchant_id,
            email=c.email,
            customer_ref=c.customer_ref,
            is_new=True,
            values={
                "phone": c.phone,
                "first_name": c.first_name,
                "last_name": c.last_name,
                "locale": c.locale.value if c.locale else None,
            },
        )
        self.state.add_customer(row)
        self.customers.append(row)
        return row

    def _existing_card(self, store: StoreInfo, customer: CustomerRow) -> CardRow | None:
        for card_id in self.state.cards_by_customer.get(customer.customer_id, []):
            card = self.state.cards[card_id]
            if store.cross_location or card.store_id == store.store_id:
                return card
        return None
