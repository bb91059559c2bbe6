"""A batch beside the batch before it, still in flight (``domain.engine.overlap``): what goes
ahead, what waits for that batch's commit, and what makes the whole batch wait.

In memory here; ``tests/pipeline/test_batches.py`` runs the same against PostgreSQL, with the
batch before holding its cards' locks, and ``tests/unit/consumers/test_worker_overlap.py``
the worker's side.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from core.commands import CardRef, CustomerDetails, Enrol, ExpiryRun, Purchase, Return
from core.enums import CardRefKind, EnrollmentChannel, Topic
from domain.engine.batch import Flow, Inbound, apply_batch
from domain.engine.overlap import BatchKeys, Overlapped, PreviousFailed, keys_of, split
from tests.unit.engine.test_engine_in_memory import T0, _buy, _card, _return, _world


def _ev(cmd: Purchase | Return | Enrol | ExpiryRun) -> Inbound:
    topic = {
        Purchase: Topic.PURCHASES,
        Return: Topic.RETURNS,
        Enrol: Topic.ENROLLMENTS,
        ExpiryRun: Topic.EXPIRY,
    }[type(cmd)]
    return Inbound(topic.value, cmd)


def _enrol(email: str) -> Enrol:
    details = CustomerDetails(email=email)
    return Enrol(uuid.uuid4(), T0, "S1", details, EnrollmentChannel.STAFF)


def test_events_sharing_nothing_go_ahead_the_others_wait_in_their_order() -> None:
    before = keys_of([_ev(_buy("1111", 500, "o-1"))], card_ids=[7])
    a = _ev(_buy("2222", 500, "o-2"))
    b = _ev(_buy("1111", 500, "o-3"))  # the card the batch before changed
    c = _ev(_buy("3333", 500, "o-4"))
    d = _ev(_return("o-3", 100))  # an order of an event that waits: waits too
    e = _ev(_return("o-1", 100))  # an order of the batch before
    f = _ev(_enrol("new@example.com"))
    parts = split([a, b, c, d, e, f], before)
    assert parts.ahead == [a, c, f]
    assert parts.behind == [b, d, e]


def test_an_event_the_batch_before_had_waits_for_its_commit() -> None:
    twice = _buy("2222", 500, "o-2")
    before = keys_of([_ev(twice)], card_ids=[])
    assert split([_ev(twice)], before).behind == [_ev(twice)]


def test_an_enrolment_waits_for_the_batch_before_that_enrolled_the_same_email() -> None:
    before = keys_of([_ev(_enrol("ann@example.com"))], card_ids=[])
    again = _ev(_enrol("ann@example.com"))
    by_email = _ev(
        Purchase(
            uuid.uuid4(), T0, "S1", "o-9", 500, "EUR", CardRef(CardRefKind.EMAIL, "ann@example.com")
        )
    )
    assert split([again, by_email], before).behind == [again, by_email]


def test_an_expiry_run_on_either_side_makes_the_whole_batch_wait() -> None:
    run = _ev(ExpiryRun(uuid.uuid4(), T0))
    purchase = _ev(_buy("2222", 500, "o-2"))
    after_run = keys_of([run], card_ids=[])
    assert after_run.exclusive
    assert split([purchase], after_run).behind == [purchase]
    assert split([purchase, run], BatchKeys()).behind == [purchase, run]


@dataclass
class Before:
    """The batch before, as the engine sees it: keys, and a commit the test releases."""

    keys: BatchKeys
    log: list[str]
    fails: bool = False
    waits: list[int] = field(default_factory=list)

    async def committed(self) -> None:
        self.waits.append(len(self.log))
        if self.fails:
            raise PreviousFailed("the batch before failed")
        if "committed" not in self.log:  # a commit, however often it is waited for
            self.log.append("committed")


async def test_ahead_events_are_decided_first_and_the_rest_after_the_commit_before() -> None:
    uow = _world()
    one, two = await _card(uow, "one@example.com"), await _card(uow, "two@example.com")
    log: list[str] = []
    before = Before(keys_of([_ev(_buy(one, 100, "o-0"))], card_ids=[uow.card(one).card_id]), log)
    decided: list[BatchKeys] = []

    def on_decided(keys: BatchKeys) -> None:
        decided.append(keys)
        log.append("decided")

    flow = Flow(before, on_decided)
    events = [_ev(_buy(one, 1000, "o-1")), _ev(_buy(two, 2000, "o-2"))]
    outcome = await apply_batch(uow, events, T0 + timedelta(days=1), flow)

    # The second card's purchase went ahead of the first's, which waited for the commit.
    assert [r.card_number for r in outcome.results] == [two, one]
    assert [r.status for r in outcome.results] == ["applied", "applied"]
    assert log == ["committed", "decided"]
    (keys,) = decided
    assert keys.card_ids == {uow.card(one).card_id, uow.card(two).card_id}
    assert {one, two, "o-1", "o-2"} <= keys.names
    assert keys.event_ids == {ev.command.event_id for ev in events}


async def test_a_card_the_batch_before_holds_under_another_name_stops_the_batch() -> None:
    uow = _world()
    number = await _card(uow)
    qr = uow.card(number).qr_token
    assert qr is not None
    held = uow.card(number).card_id
    before = Before(BatchKeys(card_ids=frozenset({held})), [])
    by_qr = Purchase(uuid.uuid4(), T0, "S1", "o-1", 500, "EUR", CardRef(CardRefKind.QR_CODE, qr))
    with pytest.raises(Overlapped):
        await apply_batch(uow, [_ev(by_qr)], T0 + timedelta(days=1), Flow(before))
    assert before.waits == []  # stopped at the load, before waiting for anything


async def test_the_batch_fails_when_the_batch_before_did() -> None:
    uow = _world()
    one, two = await _card(uow, "one@example.com"), await _card(uow, "two@example.com")
    before = Before(keys_of([_ev(_buy(one, 100, "o-0"))], card_ids=[]), [], fails=True)
    events = [_ev(_buy(one, 1000, "o-1")), _ev(_buy(two, 2000, "o-2"))]
    with pytest.raises(PreviousFailed):
        await apply_batch(uow, events, T0 + timedelta(days=1), Flow(before))
    assert before.waits  # it got as far as waiting for the batch before
