"""Input messages: what the contract accepts, and how each kind of bad input is refused.

Long (about 500 lines): one case per field and kind of bad input, as the contract lists them.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from streams.messages import (
    CardRef,
    CardRefKind,
    EnrollmentChannel,
    EnrollmentRequested,
    ExpiryRunRequested,
    Locale,
    PointsReward,
    PurchaseChannel,
    PurchaseCompleted,
    PurchaseReturned,
    RewardKind,
    RewardRedeemRequested,
    StampsReward,
)
from streams.parsing import ParseError, parse_input
from streams.topics import TYPE_OF_TOPIC, Topic
from tests.unit.streams import samples
from tests.unit.streams.samples import SAMPLES, encoded

DELETE = object()


def changed(message: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``message`` with the field at dotted ``path`` set to ``value`` (or deleted)."""
    result = copy.deepcopy(message)
    *parents, leaf = path.split(".")
    target = result
    for name in parents:
        target = target[name]
    if value is DELETE:
        del target[leaf]
    else:
        target[leaf] = value
    return result


def error_of(topic: Topic, message: dict[str, Any]) -> str:
    result = parse_input(topic, encoded(message))
    assert isinstance(result, ParseError), f"accepted: {result!r}"
    return result.message


# --- what the contract accepts ---------------------------------------------------------------


@pytest.mark.parametrize("topic", list(SAMPLES))
def test_every_input_topic_accepts_its_sample_and_round_trips(topic: Topic) -> None:
    message = parse_input(topic, encoded(SAMPLES[topic]()))

    assert not isinstance(message, ParseError), message
    assert message.type == TYPE_OF_TOPIC[topic]
    assert parse_input(topic, message.to_json()) == message


def test_a_full_purchase_reads_as_sent() -> None:
    message = parse_input(Topic.PURCHASES, encoded(samples.purchase()))

    assert message == PurchaseCompleted.model_validate(samples.purchase())
    assert isinstance(message, PurchaseCompleted)
    assert message.occurred_at == datetime(2025, 3, 1, 9, 15, tzinfo=UTC)
    assert message.occurred_at.utcoffset() == timedelta(hours=1)  # the offset is kept
    assert message.amount_cents == 1250
    assert message.channel is PurchaseChannel.IN_STORE
    assert message.stamps == 2
    assert message.staff_ref == "anna"


def test_a_purchase_gets_the_contract_defaults() -> None:
    message = parse_input(Topic.PURCHASES, encoded(samples.minimal_purchase()))

    assert isinstance(message, PurchaseCompleted)
    assert message.currency == "EUR"
    assert message.channel is PurchaseChannel.ONLINE
    assert message.stamps == 1
    assert message.staff_ref is None


@pytest.mark.parametrize("stamps", [0, 100])
def test_stamps_bounds_are_inclusive(stamps: int) -> None:
    message = parse_input(Topic.PURCHASES, encoded(changed(samples.purchase(), "stamps", stamps)))

    assert isinstance(message, PurchaseCompleted)
    assert message.stamps == stamps


def test_a_return_needs_no_card() -> None:
    message = parse_input(
        Topic.RETURNS, encoded(changed(samples.purchase_return(), "card", DELETE))
    )

    assert isinstance(message, PurchaseReturned)
    assert message.card is None
    assert message.refund_amount_cents == 500


def test_an_enrollment_reads_its_customer() -> None:
    message = parse_input(Topic.ENROLLMENTS, encoded(samples.enrollment()))

    assert isinstance(message, EnrollmentRequested)
    assert message.channel is EnrollmentChannel.ONLINE
    assert message.customer.email == "marie.muller@example.lu"
    assert message.customer.locale is Locale.LB
    assert message.customer.last_name == "Müller"


@pytest.mark.parametrize(
    "customer",
    [{"email": "a@b.lu"}, {"customer_ref": "C-1"}, {"email": "a@b.lu", "customer_ref": "C-1"}],
)
def test_a_customer_needs_email_or_customer_ref_or_both(customer: dict[str, str]) -> None:
    message = parse_input(
        Topic.ENROLLMENTS, encoded(changed(samples.enrollment(), "customer", customer))
    )

    assert isinstance(message, EnrollmentRequested)


@pytest.mark.parametrize(
    ("reward", "expected"),
    [
        ({"kind": "stamps"}, StampsReward(kind=RewardKind.STAMPS)),
        (
            {"kind": "points", "reward_id": "coffee"},
            PointsReward(kind=RewardKind.POINTS, reward_id="coffee"),
        ),
    ],
)
def test_a_redemption_names_a_stamps_or_a_points_reward(
    reward: dict[str, str], expected: StampsReward | PointsReward
) -> None:
    message = parse_input(
        Topic.REDEMPTIONS, encoded(changed(samples.redemption(), "reward", reward))
    )

    assert isinstance(message, RewardRedeemRequested)
    assert message.reward == expected


def test_an_expiry_run_has_no_store_and_may_name_no_merchant() -> None:
    message = parse_input(Topic.EXPIRY, encoded(changed(samples.expiry(), "merchant_code", DELETE)))

    assert isinstance(message, ExpiryRunRequested)
    assert message.merchant_code is None
    assert not hasattr(message, "store_code")


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    message = samples.purchase()
    message["loyalty_tier"] = "gold"
    message["card"]["issuer"] = "v2"

    parsed = parse_input(Topic.PURCHASES, encoded(message))

    assert parsed == parse_input(Topic.PURCHASES, encoded(samples.purchase()))


@pytest.mark.parametrize(
    ("sent", "normalised"),
    [
        ("AB12-CD34-EF56", "AB12-CD34-EF56"),
        ("ab12cd34ef56", "AB12-CD34-EF56"),
        ("AB12 CD34 EF56", "AB12-CD34-EF56"),
        (" ab12-cd34 ef56 ", "AB12-CD34-EF56"),
        ("A-B-1-2-C-D-3-4-E-F-5-6", "AB12-CD34-EF56"),
        ("123412341234", "1234-1234-1234"),
    ],
)
def test_a_card_number_ignores_dashes_and_spaces_and_case(sent: str, normalised: str) -> None:
    card = CardRef.model_validate({"card_number": sent})

    assert card.card_number == normalised
    assert card.kind is CardRefKind.CARD_NUMBER
    assert card.value == normalised


@pytest.mark.parametrize(
    "sent",
    ["AB12-CD34-EF5", "AB12-CD34-EF567", "AB12_CD34_EF56", "ÄB12-CD34-EF56", "AB12\tCD34EF56", ""],
)
def test_a_card_number_must_be_12_letters_or_digits(sent: str) -> None:
    message = changed(samples.purchase(), "card", {"card_number": sent})

    assert error_of(Topic.PURCHASES, message).startswith("card.card_number: must be 12 letters")


@pytest.mark.parametrize(
    ("card", "kind", "value"),
    [
        ({"email": " Jo@Example.COM "}, CardRefKind.EMAIL, "jo@example.com"),
        ({"qr_code": "qr-7f3a9c"}, CardRefKind.QR_CODE, "qr-7f3a9c"),
        ({"customer_ref": "C-42"}, CardRefKind.CUSTOMER_REF, "C-42"),
        # An explicit null is the same as an absent reference.
        ({"customer_ref": "C-42", "email": None}, CardRefKind.CUSTOMER_REF, "C-42"),
    ],
)
def test_each_kind_of_card_reference(card: dict[str, Any], kind: CardRefKind, value: str) -> None:
    parsed = CardRef.model_validate(card)

    assert parsed.kind is kind
    assert parsed.value == value


def test_a_card_reference_is_written_with_its_one_field() -> None:
    assert CardRef(card_number="ab12cd34ef56").to_json() == b'{"card_number":"AB12-CD34-EF56"}'


@pytest.mark.parametrize(
    "occurred_at",
    [
        "2025-03-01T10:15:00Z",
        "2025-03-01t10:15:00z",
        "2025-03-01T10:15:00.123456+05:30",
        "2025-03-01T10:15:00-03:00",
        "2025-03-01 10:15:00+01:00",
    ],
)
def test_rfc3339_timestamps_with_an_offset_are_accepted(occurred_at: str) -> None:
    message = parse_input(
        Topic.PURCHASES, encoded(changed(samples.purchase(), "occurred_at", occurred_at))
    )

    assert isinstance(message, PurchaseCompleted)
    assert message.occurred_at.tzinfo is not None


# --- what the contract refuses, and how the dead letter says it ------------------------------

_TIME = "occurred_at: must be an RFC 3339 timestamp with an offset, like 2025-03-01T10:15:00+01:00"
_CARD = "card: must be an object with exactly one of card_number, qr_code, email, customer_ref"
_CODE = "must be a string of 1 to 255 characters"

REFUSED: list[tuple[Topic, str, Any, str]] = [
    # topic, field path, value sent (DELETE: left out), the error in full
    (Topic.PURCHASES, "amount_cents", "12", 'amount_cents: must be an integer >= 0 (got "12")'),
    (Topic.PURCHASES, "amount_cents", 1.5, "amount_cents: must be an integer >= 0 (got 1.5)"),
    (Topic.PURCHASES, "amount_cents", 12.0, "amount_cents: must be an integer >= 0 (got 12.0)"),
    (Topic.PURCHASES, "amount_cents", True, "amount_cents: must be an integer >= 0 (got true)"),
    (Topic.PURCHASES, "amount_cents", -1, "amount_cents: must be an integer >= 0 (got -1)"),
    (Topic.PURCHASES, "amount_cents", None, "amount_cents: must be an integer >= 0 (got null)"),
    (
        Topic.PURCHASES,
        "amount_cents",
        2**63,
        f"amount_cents: must be an integer >= 0 (got {2**63})",
    ),
    (Topic.PURCHASES, "amount_cents", DELETE, "amount_cents: is required"),
    (
        Topic.PURCHASES,
        "currency",
        "eur",
        'currency: must be an ISO 4217 code of 3 upper-case letters, like EUR (got "eur")',
    ),
    (
        Topic.PURCHASES,
        "currency",
        "EURO",
        'currency: must be an ISO 4217 code of 3 upper-case letters, like EUR (got "EURO")',
    ),
    (
        Topic.PURCHASES,
        "currency",
        978,
        "currency: must be an ISO 4217 code of 3 upper-case letters, like EUR (got 978)",
    ),
    (Topic.PURCHASES, "channel", "web", 'channel: must be "online" or "in_store" (got "web")'),
    (Topic.PURCHASES, "channel", "self", 'channel: must be "online" or "in_store" (got "self")'),
    (Topic.PURCHASES, "stamps", 101, "stamps: must be an integer from 0 to 100 (got 101)"),
    (Topic.PURCHASES, "stamps", -1, "stamps: must be an integer from 0 to 100 (got -1)"),
    (Topic.PURCHASES, "stamps", "1", 'stamps: must be an integer from 0 to 100 (got "1")'),
    (Topic.PURCHASES, "stamps", False, "stamps: must be an integer from 0 to 100 (got false)"),
    (
        Topic.PURCHASES,
        "order_reference",
        "",
        'order_reference: must be a string of 1 to 100 characters (got "")',
    ),
    (
        Topic.PURCHASES,
        "order_reference",
        123,
        "order_reference: must be a string of 1 to 100 characters (got 123)",
    ),
    (Topic.PURCHASES, "order_reference", DELETE, "order_reference: is required"),
    (Topic.PURCHASES, "store_code", "", f'store_code: {_CODE} (got "")'),
    (Topic.PURCHASES, "store_code", 12, f"store_code: {_CODE} (got 12)"),
    (Topic.PURCHASES, "store_code", DELETE, "store_code: is required"),
    (
        Topic.PURCHASES,
        "staff_ref",
        7,
        "staff_ref: must be a string of at most 1000 characters (got 7)",
    ),
    (Topic.PURCHASES, "event_id", "order-1", 'event_id: must be a UUID string (got "order-1")'),
    (Topic.PURCHASES, "event_id", 12, "event_id: must be a UUID string (got 12)"),
    (Topic.PURCHASES, "event_id", DELETE, "event_id: is required"),
    (Topic.PURCHASES, "occurred_at", "2025-03-01T10:15:00", f'{_TIME} (got "2025-03-01T10:15:00")'),
    (Topic.PURCHASES, "occurred_at", "2025-03-01", f'{_TIME} (got "2025-03-01")'),
    (Topic.PURCHASES, "occurred_at", 1740820500, f"{_TIME} (got 1740820500)"),
    (Topic.PURCHASES, "occurred_at", "1740820500", f'{_TIME} (got "1740820500")'),
    (Topic.PURCHASES, "occurred_at", "yesterday", f'{_TIME} (got "yesterday")'),
    (
        Topic.PURCHASES,
        "occurred_at",
        "2025-13-01T10:15:00Z",
        f'{_TIME} (got "2025-13-01T10:15:00Z")',
    ),
    (Topic.PURCHASES, "occurred_at", DELETE, "occurred_at: is required"),
    (
        Topic.PURCHASES,
        "type",
        "purchase.returned",
        'type: must be "purchase.completed" on loyalty.purchases.v1 (got "purchase.returned")',
    ),
    (
        Topic.PURCHASES,
        "type",
        None,
        'type: must be "purchase.completed" on loyalty.purchases.v1 (got null)',
    ),
    (Topic.PURCHASES, "type", DELETE, "type: is required"),
    (Topic.PURCHASES, "card", DELETE, "card: is required"),
    (Topic.PURCHASES, "card", "AB12-CD34-EF56", f'{_CARD} (got "AB12-CD34-EF56")'),
    (
        Topic.PURCHASES,
        "card",
        {},
        "card: must hold exactly one of card_number, qr_code, email, customer_ref (got none)",
    ),
    (
        Topic.PURCHASES,
        "card",
        {"card_number": "AB12-CD34-EF56", "email": "a@b.lu"},
        "card: must hold exactly one of card_number, qr_code, email, customer_ref"
        " (got card_number and email)",
    ),
    (
        Topic.PURCHASES,
        "card.card_number",
        123412341234,
        "card.card_number: must be 12 letters or digits as XXXX-XXXX-XXXX"
        " (dashes, spaces ignored) (got 123412341234)",
    ),
    (
        Topic.PURCHASES,
        "card",
        {"email": "not-an-email"},
        'card.email: must be an email address (got "not-an-email")',
    ),
    (Topic.PURCHASES, "card", {"qr_code": ""}, f'card.qr_code: {_CODE} (got "")'),
    (Topic.PURCHASES, "card", {"customer_ref": 42}, f"card.customer_ref: {_CODE} (got 42)"),
    (
        Topic.RETURNS,
        "refund_amount_cents",
        0,
        "refund_amount_cents: must be an integer > 0 (got 0)",
    ),
    (
        Topic.RETURNS,
        "refund_amount_cents",
        "5",
        'refund_amount_cents: must be an integer > 0 (got "5")',
    ),
    (Topic.RETURNS, "order_reference", DELETE, "order_reference: is required"),
    (
        Topic.RETURNS,
        "card",
        {},
        "card: must hold exactly one of card_number, qr_code, email, customer_ref (got none)",
    ),
    (
        Topic.RETURNS,
        "type",
        "purchase.completed",
        'type: must be "purchase.returned" on loyalty.returns.v1 (got "purchase.completed")',
    ),
    (
        Topic.ENROLLMENTS,
        "customer",
        {},
        "customer: must hold email or customer_ref, or both (got neither)",
    ),
    (
        Topic.ENROLLMENTS,
        "customer",
        {"phone": "+352 1"},
        "customer: must hold email or customer_ref, or both (got neither)",
    ),
    (
        Topic.ENROLLMENTS,
        "customer",
        "marie@example.lu",
        'customer: must be an object with email and/or customer_ref (got "marie@example.lu")',
    ),
    (
        Topic.ENROLLMENTS,
        "customer.locale",
        "es",
        'customer.locale: must be one of "en", "fr", "de", "lb" (got "es")',
    ),
    (
        Topic.ENROLLMENTS,
        "customer.email",
        "marie",
        'customer.email: must be an email address (got "marie")',
    ),
    (
        Topic.ENROLLMENTS,
        "channel",
        "kiosk",
        'channel: must be one of "self", "staff", "online" (got "kiosk")',
    ),
    (
        Topic.ENROLLMENTS,
        "channel",
        "in_store",
        'channel: must be one of "self", "staff", "online" (got "in_store")',
    ),
    (Topic.ENROLLMENTS, "channel", DELETE, "channel: is required"),
    (Topic.REDEMPTIONS, "reward", {"kind": "points"}, "reward.reward_id: is required"),
    (Topic.REDEMPTIONS, "reward.reward_id", "", f'reward.reward_id: {_CODE} (got "")'),
    (
        Topic.REDEMPTIONS,
        "reward",
        {"kind": "gift"},
        'reward.kind: must be "stamps" or "points" (got "gift")',
    ),
    (Topic.REDEMPTIONS, "reward", {}, "reward.kind: is required"),
    (
        Topic.REDEMPTIONS,
        "reward",
        "coffee",
        'reward: must be {"kind": "stamps"} or {"kind": "points", "reward_id": "..."}'
        ' (got "coffee")',
    ),
    (Topic.REDEMPTIONS, "card", DELETE, "card: is required"),
    (Topic.EXPIRY, "merchant_code", "", f'merchant_code: {_CODE} (got "")'),
    (Topic.EXPIRY, "occurred_at", "2025-03-04T03:00:00", f'{_TIME} (got "2025-03-04T03:00:00")'),
]


@pytest.mark.parametrize(
    ("topic", "path", "value", "error"),
    REFUSED,
    ids=[
        f"{t.name.lower()}-{p}={'missing' if v is DELETE else repr(v)[:20]}"
        for t, p, v, _ in REFUSED
    ],
)
def test_a_bad_field_is_refused_with_its_path_and_rule(
    topic: Topic, path: str, value: Any, error: str
) -> None:
    result = parse_input(topic, encoded(changed(SAMPLES[topic](), path, value)))

    assert isinstance(result, ParseError)
    assert result.message == error
    assert result.fields == (error.partition(":")[0],)


def test_every_bad_field_is_reported_at_once() -> None:
    message = samples.purchase()
    message.update(amount_cents="12", currency="eur")
    del message["store_code"]

    result = parse_input(Topic.PURCHASES, encoded(message))

    assert isinstance(result, ParseError)
    assert result.fields == ("store_code", "amount_cents", "currency")
    assert result.message == (
        "store_code: is required; "
        'amount_cents: must be an integer >= 0 (got "12"); '
        'currency: must be an ISO 4217 code of 3 upper-case letters, like EUR (got "eur")'
    )


def test_a_long_bad_value_is_shown_cut_short() -> None:
    result = parse_input(
        Topic.PURCHASES, encoded(changed(samples.purchase(), "order_reference", "x" * 5000))
    )

    assert isinstance(result, ParseError)
    assert len(result.message) < 150
    assert result.message.startswith("order_reference: must be a string of 1 to 100 characters")
    assert result.message.endswith("...)")


def test_a_message_with_many_bad_fields_lists_ten_and_counts_the_rest() -> None:
    bad = {
        **samples.purchase(),
        "event_id": [],
        "occurred_at": [],
        "store_code": [],
        "order_reference": [],
        "amount_cents": [],
        "currency": [],
        "card": {"card_number": [], "qr_code": []},
        "channel": [],
        "stamps": [],
        "staff_ref": [],
    }

    result = parse_input(Topic.PURCHASES, encoded(bad))

    assert isinstance(result, ParseError)
    assert len(result.fields) == 10
    assert result.message.endswith("; and 1 more")
