"""Line items on the wire (contract 7.1): what a purchase's and a return's `lines` may hold,
and how a bad line is refused."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.commands import Line, Purchase
from streams.commands import to_command
from streams.fields import INT64_MAX
from streams.messages import PurchaseCompleted, PurchaseLine, PurchaseReturned, ReturnedLine
from streams.parsing import ParseError, dead_letter_for, parse_input
from streams.topics import Topic
from tests.unit.streams import samples
from tests.unit.streams.samples import encoded

_LINE = {"sku": "CROISSANT", "quantity": 1, "amount_cents": 150}


def with_lines(lines: Any, **fields: Any) -> dict[str, Any]:
    """The sample purchase (1250 cents) carrying ``lines``."""
    return {**samples.purchase(), **fields, "lines": lines}


def return_with_lines(lines: Any) -> dict[str, Any]:
    """The sample return carrying ``lines``."""
    return {**samples.purchase_return(), "lines": lines}


# --- what the contract accepts ---------------------------------------------------------------


def test_a_purchase_reads_its_lines_with_and_without_category() -> None:
    message = parse_input(Topic.PURCHASES, encoded(samples.purchase_with_lines()))

    assert isinstance(message, PurchaseCompleted)
    assert message.lines == (
        PurchaseLine(sku="CROISSANT", category="pastry", quantity=3, amount_cents=450),
        PurchaseLine(sku="GIFT-CARD-5", category="gift_card", quantity=1, amount_cents=500),
        PurchaseLine(sku="BAG", quantity=1, amount_cents=0),
    )
    assert message.lines[2].category is None


def test_lines_are_written_as_received_and_read_back_unchanged() -> None:
    sent = samples.purchase_with_lines()
    message = parse_input(Topic.PURCHASES, encoded(sent))
    assert isinstance(message, PurchaseCompleted)

    written = json.loads(message.to_json())

    # An absent category stays absent rather than becoming null.
    assert written["lines"] == sent["lines"]
    assert "category" not in written["lines"][2]
    assert parse_input(Topic.PURCHASES, message.to_json()) == message


def test_a_purchase_without_lines_is_written_as_in_v1() -> None:
    message = parse_input(Topic.PURCHASES, encoded(samples.purchase()))

    assert isinstance(message, PurchaseCompleted)
    assert message.lines is None
    assert "lines" not in json.loads(message.to_json())


@pytest.mark.parametrize("lines", [[], None], ids=["empty", "null"])
def test_empty_or_null_lines_are_accepted(lines: list[Any] | None) -> None:
    purchase = parse_input(Topic.PURCHASES, encoded(with_lines(lines)))
    refund = parse_input(Topic.RETURNS, encoded(return_with_lines(lines)))

    assert isinstance(purchase, PurchaseCompleted)
    assert isinstance(refund, PurchaseReturned)
    assert not purchase.lines
    assert not refund.lines


@pytest.mark.parametrize("amount", [0, 1250])
def test_lines_may_add_up_to_the_whole_amount(amount: int) -> None:
    lines = [{**_LINE, "amount_cents": amount}, {**_LINE, "sku": "FREE", "amount_cents": 0}]

    message = parse_input(Topic.PURCHASES, encoded(with_lines(lines, amount_cents=amount)))

    assert isinstance(message, PurchaseCompleted)
    assert message.lines is not None
    assert sum(line.amount_cents for line in message.lines) == amount


def test_the_limits_of_a_line_are_inclusive() -> None:
    line = {"sku": "S" * 64, "category": "c" * 64, "quantity": INT64_MAX, "amount_cents": 1250}

    message = parse_input(Topic.PURCHASES, encoded(with_lines([line])))

    assert isinstance(message, PurchaseCompleted)
    assert message.lines == (PurchaseLine.model_validate(line),)


def test_a_return_reads_its_lines() -> None:
    message = parse_input(Topic.RETURNS, encoded(samples.return_with_lines()))

    assert isinstance(message, PurchaseReturned)
    assert message.lines == (ReturnedLine(sku="CROISSANT", quantity=2),)
    assert json.loads(message.to_json())["lines"] == [{"sku": "CROISSANT", "quantity": 2}]


def test_a_return_line_ignores_fields_it_does_not_know() -> None:
    # A till may send its purchase lines back as they were: only sku and quantity count.
    message = parse_input(Topic.RETURNS, encoded(return_with_lines([{**_LINE, "quantity": 2}])))

    assert isinstance(message, PurchaseReturned)
    assert message.lines == (ReturnedLine(sku="CROISSANT", quantity=2),)


# --- what the contract refuses ---------------------------------------------------------------

_SUM_OVER = "lines: the lines' amount_cents add up to 1300, over the purchase's amount_cents 1250"


def test_lines_over_the_amount_are_a_dead_letter_naming_lines() -> None:
    lines = [{**_LINE, "amount_cents": 1000}, {**_LINE, "sku": "TART", "amount_cents": 300}]
    raw = encoded(with_lines(lines))

    error = parse_input(Topic.PURCHASES, raw)

    assert error == ParseError(_SUM_OVER, ("lines",))
    letter = dead_letter_for(Topic.PURCHASES, 0, 42, b"AB12-CD34-EF56", raw, error)
    assert letter.error == _SUM_OVER
    assert letter.payload == raw.decode()


def test_a_bad_amount_is_blamed_alone_not_on_the_lines() -> None:
    # Without a valid amount there is nothing to hold the lines to.
    error = parse_input(Topic.PURCHASES, encoded(with_lines([_LINE], amount_cents="12")))

    assert isinstance(error, ParseError)
    assert error.fields == ("amount_cents",)


_PURCHASE_LINE = "{sku, category?, quantity, amount_cents}"
_ITEM_CODE = "must be a string of 1 to 64 characters"

REFUSED: list[tuple[Topic, Any, str]] = [
    # topic, lines sent, the error in full
    (
        Topic.PURCHASES,
        [{**_LINE, "quantity": 0}],
        "lines[0].quantity: must be an integer >= 1 (got 0)",
    ),
    (
        Topic.PURCHASES,
        [{**_LINE, "quantity": -2}],
        "lines[0].quantity: must be an integer >= 1 (got -2)",
    ),
    (
        Topic.PURCHASES,
        [_LINE, _LINE, {**_LINE, "quantity": 0}],
        "lines[2].quantity: must be an integer >= 1 (got 0)",
    ),
    (
        Topic.PURCHASES,
        [{**_LINE, "quantity": 1.5}],
        "lines[0].quantity: must be an integer >= 1 (got 1.5)",
    ),
    (
        Topic.PURCHASES,
        [{**_LINE, "quantity": "2"}],
        'lines[0].quantity: must be an integer >= 1 (got "2")',
    ),
    (
        Topic.PURCHASES,
        [{**_LINE, "quantity": True}],
        "lines[0].quantity: must be an integer >= 1 (got true)",
    ),
    (
        Topic.PURCHASES,
        [{**_LINE, "quantity": 2**63}],
        f"lines[0].quantity: must be an integer >= 1 (got {2**63})",
    ),
    (
        Topic.PURCHASES,
        [{k: v for k, v in _LINE.items() if k != "quantity"}],
        "lines[0].quantity: is required",
    ),
    (
        Topic.PURCHASES,
        [_LINE, {k: v for k, v in _LINE.items() if k != "sku"}],
        "lines[1].sku: is required",
    ),
    (Topic.PURCHASES, [{**_LINE, "sku": ""}], f'lines[0].sku: {_ITEM_CODE} (got "")'),
    (Topic.PURCHASES, [{**_LINE, "sku": 42}], f"lines[0].sku: {_ITEM_CODE} (got 42)"),
    (
        Topic.PURCHASES,
        [{**_LINE, "sku": "S" * 65}],
        f'lines[0].sku: {_ITEM_CODE} (got "{"S" * 56}...)',
    ),
    (Topic.PURCHASES, [{**_LINE, "category": ""}], f'lines[0].category: {_ITEM_CODE} (got "")'),
    (
        Topic.PURCHASES,
        [{**_LINE, "category": "c" * 65}],
        f'lines[0].category: {_ITEM_CODE} (got "{"c" * 56}...)',
    ),
    (
        Topic.PURCHASES,
        [{**_LINE, "amount_cents": "150"}],
        'lines[0].amount_cents: must be an integer >= 0 (got "150")',
    ),
    (
        Topic.PURCHASES,
        [{**_LINE, "amount_cents": 1.5}],
        "lines[0].amount_cents: must be an integer >= 0 (got 1.5)",
    ),
    (
        Topic.PURCHASES,
        [{**_LINE, "amount_cents": 150.0}],
        "lines[0].amount_cents: must be an integer >= 0 (got 150.0)",
    ),
    (
        Topic.PURCHASES,
        [{**_LINE, "amount_cents": -1}],
        "lines[0].amount_cents: must be an integer >= 0 (got -1)",
    ),
    (
        Topic.PURCHASES,
        [{**_LINE, "amount_cents": None}],
        "lines[0].amount_cents: must be an integer >= 0 (got null)",
    ),
    (
        Topic.PURCHASES,
        [{k: v for k, v in _LINE.items() if k != "amount_cents"}],
        "lines[0].amount_cents: is required",
    ),
    (
        Topic.PURCHASES,
        ["CROISSANT"],
        f'lines[0]: must be an object {_PURCHASE_LINE} (got "CROISSANT")',
    ),
    (
        Topic.PURCHASES,
        _LINE,
        f"lines: must be an array of {_PURCHASE_LINE} objects (got {json.dumps(_LINE)})",
    ),
    (
        Topic.PURCHASES,
        "CROISSANT",
        f'lines: must be an array of {_PURCHASE_LINE} objects (got "CROISSANT")',
    ),
    (Topic.PURCHASES, [{**_LINE, "amount_cents": 1251}], _SUM_OVER.replace("1300", "1251")),
    (
        Topic.RETURNS,
        [{"sku": "CROISSANT", "quantity": 0}],
        "lines[0].quantity: must be an integer >= 1 (got 0)",
    ),
    (
        Topic.RETURNS,
        [{"sku": "CROISSANT", "quantity": -1}],
        "lines[0].quantity: must be an integer >= 1 (got -1)",
    ),
    (
        Topic.RETURNS,
        [{"sku": "CROISSANT", "quantity": "1"}],
        'lines[0].quantity: must be an integer >= 1 (got "1")',
    ),
    (Topic.RETURNS, [{"sku": "CROISSANT"}], "lines[0].quantity: is required"),
    (Topic.RETURNS, [{"quantity": 1}], "lines[0].sku: is required"),
    (Topic.RETURNS, [{"sku": "", "quantity": 1}], f'lines[0].sku: {_ITEM_CODE} (got "")'),
    (Topic.RETURNS, [2], "lines[0]: must be an object {sku, quantity} (got 2)"),
    (Topic.RETURNS, 2, "lines: must be an array of {sku, quantity} objects (got 2)"),
]


@pytest.mark.parametrize(
    ("topic", "lines", "error"),
    REFUSED,
    ids=[f"{t.name.lower()}-{e.partition(':')[0]}-{i}" for i, (t, _, e) in enumerate(REFUSED)],
)
def test_a_bad_line_is_refused_with_its_path_and_rule(topic: Topic, lines: Any, error: str) -> None:
    message = with_lines(lines) if topic is Topic.PURCHASES else return_with_lines(lines)

    result = parse_input(topic, encoded(message))

    assert isinstance(result, ParseError)
    assert result.message == error
    assert result.fields == (error.partition(":")[0],)


def test_every_bad_line_is_reported_at_once() -> None:
    lines = [{**_LINE, "quantity": 0}, _LINE, {**_LINE, "sku": "", "amount_cents": -1}]

    result = parse_input(Topic.PURCHASES, encoded(with_lines(lines)))

    assert isinstance(result, ParseError)
    assert result.fields == ("lines[0].quantity", "lines[2].sku", "lines[2].amount_cents")


# --- any valid basket parses and becomes the command's lines ---------------------------------

_MAX_LINES = 8
# One more line than a list holds still adds up to a valid amount_cents.
_MAX_LINE_CENTS = INT64_MAX // (_MAX_LINES + 1)
item_codes = st.text(min_size=1, max_size=64)
purchase_lines = st.lists(
    st.fixed_dictionaries(
        {
            "sku": item_codes,
            "quantity": st.integers(1, INT64_MAX),
            "amount_cents": st.integers(0, _MAX_LINE_CENTS),
        },
        optional={"category": item_codes},
    ),
    max_size=_MAX_LINES,
)


@given(purchase_lines, st.data())
def test_any_valid_basket_parses_and_becomes_the_commands_lines(
    lines: list[dict[str, Any]], data: st.DataObject
) -> None:
    total = sum(line["amount_cents"] for line in lines)
    amount = data.draw(st.integers(total, INT64_MAX), label="amount_cents")

    message = parse_input(Topic.PURCHASES, encoded(with_lines(lines, amount_cents=amount)))

    assert isinstance(message, PurchaseCompleted), message
    command = to_command(message)
    assert isinstance(command, Purchase)
    assert command.lines == tuple(
        Line(line["sku"], line["quantity"], line["amount_cents"], line.get("category"))
        for line in lines
    )


@given(purchase_lines, st.integers(1, _MAX_LINE_CENTS))
def test_any_basket_over_its_amount_is_blamed_on_lines(
    lines: list[dict[str, Any]], last: int
) -> None:
    lines = [*lines, {**_LINE, "amount_cents": last}]
    total = sum(line["amount_cents"] for line in lines)

    result = parse_input(Topic.PURCHASES, encoded(with_lines(lines, amount_cents=total - 1)))

    assert isinstance(result, ParseError)
    assert result.fields == ("lines",)
    assert result.message == (
        f"lines: the lines' amount_cents add up to {total},"
        f" over the purchase's amount_cents {total - 1}"
    )
