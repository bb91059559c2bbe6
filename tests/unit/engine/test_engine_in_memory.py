"""The engine's decisions, story by story, against the in-memory unit of work: the same
handlers as the pipeline's, in milliseconds and without a stack. The same stories run
against PostgreSQL and Kafka in tests/pipeline."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

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
from core.enums import CardRefKind, EnrollmentChannel, ProgramType, Topic
from domain.engine.batch import BatchOutcome, ConcurrentDuplicate, Inbound, apply_batch
from domain.engine.outputs import Result
from domain.engine.state import StoreInfo
from domain.rules.values import ProgramTerms, Reason, RewardTerms
from tests.unit.engine.fakes import FakeUnitOfWork

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TOPIC = {
    Purchase: Topic.PURCHASES,
    Return: Topic.RETURNS,
    Enrol: Topic.ENROLLMENTS,
    Redeem: Topic.REDEMPTIONS,
    ExpiryRun: Topic.EXPIRY,
}


def _terms(**changes: Any) -> ProgramTerms:
    base = ProgramTerms(
        program_id=1,
        merchant_id=1,
        type=ProgramType.HYBRID,
        stamps_target=3,
        points_per_euro=10,
        welcome_bonus_points=50,
        rewards={"coffee": RewardTerms("coffee", "Coffee", 100)},
    )
    return replace(base, **changes)


def _world(*, cross_location: bool = True, **terms: Any) -> FakeUnitOfWork:
    uow = FakeUnitOfWork()
    program = _terms(**terms)
    for store_id, code in ((1, "S1"), (2, "S2")):
        uow.stores[code] = StoreInfo(store_id, code, 1, "m1", True, cross_location, program)
    uow.stores["OTHER"] = StoreInfo(
        9, "OTHER", 2, "m2", True, True, replace(program, program_id=2, merchant_id=2)
    )
    return uow


async def _run(uow: FakeUnitOfWork, *commands: Command) -> BatchOutcome:
    events = [Inbound(TOPIC[type(c)].value, c) for c in commands]
    saved = uow.begin()  # the caller's transaction: a failed batch rolls back
    try:
        return await apply_batch(uow, events, T0 + timedelta(days=400))
    except BaseException:
        uow.rollback(saved)
        raise


def _enrol(email: str, store: str = "S1", channel: str = "staff") -> Enrol:
    return Enrol(uuid.uuid4(), T0, store, CustomerDetails(email=email), EnrollmentChannel(channel))


def _buy(number: str, cents: int, order: str, *, at: datetime = T0, store: str = "S1") -> Purchase:
    ref = CardRef(CardRefKind.CARD_NUMBER, number)
    return Purchase(uuid.uuid4(), at, store, order, cents, "EUR", ref)


def _return(order: str, cents: int, *, store: str = "S1") -> Return:
    return Return(uuid.uuid4(), T0 + timedelta(hours=1), store, order, cents)


async def _card(uow: FakeUnitOfWork, email: str = "ann@example.com", **kw: Any) -> str:
    (result,) = (await _run(uow, _enrol(email, **kw))).results
    assert result.card_number is not None
    return result.card_number


def _only(outcome: BatchOutcome) -> Result:
    (result,) = outcome.results
    return result


async def test_a_new_card_gets_its_welcome_bonus_and_a_wallet_update() -> None:
    uow = _world()
    number = await _card(uow)
    card = uow.card(number)
    assert (card.balance.points_balance, card.balance.version) == (50, 1)
    assert [o.payload["reason"] for o in uow.outputs(Topic.WALLET_UPDATES.value)] == [
        "welcome_bonus"
    ]
    assert [e[3] for e in uow.ledger] == ["card_created", "welcome_bonus"]


async def test_enrolling_again_returns_the_card_as_already_enrolled() -> None:
    uow = _world()
    number = await _card(uow)
    again = _only(await _run(uow, _enrol("ann@example.com", store="S2")))
    assert (again.status, again.reasons, again.card_number) == (
        "applied",
        [Reason.ALREADY_ENROLLED],
        number,
    )
    assert len(uow.cards) == 1


async def test_without_cross_location_a_card_is_per_store_and_only_valid_there() -> None:
    uow = _world(cross_location=False)
    number = await _card(uow)
    other = await _card(uow, store="S2")
    assert other != number
    refused = _only(await _run(uow, _buy(number, 500, "o-1", store="S2")))
    assert (refused.status, refused.reasons) == ("rejected", [Reason.CARD_NOT_VALID_AT_STORE])


async def test_self_enrolment_is_refused_when_switched_off() -> None:
    uow = _world()
    uow.stores["S1"] = replace(uow.stores["S1"], allow_self_enrollment=False)
    result = _only(await _run(uow, _enrol("bob@example.com", channel="self")))
    assert (result.status, result.reasons) == ("rejected", [Reason.SELF_ENROLLMENT_DISABLED])
    assert not uow.cards


async def test_a_purchase_earns_points_and_a_stamp() -> None:
    uow = _world()
    number = await _card(uow)
    result = _only(await _run(uow, _buy(number, 1234, "o-1")))
    assert (result.status, result.points_delta, result.stamps_delta) == ("applied", 123, 1)
    assert uow.card(number).balance.points_balance == 173


@pytest.mark.parametrize(
    ("store", "reason"),
    [("NOPE", Reason.STORE_NOT_FOUND), ("OTHER", Reason.CARD_NOT_FOUND)],
)
async def test_an_unknown_store_or_another_merchants_card_is_refused(
    store: str, reason: Reason
) -> None:
    uow = _world()
    number = await _card(uow)
    result = _only(await _run(uow, _buy(number, 500, "o-1", store=store)))
    assert (result.status, result.reasons) == ("rejected", [reason])


async def test_an_inactive_program_and_an_inactive_card_are_refused() -> None:
    uow = _world()
    number = await _card(uow)
    uow.card(number).balance.is_active = False
    refused = _only(await _run(uow, _buy(number, 500, "o-1")))
    assert refused.reasons == [Reason.CARD_INACTIVE] and refused.card_number == number
    uow.stores["S1"] = replace(uow.stores["S1"], terms=replace(_terms(), is_active=False))
    assert _only(await _run(uow, _buy(number, 500, "o-2"))).reasons == [Reason.PROGRAM_INACTIVE]


async def test_a_second_purchase_with_the_same_order_is_a_duplicate_order() -> None:
    uow = _world()
    number = await _card(uow)
    first, second = (await _run(uow, _buy(number, 500, "o-1"), _buy(number, 900, "o-1"))).results
    assert first.status == "applied"
    assert (second.status, second.reasons) == ("rejected", [Reason.DUPLICATE_ORDER])


async def test_a_redelivered_event_changes_nothing_and_outputs_nothing() -> None:
    uow = _world()
    number = await _card(uow)
    buy = _buy(number, 500, "o-1")
    await _run(uow, buy)
    outputs = len(uow.outbox)
    again = await _run(uow, buy, buy)
    assert again.results == [] and again.duplicates == [buy.event_id, buy.event_id]
    assert len(uow.outbox) == outputs


async def test_a_return_before_its_purchase_is_held_then_applied_with_a_second_result() -> None:
    uow = _world()
    number = await _card(uow)
    held = _only(await _run(uow, _return("o-1", 500)))
    assert (held.status, held.reasons) == ("held", [Reason.PURCHASE_NOT_SEEN_YET])
    outcome = await _run(uow, _buy(number, 1000, "o-1"))
    purchase, applied = outcome.results
    assert (purchase.points_delta, applied.status, applied.points_delta) == (100, "applied", -50)
    assert applied.source_event_id == held.source_event_id
    assert uow.inbox[held.source_event_id][1] == "applied"
    assert not uow.held


async def test_a_refund_beyond_the_purchase_is_capped_and_a_spent_balance_is_a_shortfall() -> None:
    uow = _world(welcome_bonus_points=0)
    number = await _card(uow)
    await _run(uow, _buy(number, 1000, "o-1"))
    card = uow.card(number)
    card.balance.points_balance = 30  # spent since: the card and its lot alike
    uow.point_lots[card.card_id][card.balance.lot_count].remaining = 30
    result = _only(await _run(uow, _return("o-1", 1000)))
    assert result.points_delta == -30
    assert Reason.POINTS_SHORTFALL in result.reasons


async def test_the_stamp_cooldown_refuses_a_stamp_but_not_the_points() -> None:
    uow = _world(cooldown_minutes=15)
    number = await _card(uow)
    outcome = await _run(
        uow,
        _buy(number, 500, "o-1"),
        _buy(number, 500, "o-2", at=T0 + timedelta(minutes=5)),
    )
    second = outcome.results[1]
    assert (second.status, second.stamps_delta, second.points_delta) == ("applied", 0, 50)
    assert second.reasons == [Reason.STAMP_COOLDOWN]


async def test_an_event_older_than_the_last_stamp_asks_the_ledger() -> None:
    uow = _world(cooldown_minutes=15)
    number = await _card(uow)
    await _run(uow, _buy(number, 500, "o-1", at=T0 + timedelta(hours=2)))
    late = _only(await _run(uow, _buy(number, 500, "o-2", at=T0 + timedelta(hours=1, minutes=50))))
    assert late.reasons == []  # its cooldown looks back from 1:50, where no stamp was


async def test_a_reward_is_redeemed_or_refused_in_codes() -> None:
    uow = _world(welcome_bonus_points=0)
    number = await _card(uow)
    ref = CardRef(CardRefKind.CARD_NUMBER, number)
    refused = _only(await _run(uow, Redeem(uuid.uuid4(), T0, "S1", ref, "coffee")))
    assert refused.reasons == [Reason.INSUFFICIENT_POINTS]
    assert _only(await _run(uow, Redeem(uuid.uuid4(), T0, "S1", ref, "cake"))).reasons == [
        Reason.UNKNOWN_REWARD
    ]
    await _run(uow, *(_buy(number, 500, f"o-{i}") for i in range(3)))
    stamps = _only(await _run(uow, Redeem(uuid.uuid4(), T0, "S1", ref)))
    assert (stamps.status, stamps.stamps_delta) == ("applied", -3)


async def test_an_event_committed_by_another_worker_meanwhile_fails_the_batch_untouched() -> None:
    uow = _world()
    number = await _card(uow)
    ledger, outbox = len(uow.ledger), len(uow.outbox)
    buy = _buy(number, 500, "o-1")
    uow.committed_elsewhere.add(buy.event_id)
    with pytest.raises(ConcurrentDuplicate):
        await _run(uow, buy)
    assert uow.card(number).balance.points_balance == 50
    assert (len(uow.ledger), len(uow.outbox)) == (ledger, outbox)
    assert buy.event_id not in uow.inbox


async def test_the_expiry_run_takes_idle_balances_and_is_idempotent() -> None:
    uow = _world(points_expiration_days=30, welcome_bonus_points=0)
    idle = await _card(uow)
    await _run(uow, _buy(idle, 1000, "o-1"))
    run = ExpiryRun(uuid.uuid4(), T0 + timedelta(days=31))
    result = _only(await _run(uow, run))
    assert (result.extra["cards_expired"], result.extra["points_expired"]) == (1, 100)
    assert uow.card(idle).balance.points_balance == 0
    again = _only(await _run(uow, msgspec.structs.replace(run, event_id=uuid.uuid4())))
    assert again.status == "rejected" and again.extra["cards_expired"] == 0
