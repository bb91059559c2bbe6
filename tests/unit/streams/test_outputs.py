"""Output messages: every field of CONTRACT.md section 4, always written, read back unchanged."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest

from streams.messages import (
    MODEL_OF_TOPIC,
    OUTPUT_MODELS,
    CampaignAward,
    CardBalanceChanged,
    DeadLetter,
    EventProcessed,
    ReasonCode,
    Status,
)
from streams.parsing import ParseError, parse_output
from streams.topics import TOPICS, TYPE_OF_TOPIC, Topic

NOW = datetime(2025, 3, 1, 9, 15, 0, 250000, tzinfo=UTC)
SOURCE = UUID("6f1c6a4e-0f7e-4b4e-9d0e-4c7c1c2b3a4d")

CONTRACT_REASON_CODES = [
    "store_not_found", "program_not_found", "program_inactive", "card_not_found",
    "card_inactive", "card_not_valid_at_store", "unsupported_currency",
    "below_minimum_purchase", "stamps_not_enabled", "points_not_enabled", "stamp_cooldown",
    "daily_stamp_limit", "duplicate_order", "purchase_not_seen_yet", "refund_exceeds_purchase",
    "points_shortfall", "stamps_shortfall", "insufficient_stamps", "insufficient_points",
    "unknown_reward", "below_minimum_redemption", "self_enrollment_disabled", "already_enrolled",
]  # fmt: skip


def test_reason_codes_are_exactly_the_contracts() -> None:
    assert [code.value for code in ReasonCode] == CONTRACT_REASON_CODES


def message_types(described: str) -> list[str]:
    """The types a topic's spec names ("a, b or c" for a topic of several)."""
    return re.split(r", | or ", described)


def test_every_topic_of_the_contract_has_a_model_of_its_type() -> None:
    assert set(MODEL_OF_TOPIC) == {spec.topic for spec in TOPICS}
    for topic, model in MODEL_OF_TOPIC.items():
        assert model.model_fields["type"].annotation is not str
        kind = model.model_json_schema()["properties"]["type"]
        assert kind.get("enum", [kind.get("const")]) == message_types(TYPE_OF_TOPIC[topic])
    assert set(OUTPUT_MODELS) == {spec.topic for spec in TOPICS if not spec.is_input}


def test_a_hybrid_purchase_with_a_refused_stamp_is_applied_with_its_reason() -> None:
    result = EventProcessed(
        event_id=uuid4(),
        occurred_at=NOW,
        source_event_id=SOURCE,
        source_topic=Topic.PURCHASES,
        status=Status.APPLIED,
        reasons=(ReasonCode.STAMP_COOLDOWN,),
        merchant_code="cafe-lux",
        store_code="LUX-01",
        card_number="AB12-CD34-EF56",
        stamps_delta=0,
        points_delta=125,
        stamp_count=3,
        stamps_target=10,
        points_balance=175,
    )

    written = json.loads(result.to_json())

    assert written == {
        "event_id": str(result.event_id),
        "type": "event.processed",
        "occurred_at": "2025-03-01T09:15:00.250000Z",
        "source_event_id": str(SOURCE),
        "source_topic": "loyalty.purchases.v1",
        "status": "applied",
        "reasons": ["stamp_cooldown"],
        "merchant_code": "cafe-lux",
        "store_code": "LUX-01",
        "card_number": "AB12-CD34-EF56",
        "stamps_delta": 0,
        "points_delta": 125,
        "stamp_count": 3,
        "stamps_target": 10,
        "points_balance": 175,
        "cards_expired": None,
        "points_expired": None,
    }
    assert parse_output(Topic.RESULTS, result.to_json()) == result


def test_an_event_without_a_card_writes_null_card_fields() -> None:
    result = EventProcessed(
        event_id=uuid4(),
        occurred_at=NOW,
        source_event_id=SOURCE,
        source_topic=Topic.REDEMPTIONS,
        status=Status.REJECTED,
        reasons=(ReasonCode.CARD_NOT_FOUND,),
        merchant_code="cafe-lux",
        store_code="LUX-01",
    )

    written = json.loads(result.to_json())

    assert written["card_number"] is None
    assert written["points_balance"] is None
    assert written["reasons"] == ["card_not_found"]


def test_an_expiry_run_reports_counts_instead_of_card_fields() -> None:
    result = EventProcessed(
        event_id=uuid4(),
        occurred_at=NOW,
        source_event_id=SOURCE,
        source_topic=Topic.EXPIRY,
        status=Status.APPLIED,
        merchant_code=None,
        cards_expired=12,
        points_expired=3400,
    )

    written = json.loads(result.to_json())

    assert (written["cards_expired"], written["points_expired"]) == (12, 3400)
    assert written["card_number"] is None
    assert written["store_code"] is None
    assert written["reasons"] == []


def test_a_balance_change_carries_its_version_and_ledger_reason() -> None:
    change = CardBalanceChanged(
        event_id=uuid4(),
        occurred_at=NOW,
        card_number="AB12-CD34-EF56",
        merchant_code="cafe-lux",
        stamp_count=4,
        stamps_target=10,
        points_balance=175,
        is_active=True,
        version=7,
        reason="earn",
        source_event_id=SOURCE,
    )

    written = json.loads(change.to_json())

    assert list(written) == [
        "event_id", "type", "occurred_at", "card_number", "merchant_code", "stamp_count",
        "stamps_target", "points_balance", "points_pending", "is_active", "version", "reason",
        "source_event_id",
    ]  # fmt: skip
    assert written["type"] == "card.balance_changed"
    assert parse_output(Topic.WALLET_UPDATES, change.to_json()) == change


@pytest.mark.parametrize(
    ("field", "value"), [("is_active", "true"), ("is_active", 1), ("version", 0), ("version", "7")]
)
def test_a_balance_change_is_read_strictly_too(field: str, value: object) -> None:
    change = CardBalanceChanged(
        event_id=uuid4(),
        occurred_at=NOW,
        card_number="AB12-CD34-EF56",
        merchant_code="cafe-lux",
        stamp_count=0,
        points_balance=0,
        is_active=True,
        version=1,
        reason="enroll",
    )
    written = json.loads(change.to_json())
    written[field] = value

    result = parse_output(Topic.WALLET_UPDATES, json.dumps(written).encode())

    assert isinstance(result, ParseError)
    assert result.fields == (field,)


def test_a_dead_letter_writes_every_field() -> None:
    letter = DeadLetter(
        event_id=uuid4(),
        occurred_at=NOW,
        source_topic="loyalty.purchases.v1",
        partition=3,
        offset=1234,
        key=None,
        payload="{",
        error="value is not valid JSON",
    )

    written = json.loads(letter.to_json())

    assert written["type"] == "dead_letter"
    assert written["key"] is None
    assert parse_output(Topic.DLQ, letter.to_json()) == letter


def test_parse_output_knows_only_output_topics() -> None:
    result = parse_output(Topic.PURCHASES, b"{}")

    assert isinstance(result, ParseError)
    assert "no output message" in result.message


def test_a_purchases_result_may_say_what_each_campaign_added() -> None:
    result = EventProcessed(
        event_id=uuid4(),
        occurred_at=NOW,
        source_event_id=SOURCE,
        source_topic=Topic.PURCHASES,
        status=Status.APPLIED,
        points_delta=250,
        campaigns=(
            CampaignAward(id="double-tuesday", points=100),
            CampaignAward(id="welcome-week", points=25),
        ),
    )

    written = json.loads(result.to_json())

    assert written["campaigns"] == [
        {"id": "double-tuesday", "points": 100},
        {"id": "welcome-week", "points": 25},
    ]
    assert parse_output(Topic.RESULTS, result.to_json()) == result


def test_a_result_without_campaigns_is_written_as_in_v1() -> None:
    result = EventProcessed(
        event_id=uuid4(),
        occurred_at=NOW,
        source_event_id=SOURCE,
        source_topic=Topic.RETURNS,
        status=Status.HELD,
    )

    written = json.loads(result.to_json())

    assert "campaigns" not in written
    assert parse_output(Topic.RESULTS, result.to_json()) == result
