"""From input messages to commands: every field reaches the engine, line items included."""

from __future__ import annotations

from typing import Any

import pytest

from core.commands import CardRef, Command, Line, Purchase, Return, ReturnedLine
from core.enums import CardRefKind
from streams.commands import to_command
from streams.parsing import ParseError, parse_input
from streams.topics import Topic
from tests.unit.streams import samples
from tests.unit.streams.samples import SAMPLES, encoded


def command_of(topic: Topic, message: dict[str, Any]) -> Command:
    parsed = parse_input(topic, encoded(message))
    assert not isinstance(parsed, ParseError), parsed
    return to_command(parsed)


@pytest.mark.parametrize("topic", list(SAMPLES))
def test_every_sample_becomes_a_command_of_its_event(topic: Topic) -> None:
    command = command_of(topic, SAMPLES[topic]())

    assert str(command.event_id) == SAMPLES[topic]()["event_id"]


def test_a_purchase_becomes_a_purchase_with_every_field() -> None:
    message = parse_input(Topic.PURCHASES, encoded(samples.purchase()))
    assert not isinstance(message, ParseError)

    command = to_command(message)

    assert command == Purchase(
        event_id=message.event_id,
        occurred_at=message.occurred_at,
        store_code="LUX-01",
        order_reference="POS-000123",
        amount_cents=1250,
        currency="EUR",
        card=CardRef(CardRefKind.CARD_NUMBER, "AB12-CD34-EF56"),
        stamps=2,
        staff_ref="anna",
        lines=(),
    )


def test_a_purchases_lines_become_the_commands_in_order() -> None:
    command = command_of(Topic.PURCHASES, samples.purchase_with_lines())

    assert isinstance(command, Purchase)
    assert command.lines == (
        Line("CROISSANT", 3, 450, "pastry"),
        Line("GIFT-CARD-5", 1, 500, "gift_card"),
        Line("BAG", 1, 0, None),
    )


@pytest.mark.parametrize("lines", [[], None, "absent"])
def test_no_lines_empty_or_null_is_the_same_command(lines: list[Any] | str | None) -> None:
    purchase = samples.purchase()
    refund = samples.purchase_return()
    if lines != "absent":
        purchase["lines"] = refund["lines"] = lines

    assert command_of(Topic.PURCHASES, purchase) == command_of(Topic.PURCHASES, samples.purchase())
    returned = command_of(Topic.RETURNS, refund)
    assert isinstance(returned, Return)
    assert returned.lines == ()


def test_a_returns_lines_become_the_commands_and_survive_a_hold() -> None:
    command = command_of(Topic.RETURNS, samples.return_with_lines())

    assert isinstance(command, Return)
    assert command.lines == (ReturnedLine("CROISSANT", 2),)
    assert command.card == CardRef(CardRefKind.QR_CODE, "qr-7f3a9c")
    # A held return is kept as its payload and rebuilt from it when its purchase arrives.
    assert command.as_payload() == samples.return_with_lines()
    assert Return.from_payload(command.as_payload()) == command


def test_a_return_without_lines_is_held_as_in_v1() -> None:
    command = command_of(Topic.RETURNS, samples.purchase_return())

    assert isinstance(command, Return)
    assert command.as_payload() == samples.purchase_return()
    assert Return.from_payload(command.as_payload()) == command
