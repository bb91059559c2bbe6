"""Small builders shared by the rule tests: programs, instants, cards and the engine's glue.

The rules take plain values; these helpers make those values read like the story a test
tells ("a hybrid program of a Luxembourg café with a 15-minute cooldown").
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from domain.models import ProgramType
from domain.rules.earn import PurchaseFacts, decide_purchase
from domain.rules.project import apply_change
from domain.rules.values import CardBalance, Decision, ProgramTerms, RewardTerms, StampHistory

LUXEMBOURG = ZoneInfo("Europe/Luxembourg")

COFFEE = RewardTerms(code="coffee", name="Free coffee", points_required=100)
CAKE = RewardTerms(code="cake", name="Cake", points_required=250)
RETIRED = RewardTerms(code="retired", name="Old mug", points_required=10, is_active=False)


def utc(
    year: int, month: int, day: int, hour: int = 12, minute: int = 0, second: int = 0
) -> datetime:
    """An instant given in UTC."""
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def lux(
    year: int, month: int, day: int, hour: int = 12, minute: int = 0, fold: int = 0
) -> datetime:
    """An instant given on a Luxembourg wall clock."""
    return datetime(year, month, day, hour, minute, tzinfo=LUXEMBOURG, fold=fold)


NOON = utc(2025, 6, 2, 12, 0)


def program(type: ProgramType = ProgramType.HYBRID, **overrides: Any) -> ProgramTerms:
    """A program with the contract's example catalog; any term overridden."""
    values: dict[str, Any] = {
        "program_id": 1,
        "merchant_id": 1,
        "type": type,
        "stamps_target": 10,
        "stamps_reward_description": "Free coffee",
        "points_per_euro": 10,
        "rewards": {r.code: r for r in (COFFEE, CAKE, RETIRED)},
    }
    values.update(overrides)
    return ProgramTerms(**values)


def purchase(
    amount_cents: int = 1000, *, stamps: int = 1, currency: str = "EUR", at: datetime = NOON
) -> PurchaseFacts:
    """A purchase as the earning rules see it."""
    return PurchaseFacts(
        amount_cents=amount_cents, currency=currency, stamps=stamps, occurred_at=at
    )


NO_HISTORY = StampHistory(last_stamp_before=None, stamps_on_day=0)


def history_of(card: CardBalance, terms: ProgramTerms, at: datetime) -> StampHistory:
    """What the engine knows of a card's earlier stamps, read from its projection.

    Valid when events arrive in time order, which is how the tests below feed them; like the
    engine's ``stamp_history``, a stamp at the very same instant counts as an earlier one.
    """
    last = (
        card.last_stamp_at if card.last_stamp_at is not None and card.last_stamp_at <= at else None
    )
    on_day = card.stamp_day_count if card.stamp_day == terms.local_day(at) else 0
    return StampHistory(last_stamp_before=last, stamps_on_day=on_day)


def apply(card: CardBalance, decision: Decision, at: datetime, terms: ProgramTerms) -> None:
    """Apply every change of a decision to the card, as the engine does."""
    for change in decision.changes:
        apply_change(card, change, at, terms)


def deltas(decision: Decision) -> tuple[int, int]:
    """The decision's total (stamps, points) movement."""
    return (
        sum(c.stamps_delta for c in decision.changes),
        sum(c.points_delta for c in decision.changes),
    )


def kinds(decision: Decision) -> list[str]:
    """The ledger entry types of a decision, in order."""
    return [c.entry_type.value for c in decision.changes]


def earn_in_order(
    card: CardBalance, terms: ProgramTerms, purchases: Iterable[PurchaseFacts]
) -> list[Decision]:
    """Run purchases through the earning rule one after the other on one card."""
    decisions = []
    for p in purchases:
        decision = decide_purchase(terms, p, history_of(card, terms, p.occurred_at))
        apply(card, decision, p.occurred_at, terms)
        decisions.append(decision)
    return decisions
