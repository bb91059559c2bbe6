"""Parsing never stops a partition: anything unreadable becomes a dead letter that loses nothing."""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from streams.broker import MAX_REQUEST_SIZE
from streams.messages import (
    INPUT_MODELS,
    CardBalanceChanged,
    DeadLetter,
    EnrollmentRequested,
    EventProcessed,
    ExpiryRunRequested,
    PurchaseCompleted,
    PurchaseReturned,
    RewardRedeemRequested,
    Status,
)
from streams.parsing import (
    RULES,
    ParseError,
    dead_letter_for,
    key_for,
    parse_input,
    parse_output,
    record_for,
)
from streams.topics import INPUT_TOPICS, Topic
from tests.unit.streams import samples
from tests.unit.streams.samples import SAMPLES, encoded

# --- values that are not messages at all ---------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"\xff\xfe{}", "value is not UTF-8 text (invalid start byte: byte 0xff at 0)"),
        (
            b'{"a": "caf\xe9"}',
            "value is not UTF-8 text (invalid continuation byte: byte 0xe9 at 10)",
        ),
        (
            b"{",
            "value is not valid JSON"
            " (Expecting property name enclosed in double quotes at line 1, column 2)",
        ),
        (
            b'{"type": "purchase.completed",}',
            "value is not valid JSON"
            " (Expecting property name enclosed in double quotes at line 1, column 31)",
        ),
        (b"purchase", "value is not valid JSON (Expecting value at line 1, column 1)"),
        (b"[1, 2]", "value must be a JSON object (got an array)"),
        (b'"purchase"', "value must be a JSON object (got a string)"),
        (b"42", "value must be a JSON object (got a number)"),
        (b"true", "value must be a JSON object (got a boolean)"),
        (b"null", "value must be a JSON object (got null)"),
        (b"", "value is empty, not a JSON object"),
        (b" \n", "value is empty, not a JSON object"),
        (None, "value is null (a tombstone), not a message"),
        (b"[" * 100_000, "value is not valid JSON (nested too deeply)"),
    ],
)
def test_a_value_that_is_no_json_object_says_why(raw: bytes | None, error: str) -> None:
    result = parse_input(Topic.PURCHASES, raw)

    assert result == ParseError(error)


def test_an_unknown_topic_is_an_error_not_an_exception() -> None:
    result = parse_input("loyalty.purchases.v2", encoded(samples.purchase()))

    assert isinstance(result, ParseError)
    assert result.message == "topic loyalty.purchases.v2 carries no input message of contract v1"


def test_an_output_topic_is_no_input() -> None:
    assert isinstance(parse_input(Topic.RESULTS, encoded(samples.purchase())), ParseError)


def test_every_input_field_has_a_rule_in_words() -> None:
    def paths(model: type[BaseModel], prefix: str = "") -> set[str]:
        found: set[str] = set()
        for name, field in model.model_fields.items():
            path = f"{prefix}{name}"
            found.add(path)
            for nested in _models_in(field.annotation):
                found |= paths(nested, f"{path}.")
        return found

    every = set().union(*(paths(model) for model in INPUT_MODELS.values()))
    # type and channel depend on the topic and are worded per message; reward.kind is the tag.
    assert every - {"type", "channel", "reward.kind"} <= set(RULES)
    assert "reward.kind" in RULES


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in getattr(annotation, "__args__", ()) for m in _models_in(arg)]


# --- dead letters --------------------------------------------------------------------------


def test_a_dead_letter_holds_the_original_text_and_where_it_came_from() -> None:
    raw = b'{"event_id": "x", "amount_cents": "12"}'
    error = parse_input(Topic.PURCHASES, raw)
    assert isinstance(error, ParseError)
    before = datetime.now(UTC)

    letter = dead_letter_for(Topic.PURCHASES, 4, 1234, b"AB12-CD34-EF56", raw, error)

    assert letter.type == "dead_letter"
    assert letter.source_topic == "loyalty.purchases.v1"
    assert (letter.partition, letter.offset) == (4, 1234)
    assert letter.key == "AB12-CD34-EF56"
    assert letter.payload == raw.decode()
    assert letter.error == error.message
    assert letter.error.startswith('event_id: must be a UUID string (got "x")')
    assert before <= letter.occurred_at <= datetime.now(UTC)
    assert letter.occurred_at.utcoffset() is not None
    assert parse_output(Topic.DLQ, letter.to_json()) == letter
    assert key_for(letter) == "AB12-CD34-EF56"


def test_each_dead_letter_is_a_new_event() -> None:
    first = dead_letter_for(Topic.PURCHASES, 0, 1, None, b"{", "bad")
    second = dead_letter_for(Topic.PURCHASES, 0, 1, None, b"{", "bad")

    assert first.event_id != second.event_id
    assert first.key is None
    assert key_for(first) is None


@pytest.mark.parametrize(
    "raw", [b"\xff\xfe\x00garbage", os.urandom(64) + b"\xff", b'{"a": "caf\xe9"}'], ids=str
)
def test_a_value_that_is_not_utf8_is_kept_in_base64(raw: bytes) -> None:
    error = parse_input(Topic.RETURNS, raw)
    assert isinstance(error, ParseError)

    letter = dead_letter_for(Topic.RETURNS, 0, 7, "k", raw, error)

    assert base64.b64decode(letter.payload, validate=True) == raw
    assert letter.error.startswith("value is not UTF-8 text")
    assert letter.error.endswith("; payload is base64")


def test_a_key_that_is_not_utf8_is_kept_readable() -> None:
    letter = dead_letter_for(Topic.PURCHASES, 0, 0, b"card-\xff", b"{", "bad")

    assert letter.key == "card-\\xff"


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("random bytes", bytes(range(256)) * 4),
        ("invalid JSON", b'{"event_id": '),
        ("a JSON array", encoded([samples.purchase()])),
        ("a missing field", encoded({k: v for k, v in samples.purchase().items() if k != "card"})),
        ("a mistyped field", encoded({**samples.purchase(), "amount_cents": "12.50"})),
        ("the wrong type", encoded({**samples.purchase(), "type": "reward.redeem_requested"})),
        ("non-UTF-8 bytes", "achat café".encode("latin-1")),
    ],
)
def test_everything_unreadable_becomes_a_dead_letter_that_loses_nothing(
    name: str, raw: bytes
) -> None:
    error = parse_input(Topic.PURCHASES, raw)
    assert isinstance(error, ParseError), name

    letter = dead_letter_for(Topic.PURCHASES, 1, 99, b"key", raw, error)
    reread = parse_output(Topic.DLQ, letter.to_json())

    assert isinstance(reread, DeadLetter)
    payload = reread.payload
    original = (
        base64.b64decode(payload) if "payload is base64" in reread.error else payload.encode()
    )
    assert original == raw
    assert reread.error


def test_a_one_megabyte_payload_fits_a_dead_letter() -> None:
    big = {**samples.purchase(), "order_reference": "x" * 1024 * 1024}
    raw = encoded(big)
    error = parse_input(Topic.PURCHASES, raw)
    assert isinstance(error, ParseError)
    assert error.fields == ("order_reference",)

    letter = dead_letter_for(Topic.PURCHASES, 0, 0, None, raw, error)

    assert letter.payload == raw.decode()
    assert len(letter.error) < 200
    assert len(letter.to_json()) < MAX_REQUEST_SIZE


def test_a_megabyte_of_control_characters_is_base64_to_fit_a_request() -> None:
    # Valid UTF-8, but JSON would escape each byte as six: 6 MB would not fit 5 MB.
    raw = b"\x01" * 1024 * 1024

    letter = dead_letter_for(Topic.PURCHASES, 0, 0, None, raw, "value is not valid JSON")

    assert base64.b64decode(letter.payload) == raw
    assert letter.error == "value is not valid JSON; payload is base64"
    assert len(letter.to_json()) < MAX_REQUEST_SIZE


# --- keys ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "message", "key"),
    [
        (Topic.PURCHASES, samples.purchase(), "AB12-CD34-EF56"),
        (
            Topic.PURCHASES,
            {**samples.purchase(), "card": {"card_number": "ab12 cd34 ef56"}},
            "AB12-CD34-EF56",
        ),
        (Topic.PURCHASES, samples.minimal_purchase(), "jo@example.com"),
        (Topic.RETURNS, samples.purchase_return(), "qr-7f3a9c"),
        (
            Topic.RETURNS,
            {k: v for k, v in samples.purchase_return().items() if k != "card"},
            "POS-000123",
        ),
        (Topic.ENROLLMENTS, samples.enrollment(), "marie.muller@example.lu"),
        (Topic.ENROLLMENTS, {**samples.enrollment(), "customer": {"customer_ref": "C-42"}}, "C-42"),
        (Topic.REDEMPTIONS, samples.redemption(), "C-42"),
        (Topic.EXPIRY, samples.expiry(), "cafe-lux"),
        (Topic.EXPIRY, {k: v for k, v in samples.expiry().items() if k != "merchant_code"}, "all"),
    ],
)
def test_inputs_are_keyed_as_section_1_says(
    topic: Topic, message: dict[str, Any], key: str
) -> None:
    parsed = parse_input(topic, encoded(message))
    assert not isinstance(parsed, ParseError), parsed

    assert key_for(parsed) == key
    assert record_for(parsed) == (topic.value, key.encode(), parsed.to_json())


def test_outputs_are_keyed_as_section_1_says() -> None:
    now = datetime.now(UTC)
    source = uuid4()
    result = EventProcessed(
        event_id=uuid4(),
        occurred_at=now,
        source_event_id=source,
        source_topic=Topic.PURCHASES,
        status=Status.HELD,
    )
    change = CardBalanceChanged(
        event_id=uuid4(),
        occurred_at=now,
        card_number="AB12-CD34-EF56",
        merchant_code="cafe-lux",
        stamp_count=1,
        points_balance=0,
        is_active=True,
        version=2,
        reason="earn",
    )

    assert key_for(result) == str(source)
    assert record_for(result).topic == "loyalty.results.v1"
    assert key_for(change) == "AB12-CD34-EF56"
    assert record_for(change).topic == "loyalty.wallet-updates.v1"
    assert record_for(dead_letter_for("t", 0, 0, None, b"", "empty")).key is None


def test_key_for_refuses_what_is_not_a_message() -> None:
    with pytest.raises(TypeError):
        key_for(UUID(int=0))  # type: ignore[call-overload]


def test_every_input_model_is_keyed() -> None:
    for topic, build in SAMPLES.items():
        parsed = parse_input(topic, encoded(build()))
        assert isinstance(
            parsed,
            PurchaseCompleted
            | PurchaseReturned
            | EnrollmentRequested
            | RewardRedeemRequested
            | ExpiryRunRequested,
        )
        assert key_for(parsed)


# --- never raises --------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)
input_topics = st.sampled_from(INPUT_TOPICS)


def _check(result: object) -> None:
    if isinstance(result, ParseError):
        assert result.message
        letter = dead_letter_for(Topic.PURCHASES, 0, 0, None, b"", result)
        assert letter.error == result.message
    else:
        assert type(result) in INPUT_MODELS.values()


@given(input_topics, st.binary(max_size=512))
def test_parse_input_never_raises_on_arbitrary_bytes(topic: Topic, raw: bytes) -> None:
    _check(parse_input(topic, raw))


@given(input_topics, json_values)
def test_parse_input_never_raises_on_arbitrary_json(topic: Topic, value: Any) -> None:
    _check(parse_input(topic, json.dumps(value).encode()))


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_bad_value_in_one_field_is_blamed_on_that_field(data: st.DataObject) -> None:
    topic = data.draw(input_topics)
    message = SAMPLES[topic]()
    field = data.draw(st.sampled_from(sorted(message)))
    message[field] = data.draw(json_values)

    result = parse_input(topic, encoded(message))

    if isinstance(result, ParseError):
        assert result.message.startswith(f"{field}")
        assert all(path.startswith(field) for path in result.fields)


def test_the_event_id_is_peeked_without_reading_the_rest() -> None:
    from streams.parsing import peek_event_id

    eid = uuid4()
    assert peek_event_id(f'{{"event_id":"{eid}","amount_cents":"not checked"}}'.encode()) == eid
    assert peek_event_id(f'{{"type":"x","event_id":"{eid}"}}'.encode()) == eid
    for raw in (
        None,
        b"",
        b"{not json",
        b"[1, 2]",
        b'{"type": "purchase.completed"}',
        b'{"event_id": 12}',
        b'{"event_id": "not-a-uuid"}',
        b'{"event_id": null}',
    ):
        assert peek_event_id(raw) is None, raw
