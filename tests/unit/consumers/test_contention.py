"""A transaction PostgreSQL aborted for another's sake (a deadlock, a serialization failure)
is tried again, and never makes an event a dead letter.

``_apply`` (one transaction) is a stand-in here; ``tests/pipeline/test_batches.py`` makes a
real deadlock against PostgreSQL.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

import consumers.pipeline as pipeline
from consumers.pipeline import Counts, Parsed, apply_records
from tests.pipeline.stories import key_of, purchase, topic_of


@dataclass
class Rec:
    """A Kafka record as the pipeline reads it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def _purchase(offset: int) -> Rec:
    message = purchase("STORE-1", "AAAA-BBBB-CCCC", 100)
    return Rec(topic_of(message), 0, offset, key_of(message).encode(), json.dumps(message).encode())


class Transactions:
    """``_apply`` raising, call after call, what ``script`` says (None: it goes through; past
    the script's end, every call goes through); an event of ``at_fault`` always fails.
    Dead letters always go through."""

    def __init__(
        self,
        script: list[BaseException | None],
        at_fault: uuid.UUID | None = None,
        outcome: str = "applied",
    ) -> None:
        self.script = script
        self.at_fault = at_fault
        self.outcome = outcome
        self.calls: list[Parsed] = []

    async def __call__(
        self, pool: object, parsed: Parsed, counts: Counts, dry_run: bool, flow: Any = None
    ) -> None:
        n = len(self.calls)
        self.calls.append(parsed)
        if parsed.dead:
            counts.dead_lettered += len(parsed.dead)
            return
        error = self.script[n] if n < len(self.script) else None
        if any(ev.command.event_id == self.at_fault for ev in parsed.events):
            error = asyncpg.UniqueViolationError("duplicate key value")
        if error is not None:
            raise error
        setattr(counts, self.outcome, getattr(counts, self.outcome) + len(parsed.events))


async def test_a_deadlocked_batch_is_tried_again_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    tx = Transactions([asyncpg.DeadlockDetectedError("deadlock detected")] * 2)
    monkeypatch.setattr(pipeline, "_apply", tx)
    counts = await apply_records(None, [_purchase(1), _purchase(2)])  # type: ignore[arg-type]
    assert [len(p.events) for p in tx.calls] == [2, 2, 2]
    assert (counts.applied, counts.retried_one_by_one, counts.dead_lettered) == (2, 0, 0)


async def test_contention_that_lasts_leaves_the_batch_for_later_never_a_dead_letter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tx = Transactions([asyncpg.SerializationError("could not serialize")] * 100)
    monkeypatch.setattr(pipeline, "_apply", tx)
    with pytest.raises(asyncpg.SerializationError):
        await apply_records(None, [_purchase(1)])  # type: ignore[arg-type]
    assert len(tx.calls) == pipeline.CONTENTION_TRIES
    assert all(not p.dead for p in tx.calls)


async def test_an_event_deadlocked_one_by_one_is_tried_again_not_dead_lettered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The batch failed on a data error; one by one, the first event's transaction deadlocks
    # once, then goes through.
    tx = Transactions(
        [
            asyncpg.CheckViolationError("a constraint the rules did not foresee"),
            asyncpg.DeadlockDetectedError("deadlock detected"),
        ]
    )
    monkeypatch.setattr(pipeline, "_apply", tx)
    counts = await apply_records(None, [_purchase(1), _purchase(2)])  # type: ignore[arg-type]
    assert (counts.applied, counts.retried_one_by_one, counts.dead_lettered) == (2, 2, 0)
    assert [len(p.events) for p in tx.calls] == [2, 1, 1, 1]


async def test_an_event_failing_once_one_by_one_is_read_again_before_it_is_dead_lettered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Another worker enrolled the same customer meanwhile (a rebalance overlap): the event's
    # own transaction fails once on the email's unique index, and is a duplicate when read
    # again. An event at fault fails both times and is dead-lettered.
    first, second = _purchase(1), _purchase(2)
    unique = asyncpg.UniqueViolationError("duplicate key value")
    bad = uuid.UUID(json.loads(second.value or b"{}")["event_id"])
    tx = Transactions([unique, unique], at_fault=bad, outcome="duplicate")
    monkeypatch.setattr(pipeline, "_apply", tx)
    counts = await apply_records(None, [first, second])  # type: ignore[arg-type]
    assert (counts.duplicate, counts.dead_lettered) == (1, 1)
    # The batch, the first event twice, the second twice, its dead letter.
    assert [len(p.events) for p in tx.calls] == [2, 1, 1, 1, 1, 0]


@pytest.mark.parametrize(
    ("error", "logged"),
    [
        (
            'card.email: must be an email address (got "jane.doe@"); amount_cents: is required',
            "card.email: must be an email address",
        ),
        (
            "could not be applied: UniqueViolationError: duplicate key value violates unique "
            'constraint "uq_customers_merchant_email_live"\nDETAIL:  Key (merchant_id, email)='
            "(6, jane@example.com) already exists.",
            "could not be applied: UniqueViolationError",
        ),
    ],
)
def test_a_dead_letters_log_line_names_the_field_or_the_failure_never_the_values(
    error: str, logged: str
) -> None:
    assert pipeline.loggable(error) == logged


def test_a_database_failure_is_described_by_its_kind_and_constraint() -> None:
    exc = asyncpg.UniqueViolationError("duplicate key value")
    exc.constraint_name = "uq_customers_merchant_email_live"
    exc.detail = "Key (merchant_id, email)=(6, jane@example.com) already exists."
    assert pipeline.described(exc) == (
        "UniqueViolationError constraint_name=uq_customers_merchant_email_live"
    )
