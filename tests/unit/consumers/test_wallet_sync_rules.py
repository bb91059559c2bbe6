"""The wallet sync's decisions, as plain functions: coalescing, what is due, retry delays."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from consumers.wallet_sync import RETRY_CAP_SECONDS, coalesce, is_due, is_transient, retry_delay
from streams.outputs import CardBalanceChanged


def update(card_number: str, version: int) -> CardBalanceChanged:
    return CardBalanceChanged(
        event_id=uuid.uuid4(),
        occurred_at=datetime(2026, 3, 14, 9, 30, tzinfo=UTC),
        card_number=card_number,
        merchant_code="cafe-lux",
        stamp_count=version,
        stamps_target=10,
        points_balance=0,
        is_active=True,
        version=version,
        reason="stamp_earned",
    )


def test_a_burst_coalesces_to_the_newest_version_of_each_card() -> None:
    burst = [update("A", 3), update("B", 1), update("A", 5), update("A", 4), update("A", 5)]
    assert coalesce(burst) == {"A": 5, "B": 1}
    assert coalesce([]) == {}


@pytest.mark.parametrize(
    ("announced", "synced", "due"),
    [(1, 0, True), (5, 4, True), (4, 4, False), (3, 4, False)],
)
def test_only_a_newer_version_is_due(announced: int, synced: int, due: bool) -> None:
    assert is_due(announced, synced) is due


def test_retry_delays_double_up_to_the_cap() -> None:
    assert [retry_delay(n, 60) for n in (1, 2, 3, 4)] == [60, 120, 240, 480]
    assert retry_delay(30, 60) == RETRY_CAP_SECONDS
    assert retry_delay(10_000, 60) == RETRY_CAP_SECONDS


def test_connection_trouble_is_transient_and_bad_data_is_not() -> None:
    assert is_transient(ConnectionRefusedError())
    assert is_transient(OperationalError("SELECT 1", {}, Exception("server closed")))
    assert not is_transient(IntegrityError("INSERT", {}, Exception("duplicate key")))
    assert not is_transient(ValueError("a bug"))
