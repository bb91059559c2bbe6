"""The quick purchase path (``streams.quick``) against the model path it stands in for: on
any message it takes, it must make the very command ``parse_input`` + ``to_command`` make,
and it must never take a message the model path refuses."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.commands import to_command
from streams.parsing import ParseError, parse_input
from streams.quick import quick_purchase, read_command
from streams.topics import Topic
from tests.unit.streams.samples import minimal_purchase, purchase

PURCHASES = Topic.PURCHASES.value


def _model_way(raw: bytes) -> Any:
    message = parse_input(PURCHASES, raw)
    return message if isinstance(message, ParseError) else to_command(message)


def _agree(raw: bytes) -> None:
    quick = quick_purchase(raw)
    model = _model_way(raw)
    if quick is None:
        return  # the model path decides, as read_command does
    assert not isinstance(model, ParseError), (raw, model)
    assert quick == model
    assert quick.occurred_at.utcoffset() == model.occurred_at.utcoffset()
    assert quick.occurred_at.isoformat() == model.occurred_at.isoformat()


def test_a_plain_purchase_takes_the_quick_path_and_makes_the_same_command() -> None:
    for message in (purchase(), minimal_purchase()):
        raw = json.dumps(message).encode()
        assert quick_purchase(raw) is not None
        _agree(raw)


def test_lines_are_read_the_same_way() -> None:
    message = purchase() | {
        "lines": [
            {"sku": "latte", "category": "coffee", "quantity": 2, "amount_cents": 700},
            {"sku": "croissant", "quantity": 1, "amount_cents": 250},
        ]
    }
    raw = json.dumps(message).encode()
    assert quick_purchase(raw) is not None
    _agree(raw)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("amount_cents", 12.0),
        ("amount_cents", "12"),
        ("amount_cents", True),
        ("amount_cents", -1),
        ("amount_cents", 2**63),
        ("stamps", 101),
        ("currency", "eur"),
        ("currency", "EUR\n"),
        ("occurred_at", "2025-03-01T10:15:00"),
        ("occurred_at", "2025-03-01T10:15+01:00"),
        ("occurred_at", "2025-03-01T10:15:60+01:00"),
        ("occurred_at", "2025-03-01T10:15:00+12:99"),
        ("occurred_at", "2025-03-01T10:15:00+00:60"),
        ("occurred_at", 1700000000),
        ("channel", "phone"),
        ("type", "purchase.returned"),
        ("card", {"card_number": "AB12-CD34-EF56", "email": "a@b.c"}),
        ("card", {"card_number": "AB12-CD34-EF5"}),
        ("card", {"email": "no-at-sign"}),
        ("card", {"email": " \x1cjo@example.com"}),
        ("card", {}),
        ("store_code", ""),
        ("order_reference", "x" * 101),
        ("staff_ref", "x" * 1001),
        ("lines", [{"sku": "a", "quantity": 1, "amount_cents": 999_999}]),
        ("lines", [{"sku": "a", "quantity": 0, "amount_cents": 1}]),
        ("event_id", "not-a-uuid"),
    ],
)
def test_what_the_contract_refuses_is_left_to_the_model_path(field: str, value: Any) -> None:
    raw = json.dumps(purchase() | {field: value}).encode()
    assert quick_purchase(raw) is None
    assert isinstance(read_command(PURCHASES, raw), ParseError)


def test_a_field_this_path_does_not_read_sends_the_message_the_model_way() -> None:
    # The model ignores unknown fields, but refuses them nested too deeply or not UTF-8: the
    # quick path cannot tell, so it takes none of them.
    raw = json.dumps(purchase() | {"note": "hi"}).encode()
    assert quick_purchase(raw) is None
    assert read_command(PURCHASES, raw) == _model_way(raw)
    card = purchase() | {"card": {"card_number": "AB12-CD34-EF56", "note": 1}}
    assert quick_purchase(json.dumps(card).encode()) is None


@pytest.mark.parametrize("depth", [300, 5_000])
def test_a_deeply_nested_field_is_a_dead_letter_not_a_crash(depth: int) -> None:
    raw = json.dumps(purchase()).encode()[:-1] + b', "x": ' + b"[" * depth + b"]" * depth + b"}"
    assert quick_purchase(raw) is None
    assert isinstance(read_command(PURCHASES, raw), ParseError)


def test_bytes_that_are_not_utf8_are_a_dead_letter() -> None:
    raw = json.dumps(purchase()).encode()[:-1] + b', "x": "' + bytes([0xFF]) + b'"}'
    assert quick_purchase(raw) is None
    assert isinstance(read_command(PURCHASES, raw), ParseError)


def test_read_command_falls_back_for_other_topics_and_bad_bytes() -> None:
    assert isinstance(read_command(PURCHASES, b"\xff"), ParseError)
    assert isinstance(read_command(PURCHASES, None), ParseError)
    raw = json.dumps(purchase()).encode()
    assert read_command(PURCHASES, raw) == _model_way(raw)


_texts = st.text(max_size=8) | st.sampled_from(
    ["", " ", "AB12-CD34-EF56", "ab12cd34ef56", "Jo@Example.COM", " jo@x.lu ", "İ@x.lu"]
)
_times = st.sampled_from(
    [
        "2025-03-01T10:15:00+01:00",
        "2025-03-01T10:15:00Z",
        "2025-03-01t10:15:00z",
        "2025-03-01 10:15:00.5-00:00",
        "2025-03-01T10:15:00.1234567+01:00",
        "2025-03-01T23:59:60Z",
        "2025-02-30T10:15:00Z",
        "0000-01-01T00:00:00Z",
        "2025-03-01T10:15:00+24:00",
        "2025-03-01T10:15:00+23:59",
    ]
) | st.text(max_size=30)
_ints = st.integers(min_value=-3, max_value=2**64) | st.sampled_from([0, 1, 100, 101, 2**63 - 1])
_values = st.none() | st.booleans() | _ints | st.floats(allow_nan=False) | _texts
_cards = st.dictionaries(
    st.sampled_from(["card_number", "qr_code", "email", "customer_ref", "other"]),
    _values,
    max_size=3,
)
_lines = st.lists(
    st.dictionaries(
        st.sampled_from(["sku", "category", "quantity", "amount_cents"]), _values, max_size=4
    )
    | st.fixed_dictionaries(
        {"sku": _texts, "quantity": _ints, "amount_cents": _ints},
        optional={"category": _texts | st.none()},
    ),
    max_size=3,
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_quick_path_never_disagrees_with_the_model_path(data: st.DataObject) -> None:
    message: dict[str, Any] = purchase() if data.draw(st.booleans()) else minimal_purchase()
    fields = {
        "event_id": _texts | st.sampled_from(["6F1C6A4E0F7E4B4E9D0E4C7C1C2B3A4D"]),
        "type": st.sampled_from(["purchase.completed", "purchase.returned"]) | _values,
        "occurred_at": _times | _values,
        "store_code": _texts | _values,
        "order_reference": _texts | _values,
        "amount_cents": _ints | _values,
        "currency": st.sampled_from(["EUR", "CHF", "eur", "EU"]) | _values,
        "card": _cards | _values,
        "channel": st.sampled_from(["online", "in_store", "ONLINE"]) | _values,
        "stamps": _ints | _values,
        "staff_ref": _texts | _values,
        "lines": _lines | _values,
        "note": _values | st.recursive(st.none(), lambda c: st.lists(c, max_size=2), max_leaves=5),
    }
    for name in data.draw(st.lists(st.sampled_from(sorted(fields)), max_size=3, unique=True)):
        if data.draw(st.booleans()):
            message[name] = data.draw(fields[name])
        else:
            message.pop(name, None)
    _agree(json.dumps(message).encode())
