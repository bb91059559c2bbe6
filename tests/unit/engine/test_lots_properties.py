"""Point lots over random histories (CONTRACT.md 7.2, 7.3), against the in-memory unit of
work: purchases, returns, redemptions and daily runs in any order, under every expiry policy,
with and without pending points. After every step:

- the open lots hold exactly the card's balances: released ones its spendable points,
  pending ones its pending points;
- nothing is spent twice: every debit's ledger row names lots that add up to it, and no lot
  gives more than it had;
- nothing expires early: every lot an expiry took was due (its date passed, or the card was
  idle too long under inactivity), and nothing pending was spent;
- the card's summary of dated lots (``next_expiry``) is the lots' own.

The same runs against PostgreSQL: ``tests/domain/test_expiry_agreement.py`` (the daily run)
and ``tests/pipeline/test_point_lots.py`` (stories).
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from core.commands import (
    CardRef,
    Command,
    CustomerDetails,
    Enrol,
    ExpiryRun,
    Purchase,
    Redeem,
    Return,
)
from core.enums import CardRefKind, EnrollmentChannel, ExpiryPolicy, LedgerType, ProgramType
from domain.engine.batch import Inbound, apply_batch
from domain.engine.state import StoreInfo
from domain.engine.writes import LEDGER_COLUMNS
from domain.rules.lots import dated_summary
from domain.rules.values import ProgramTerms, RewardTerms
from tests.unit.engine.fakes import FakeUnitOfWork
from tests.unit.engine.test_engine_in_memory import TOPIC

T0 = datetime(2026, 12, 20, 9, 0, tzinfo=UTC)  # near a year's end: calendar_year bites
_COL = {name: i for i, name in enumerate(LEDGER_COLUMNS)}

step = st.one_of(
    st.tuples(st.just("buy"), st.integers(100, 5000)),
    st.tuples(st.just("return"), st.integers(0, 9), st.integers(1, 5000)),
    st.tuples(st.just("redeem"), st.sampled_from(["small", "big"])),
    st.tuples(st.just("run"), st.just(0)),
)
history = st.lists(st.tuples(step, st.integers(0, 60 * 24 * 20)), min_size=1, max_size=25)
program = st.fixed_dictionaries(
    {
        "expiry_policy": st.sampled_from(list(ExpiryPolicy)),
        "pending_days": st.sampled_from([0, 0, 3, 10]),
        "points_expiration_days": st.sampled_from([None, 15, 40, 365]),
    }
)


def _world(**terms: Any) -> FakeUnitOfWork:
    uow = FakeUnitOfWork()
    base = ProgramTerms(
        program_id=1,
        merchant_id=1,
        type=ProgramType.POINTS,
        points_per_euro=10,
        welcome_bonus_points=30,
        rewards={
            "small": RewardTerms("small", "Small", 40),
            "big": RewardTerms("big", "Big", 250),
        },
    )
    uow.stores["S1"] = StoreInfo(1, "S1", 1, "m1", True, True, replace(base, **terms))
    return uow


async def _apply(uow: FakeUnitOfWork, command: Command) -> None:
    topic = TOPIC[type(command)]
    await apply_batch(uow, [Inbound(topic.value, command)], T0)


def _check(uow: FakeUnitOfWork, terms: ProgramTerms, runs: list[datetime]) -> None:
    (card,) = uow.cards.values()
    b = card.balance
    lots = uow.point_lots.get(card.card_id, {})
    open_lots = [lo for lo in lots.values() if lo.remaining > 0]
    assert sum(lo.remaining for lo in open_lots if not lo.pending) == b.points_balance
    assert sum(lo.remaining for lo in open_lots if lo.pending) == b.points_pending
    assert all(0 <= lo.remaining <= lo.points for lo in lots.values())
    taken: dict[int, int] = {}
    for row in uow.ledger:
        kind, moved = row[_COL["entry_type"]], row[_COL["points_delta"]]
        pending = row[_COL["pending_delta"]]
        named = orjson.loads(row[_COL["lots"]]) if row[_COL["lots"]] else []
        if kind == LedgerType.POINTS_RELEASED:
            continue
        debits = [(no, -p) for no, p in named if p < 0]
        if moved + pending < 0:
            # Every debit names the lots it took, and they add up to it.
            assert sum(p for _, p in debits) == -(moved + pending), row
        for no, p in debits:
            taken[no] = taken.get(no, 0) + p
        if kind == LedgerType.POINTS_EXPIRED:
            at = row[_COL["occurred_at"]]
            for no, _ in debits:
                lot = lots[no]
                # Due: its date passed, or (kept by inactivity) the card was idle too long.
                assert (lot.expires_at is not None and lot.expires_at <= at) or (
                    lot.expires_at is None and terms.points_expiration_days is not None
                ), (lot, at)
    # No lot gave more than it had.
    for no, lot in lots.items():
        assert taken.get(no, 0) == lot.points - lot.remaining, (no, lot)
    dated, first = dated_summary(terms, lots.values())
    assert dated == b.dated_points
    summary = (first.points, first.at) if first else (0, None)
    assert summary == (b.next_expiry_points, b.next_expiry_at)


async def _story(terms_changes: dict[str, Any], steps: list[tuple[Any, int]]) -> None:
    uow = _world(**terms_changes)
    terms = uow.stores["S1"].terms
    assert terms is not None
    await _apply(
        uow, Enrol(uuid.uuid4(), T0, "S1", CustomerDetails(email="a@example.com"),
                   EnrollmentChannel.STAFF)
    )  # fmt: skip
    (card,) = uow.cards.values()
    ref = CardRef(CardRefKind.CARD_NUMBER, card.card_number)
    at = T0
    orders: list[tuple[str, int]] = []
    runs: list[datetime] = []
    for (kind, *args), gap in steps:
        at += timedelta(minutes=gap)
        if kind == "buy":
            order = f"o-{len(orders)}"
            orders.append((order, args[0]))
            await _apply(uow, Purchase(uuid.uuid4(), at, "S1", order, args[0], "EUR", ref))
        elif kind == "return" and orders:
            order, amount = orders[args[0] % len(orders)]
            await _apply(uow, Return(uuid.uuid4(), at, "S1", order, min(args[1], amount)))
        elif kind == "redeem":
            await _apply(uow, Redeem(uuid.uuid4(), at, "S1", ref, args[0]))
        elif kind == "run":
            runs.append(at)
            await _apply(uow, ExpiryRun(uuid.uuid4(), at))
            before = len(uow.ledger)
            await _apply(uow, ExpiryRun(uuid.uuid4(), at))  # the same run again
            assert len(uow.ledger) == before  # changes nothing
        _check(uow, terms, runs)


@settings(max_examples=300, deadline=None)
@given(terms=program, steps=history)
async def test_lots_always_hold_the_balances_and_nothing_is_spent_twice_or_early(
    terms: dict[str, Any], steps: list[tuple[Any, int]]
) -> None:
    await _story(terms, steps)


async def test_a_redemption_spends_the_lots_that_expire_first() -> None:
    uow = _world(expiry_policy=ExpiryPolicy.ROLLING, points_expiration_days=30)
    await _apply(
        uow, Enrol(uuid.uuid4(), T0, "S1", CustomerDetails(email="a@example.com"),
                   EnrollmentChannel.STAFF)
    )  # fmt: skip
    (card,) = uow.cards.values()
    ref = CardRef(CardRefKind.CARD_NUMBER, card.card_number)
    await _apply(uow, Purchase(uuid.uuid4(), T0 + timedelta(days=1), "S1", "a", 1000, "EUR", ref))
    await _apply(uow, Purchase(uuid.uuid4(), T0 + timedelta(days=2), "S1", "b", 1000, "EUR", ref))
    await _apply(uow, Redeem(uuid.uuid4(), T0 + timedelta(days=3), "S1", ref, "small"))
    lots = uow.point_lots[card.card_id]
    # The welcome bonus (lot 1, 30 points, earned first) goes first, then 10 of lot 2.
    assert [(lo.lot_no, lo.remaining) for lo in lots.values()] == [(1, 0), (2, 90), (3, 100)]
    stored = uow.cards[card.card_id].balance
    assert (stored.next_expiry_points, stored.next_expiry_at) == (90, T0 + timedelta(days=31))
