"""Applying a batch of commands in one transaction: inbox, handlers, ledger, outbox.

The caller opens the transaction and commits it; Kafka offsets are committed only after that.
Within a batch, events are applied in order to in-memory projections, so the second
purchase of a card sees the first one's stamp. The handlers (``engine.handlers``) see the
database only through a unit of work (``engine.unit_of_work``): ``process_batch`` runs them
over PostgreSQL, ``apply_batch`` over any unit of work (the tests' in-memory one too).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from core.commands import CardRef, Enrol, ExpiryRun, Purchase, Return
from core.enums import CardRefKind
from domain.engine.conn import Conn
from domain.engine.context import BatchContext, Inbound
from domain.engine.handlers import HANDLERS
from domain.engine.outputs import APPLIED, DUPLICATE, REJECTED, Result, result_message
from domain.engine.overlap import BatchKeys, Overlapped, Predecessor, Split, keys_of, split
from domain.engine.state import BatchState, Wanted
from domain.engine.unit_of_work import CARD_IDS, CUSTOMER_IDS, PgUnitOfWork, UnitOfWork
from domain.engine.writes import Effects

__all__ = [
    "BatchOutcome",
    "ConcurrentDuplicate",
    "Flow",
    "Inbound",
    "apply_batch",
    "process_batch",
]


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


class ConcurrentDuplicate(Exception):
    """Another worker committed one of this batch's events meanwhile (a rebalance overlap).

    The batch rolls back; applied again (one by one), the event is then a plain duplicate.
    """


async def process_batch(
    conn: Conn, events: Sequence[Inbound], now: datetime, flow: Flow | None = None
) -> BatchOutcome:
    """Apply ``events`` inside the caller's PostgreSQL transaction; duplicates change nothing."""
    return await apply_batch(PgUnitOfWork(conn), events, now, flow)


@dataclass
class Flow:
    """How a batch runs beside the batch before it, still in flight (``engine.overlap``)."""

    previous: Predecessor | None = None
    decided: Callable[[BatchKeys], None] | None = None
    """Called once the rules are done and the batch before committed, with what this batch
    names and holds; its last writes and its commit go on after."""


async def apply_batch(
    uow: UnitOfWork, events: Sequence[Inbound], now: datetime, flow: Flow | None = None
) -> BatchOutcome:
    """Apply ``events`` through ``uow``; duplicates change nothing.

    With a batch before it still in flight (``flow.previous``), the events that share nothing
    with that one are applied first, the others once it committed (``overlap.split``).
    """
    outcome = BatchOutcome()
    unique: dict[uuid.UUID, Inbound] = {}
    for ev in events:
        if ev.command.event_id in unique:
            outcome.duplicates.append(ev.command.event_id)
        else:
            unique[ev.command.event_id] = ev
    if not unique:
        return outcome
    previous = flow.previous if flow is not None else None
    parts = (
        split(list(unique.values()), previous.keys)
        if previous is not None
        else Split(ahead=list(unique.values()))
    )
    held: set[int] = set()

    async def committed() -> None:
        if previous is not None:
            await previous.committed()

    async def decided() -> None:
        await committed()
        if flow is not None and flow.decided is not None:
            flow.decided(keys_of(unique.values(), held))

    # The events ahead are decided, and only their cards' rows written, while the batch
    # before commits; what other batches write too waits for that commit (the segment's
    # other rows), or for the batch's end (the rollups' rows, the inbox). A batch waiting
    # for another thus never holds a row a third one's commit needs (two workers, each
    # with two batches in flight, would wait in a circle PostgreSQL cannot see).
    fresh = await _apply_part(
        uow,
        parts.ahead,
        now,
        outcome,
        held,
        committed if parts.behind else decided,
        previous.keys.card_ids if previous is not None else frozenset(),
    )
    await committed()
    fresh += await _apply_part(uow, parts.behind, now, outcome, held, decided, frozenset())
    await uow.write_totals()
    await _record_inbox(uow, fresh, outcome)
    return outcome


async def _apply_part(
    uow: UnitOfWork,
    events: list[Inbound],
    now: datetime,
    outcome: BatchOutcome,
    held: set[int],
    before_flush: Callable[[], Awaitable[None]] | None,
    not_held: frozenset[int],
) -> list[Inbound]:
    """Apply the events the inbox has not seen; returns them. ``before_flush`` is awaited
    after the rules of the last segment, before its last writes; ``not_held``: cards no
    event of this part may load."""
    if not events:
        return []
    seen = await uow.seen([ev.command.event_id for ev in events])
    outcome.duplicates.extend(ev.command.event_id for ev in events if ev.command.event_id in seen)
    fresh = [ev for ev in events if ev.command.event_id not in seen]
    segment: list[Inbound] = []
    for ev in fresh:
        if isinstance(ev.command, ExpiryRun):
            # Set-based over whole merchants: the events before it are written first.
            await _apply_segment(uow, segment, now, outcome, held, None, not_held)
            segment = []
            result = await _expire(uow, ev, ev.command, now)
            outcome.results.append(result)
        else:
            segment.append(ev)
    await _apply_segment(uow, segment, now, outcome, held, before_flush, not_held)
    return fresh


async def _expire(uow: UnitOfWork, ev: Inbound, run: ExpiryRun, now: datetime) -> Result:
    totals = await uow.expire(run, now)
    # Reminders change no card.
    changed = totals.cards_expired or totals.cards_released or totals.tiers_changed
    result = Result(
        source_event_id=run.event_id,
        source_topic=ev.topic,
        status=APPLIED if changed else REJECTED,
        merchant_code=run.merchant_code,
        extra={
            "cards_expired": totals.cards_expired,
            "points_expired": totals.points_expired,
            "points_released": totals.points_released,
            "reminders_sent": totals.reminders,
            "tiers_changed": totals.tiers_changed,
        },
    )
    effects = Effects()
    effects.outbox.append(result_message(result, now))
    await uow.flush(BatchState(), effects, [])
    return result


async def _record_inbox(uow: UnitOfWork, fresh: list[Inbound], outcome: BatchOutcome) -> None:
    # The inbox row is the idempotency guard, written once with the event's final status.
    # Two workers racing on one event (a rebalance) both get here; the primary key lets one
    # through, and the other rolls its whole batch back.
    status = {r.source_event_id: r.status for r in outcome.results}
    rows = [
        (ev.command.event_id, ev.topic, status.get(ev.command.event_id, REJECTED)) for ev in fresh
    ]
    # Held returns of earlier batches applied now: their inbox rows exist, the status moves.
    fresh_ids = {row[0] for row in rows}
    earlier = {i: s for i, s in status.items() if i not in fresh_ids}
    inserted = await uow.record_inbox(rows, earlier)
    if inserted != len(rows):
        raise ConcurrentDuplicate(f"{len(rows) - inserted} event(s) applied elsewhere")


# Writes sent ahead (``writes.WriteBehind``): a segment's events in about this many chunks,
# of at least WRITE_CHUNK events (below that the extra statements cost more than the overlap
# gives: batches of 50 took 31 ms with chunks of 40, 21-25 ms without); the queued writes
# get a chance to progress every YIELD_EVERY events.
WRITE_CHUNKS = 4
WRITE_CHUNK = 100
YIELD_EVERY = 20


async def _apply_segment(
    uow: UnitOfWork,
    events: list[Inbound],
    now: datetime,
    outcome: BatchOutcome,
    held: set[int],
    before_flush: Callable[[], Awaitable[None]] | None,
    not_held: frozenset[int],
) -> None:
    if not events:
        if before_flush is not None:
            await before_flush()
        return
    ctx = BatchContext(uow, now)
    await uow.load(ctx.state, _wanted(events))
    if not not_held.isdisjoint(ctx.state.cards):
        raise Overlapped(f"{len(not_held.intersection(ctx.state.cards))} card(s) held")
    enrolments = sum(1 for ev in events if isinstance(ev.command, Enrol))
    ctx.customer_ids = await uow.new_ids(CUSTOMER_IDS, enrolments)
    ctx.card_ids = await uow.new_ids(CARD_IDS, enrolments)
    held.update(ctx.state.cards)
    held.update(ctx.card_ids)
    # A few chunks whatever the size: small batches (low load, where latency counts) get
    # their overlap too, large ones no more statements than they need.
    chunk = max(WRITE_CHUNK, len(events) // WRITE_CHUNKS)
    try:
        for i, ev in enumerate(events, 1):
            await HANDLERS[type(ev.command)](ctx, ev, ev.command)
            if i % chunk == 0 and i < len(events):
                uow.write_ahead(ctx.state, ctx.effects)
            if i % YIELD_EVERY == 0:
                # The rules never wait on anything: without this the queued writes would
                # not go out (nor their replies come in) before the segment's end.
                await asyncio.sleep(0)
        if before_flush is not None:
            await before_flush()
        await uow.settle()
    except BaseException:
        await uow.abandon()
        raise
    await uow.flush(ctx.state, ctx.effects, ctx.customers)
    outcome.results.extend(ctx.results)


def _wanted(events: list[Inbound]) -> Wanted:
    wanted = Wanted()
    first = last = None
    for ev in events:
        cmd = ev.command
        if isinstance(cmd, ExpiryRun):
            continue
        at = cmd.occurred_at
        if first is None or at < first:
            first = at
        if last is None or at > last:
            last = at
        wanted.store_codes.add(cmd.store_code)
        if isinstance(cmd, Enrol):
            if cmd.customer.email:
                wanted.emails.add((cmd.store_code, cmd.customer.email))
            if cmd.customer.customer_ref:
                wanted.refs.add((cmd.store_code, cmd.customer.customer_ref))
            continue
        if isinstance(cmd, Purchase | Return):
            wanted.orders.add((cmd.store_code, cmd.order_reference))
        if cmd.card is not None:
            _want_card(wanted, cmd.store_code, cmd.card)
    if first is not None and last is not None:
        wanted.span.extend((first, last))
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
