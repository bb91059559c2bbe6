"""Properties of the rules over random histories (hypothesis).

The engine applies rule decisions to one card, one event after the other; whatever the events,
balances never go negative and always equal the sum of the deltas applied, and refunds never
void more than the order earned.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.models import LedgerType, ProgramType
from domain.rules.admin import AdjustmentError, decide_adjustment, decide_status
from domain.rules.earn import decide_purchase, stamps_allowed
from domain.rules.enrol import new_card
from domain.rules.expire import decide_expiry
from domain.rules.project import apply_change
from domain.rules.redeem import redeem_points, redeem_stamps
from domain.rules.values import (
    CardBalance,
    Decision,
    ProgramTerms,
    Reason,
    StampHistory,
)
from domain.rules.void import PurchaseRecord, decide_return
from tests.unit.domain.builders import history_of, program, purchase, utc

# Event time only: a hypothesis deadline would make these timed tests.
PROPERTY = settings(deadline=None, max_examples=300)
HISTORIES = settings(PROPERTY, max_examples=200)  # 15 to 80 events each

ZONES = [ZoneInfo(z) for z in ("UTC", "Europe/Luxembourg", "America/New_York", "Asia/Kathmandu")]
START = utc(2025, 3, 28, 20, 0)  # two days before Europe's spring-forward night

# Seconds between events: mostly around the cooldowns, sometimes across days.
gaps = st.one_of(st.integers(1, 20 * 60), st.integers(1, 3 * 3600), st.integers(1, 3 * 24 * 3600))


@st.composite
def programs(draw: st.DrawFn) -> ProgramTerms:
    return program(
        draw(st.sampled_from(ProgramType)),
        stamps_target=draw(st.integers(1, 10)),
        points_per_euro=draw(st.integers(0, 20)),
        minimum_purchase_cents=draw(st.sampled_from([0, 0, 100, 500])),
        cooldown_minutes=draw(st.sampled_from([0, 0, 5, 15, 60])),
        max_daily_stamps=draw(st.one_of(st.none(), st.integers(1, 5))),
        welcome_bonus_points=draw(st.sampled_from([0, 50])),
        minimum_redemption_points=draw(st.sampled_from([0, 0, 150])),
        points_expiration_days=draw(st.one_of(st.none(), st.integers(1, 10))),
        timezone=draw(st.sampled_from(ZONES)),
    )


@dataclass(frozen=True)
class Buy:
    gap: int
    amount_cents: int
    stamps: int
    currency: str


@dataclass(frozen=True)
class Return:
    gap: int
    order: int
    refund_cents: int


@dataclass(frozen=True)
class RedeemStamps:
    gap: int


@dataclass(frozen=True)
class RedeemPoints:
    gap: int
    reward: str


@dataclass(frozen=True)
class Adjust:
    gap: int
    stamps: int
    points: int
    reason: str


@dataclass(frozen=True)
class Expire:
    gap: int


@dataclass(frozen=True)
class Status:
    gap: int
    active: bool


Event = Buy | Return | RedeemStamps | RedeemPoints | Adjust | Expire | Status

buys = st.builds(
    Buy,
    st.one_of(st.integers(1, 90 * 60), gaps),  # a till rings again soon: cooldowns get hit
    st.integers(0, 20_000),
    st.integers(0, 5),
    st.sampled_from(["EUR", "EUR", "EUR", "USD"]),
)
returns = st.builds(Return, gaps, st.integers(0, 50), st.integers(1, 25_000))
# Purchases and returns weigh more: they are what makes the other events interesting.
events: st.SearchStrategy[Event] = st.one_of(
    buys,
    buys,
    buys,
    returns,
    returns,
    st.builds(RedeemStamps, gaps),
    st.builds(RedeemPoints, gaps, st.sampled_from(["coffee", "cake", "retired", "caviar"])),
    st.builds(
        Adjust, gaps, st.integers(-15, 15), st.integers(-400, 400), st.sampled_from(["", "fix"])
    ),
    st.builds(Expire, gaps),
    st.builds(Status, gaps, st.booleans()),
)


@dataclass
class Engine:
    """The engine's loop in miniature: decide with a rule, apply every change, keep the books."""

    terms: ProgramTerms
    card: CardBalance = field(default_factory=lambda: CardBalance(card_id=1))
    now: datetime = START
    orders: list[PurchaseRecord] = field(default_factory=list)
    stamps_sum: int = 0
    points_sum: int = 0
    by_kind: dict[LedgerType, int] = field(default_factory=lambda: defaultdict(int))
    stamps_per_day: dict[date, int] = field(default_factory=lambda: defaultdict(int))
    stamp_times: list[datetime] = field(default_factory=list)

    def apply(self, decision: Decision) -> None:
        for change in decision.changes:
            apply_change(self.card, change, self.now, self.terms)
            self.stamps_sum += change.stamps_delta
            self.points_sum += change.points_delta
            self.by_kind[change.entry_type] += change.stamps_delta + change.points_delta
            if change.entry_type is LedgerType.STAMP_EARNED:
                self.stamps_per_day[self.terms.local_day(self.now)] += change.stamps_delta
                self.stamp_times.append(self.now)

    def run(self, event: Event) -> None:
        self.now += timedelta(seconds=event.gap)
        card, terms = self.card, self.terms
        match event:
            case Buy():
                facts = purchase(
                    event.amount_cents, stamps=event.stamps, currency=event.currency, at=self.now
                )
                decision = decide_purchase(terms, facts, history_of(card, terms, self.now))
                self.apply(decision)
                earned = {c.entry_type: c for c in decision.changes}
                stamps = earned.get(LedgerType.STAMP_EARNED)
                points = earned.get(LedgerType.POINTS_EARNED)
                self.orders.append(
                    PurchaseRecord(
                        amount_cents=event.amount_cents,
                        points_earned=points.points_delta if points else 0,
                        stamps_earned=stamps.stamps_delta if stamps else 0,
                    )
                )
            case Return() if self.orders:
                index = event.order % len(self.orders)
                outcome = decide_return(self.orders[index], card, event.refund_cents)
                self.apply(outcome.decision)
                self.orders[index] = outcome.purchase
            case RedeemStamps():
                self.apply(redeem_stamps(terms, card))
            case RedeemPoints():
                self.apply(redeem_points(terms, card, event.reward))
            case Adjust():
                try:
                    decision = decide_adjustment(card, event.stamps, event.points, event.reason)
                except AdjustmentError:
                    assert (
                        not event.reason
                        or (event.stamps, event.points) == (0, 0)
                        or card.stamp_count + event.stamps < 0
                        or card.points_balance + event.points < 0
                    )
                    return
                self.apply(decision)
            case Expire():
                self.apply(decide_expiry(terms, card, self.now))
            case Status():
                self.apply(decide_status(card, event.active))


@HISTORIES
@given(terms=programs(), history=st.lists(events, min_size=15, max_size=80))
def test_balances_never_go_negative_and_always_equal_the_sum_of_the_deltas_applied(
    terms: ProgramTerms, history: list[Event]
) -> None:
    engine = Engine(terms)
    engine.apply(new_card(terms))
    card = engine.card
    for event in history:
        engine.run(event)
        assert card.stamp_count >= 0
        assert card.points_balance >= 0
        assert card.stamp_count == engine.stamps_sum
        assert card.points_balance == engine.points_sum
    # The lifetime counters explain the balances, entry type by entry type.
    kinds = engine.by_kind
    assert card.lifetime_stamps == kinds[LedgerType.STAMP_EARNED]
    assert card.stamp_count == (
        card.lifetime_stamps
        + kinds[LedgerType.STAMP_REDEEMED]
        + kinds[LedgerType.STAMP_VOIDED]
        + kinds[LedgerType.STAMP_ADJUSTED]
    )
    assert card.points_balance == (
        card.lifetime_points_earned
        - card.points_redeemed
        - card.points_voided
        - card.points_expired
        + kinds[LedgerType.POINTS_ADJUSTED]
    )


@HISTORIES
@given(terms=programs(), history=st.lists(events, min_size=15, max_size=80))
def test_stamps_respect_the_cooldown_and_the_daily_cap_of_the_merchants_day(
    terms: ProgramTerms, history: list[Event]
) -> None:
    engine = Engine(terms)
    for event in history:
        engine.run(event)
    if terms.max_daily_stamps is not None:
        assert all(n <= terms.max_daily_stamps for n in engine.stamps_per_day.values())
    cooldown = timedelta(minutes=terms.cooldown_minutes)
    times = engine.stamp_times
    assert all(later - earlier >= cooldown for earlier, later in pairwise(times))
    for order in engine.orders:
        assert 0 <= order.points_voided <= order.points_earned
        assert 0 <= order.stamps_voided <= order.stamps_earned
        assert 0 <= order.refunded_cents <= order.amount_cents


@PROPERTY
@given(
    amount=st.integers(1, 100_000),
    points_earned=st.integers(0, 10_000),
    stamps_earned=st.integers(0, 100),
    refunds=st.lists(st.integers(1, 60_000), min_size=1, max_size=12),
)
def test_partial_refunds_void_the_floor_of_the_refunded_share_when_the_balance_suffices(
    amount: int, points_earned: int, stamps_earned: int, refunds: list[int]
) -> None:
    card = CardBalance(card_id=1, stamp_count=stamps_earned, points_balance=points_earned)
    record = PurchaseRecord(amount, points_earned, stamps_earned)
    voided_points = voided_stamps = 0
    for refund in refunds:
        outcome = decide_return(record, card, refund)
        for change in outcome.decision.changes:
            apply_change(card, change, START, program())
            voided_points -= change.points_delta
            voided_stamps -= change.stamps_delta
        assert Reason.POINTS_SHORTFALL not in outcome.decision.reasons
        assert Reason.STAMPS_SHORTFALL not in outcome.decision.reasons
        record = outcome.purchase
    refunded = min(sum(refunds), amount)
    assert voided_points == points_earned * refunded // amount <= points_earned
    assert voided_stamps == stamps_earned * refunded // amount <= stamps_earned
    assert record.refunded_cents == refunded
    assert (card.points_balance, card.stamp_count) == (
        points_earned - voided_points,
        stamps_earned - voided_stamps,
    )


@PROPERTY
@given(
    amount=st.integers(1, 100_000),
    points_earned=st.integers(0, 10_000),
    balance=st.integers(0, 10_000),
    refunds=st.lists(st.integers(1, 60_000), min_size=1, max_size=12),
)
def test_refunds_against_a_spent_balance_never_take_it_below_zero_nor_void_more_than_earned(
    amount: int, points_earned: int, balance: int, refunds: list[int]
) -> None:
    card = CardBalance(card_id=1, points_balance=balance)
    record = PurchaseRecord(amount, points_earned, 0)
    taken = short = 0
    for refund in refunds:
        before = record.points_voided
        outcome = decide_return(record, card, refund)
        step = -sum(c.points_delta for c in outcome.decision.changes)
        due = outcome.purchase.points_voided - before
        assert 0 <= step <= due
        assert (Reason.POINTS_SHORTFALL in outcome.decision.reasons) == (step < due)
        assert outcome.recorded == (outcome.counted_cents > 0)
        for change in outcome.decision.changes:
            apply_change(card, change, START, program())
        assert card.points_balance >= 0
        taken, short = taken + step, short + due - step
        record = outcome.purchase
    expected = points_earned * min(sum(refunds), amount) // amount
    assert taken + short == expected == record.points_voided
    assert taken <= min(balance, points_earned)
    assert card.points_balance == balance - taken


@PROPERTY
@given(
    requested=st.integers(0, 100),
    on_day=st.integers(0, 10),
    cap=st.one_of(st.none(), st.integers(1, 10)),
    since_last=st.one_of(st.none(), st.integers(1, 120 * 60)),
    cooldown=st.sampled_from([0, 5, 15, 60]),
)
def test_the_stamps_let_through_never_exceed_the_request_nor_the_room_left_in_the_day(
    requested: int, on_day: int, cap: int | None, since_last: int | None, cooldown: int
) -> None:
    terms = program(ProgramType.STAMPS, max_daily_stamps=cap, cooldown_minutes=cooldown)
    at = START
    last = None if since_last is None else at - timedelta(seconds=since_last)
    granted, reasons = stamps_allowed(terms, requested, at, StampHistory(last, on_day))
    assert 0 <= granted <= requested
    if cap is not None:
        assert granted <= max(0, cap - on_day)
    assert (granted < requested) == bool(reasons)
    assert len(reasons) <= 1
