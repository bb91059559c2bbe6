"""From Kafka bytes to messages and back: parsing, dead letters and keys.

``parse_input`` sits on the workers' hot path. A valid message costs one
``model_validate_json`` over the raw bytes (pydantic's Rust JSON parser, no ``json.loads``);
only an invalid one pays for the slower second look that writes the error in words.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, NamedTuple, TypeVar, overload
from uuid import UUID, uuid4

import msgspec
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from streams.base import ContractModel
from streams.inputs import (
    EnrollmentRequested,
    ExpiryRunRequested,
    InputMessage,
    PurchaseCompleted,
    PurchaseReturned,
    RewardRedeemRequested,
)
from streams.messages import INPUT_MODELS, OUTPUT_MODELS, TOPIC_OF_MODEL
from streams.outputs import (
    CardBalanceChanged,
    DeadLetter,
    EventProcessed,
    Notification,
    OutputMessage,
)
from streams.topics import TYPE_OF_TOPIC

_CARD = "must be an object with exactly one of card_number, qr_code, email, customer_ref"
_CODE = "must be a string of 1 to 255 characters"
_TEXT = "must be a string of at most 1000 characters"
_ITEM_CODE = "must be a string of 1 to 64 characters"

RULES: Final[dict[str, str]] = {
    "event_id": "must be a UUID string",
    "occurred_at": "must be an RFC 3339 timestamp with an offset, like 2025-03-01T10:15:00+01:00",
    "store_code": _CODE,
    "order_reference": "must be a string of 1 to 100 characters",
    "amount_cents": "must be an integer >= 0",
    "refund_amount_cents": "must be an integer > 0",
    "currency": "must be an ISO 4217 code of 3 upper-case letters, like EUR",
    "stamps": "must be an integer from 0 to 100",
    "staff_ref": _TEXT,
    "card": _CARD,
    "card.card_number": "must be 12 letters or digits as XXXX-XXXX-XXXX (dashes, spaces ignored)",
    "card.qr_code": _CODE,
    "card.email": "must be an email address",
    "card.customer_ref": _CODE,
    "customer": "must be an object with email and/or customer_ref",
    "customer.email": "must be an email address",
    "customer.customer_ref": _CODE,
    "customer.phone": "must be a string of 1 to 50 characters",
    "customer.first_name": _TEXT,
    "customer.last_name": _TEXT,
    "customer.locale": 'must be one of "en", "fr", "de", "lb"',
    "reward": 'must be {"kind": "stamps"} or {"kind": "points", "reward_id": "..."}',
    "reward.kind": 'must be "stamps" or "points"',
    "reward.reward_id": _CODE,
    "merchant_code": _CODE,
    "lines": "must be an array of line objects",
    "lines.sku": _ITEM_CODE,
    "lines.category": _ITEM_CODE,
    "lines.quantity": "must be an integer >= 1",
    "lines.amount_cents": "must be an integer >= 0",
}
"""What each input field must be, by path, as a dead letter's ``error`` words it.

An item of a list is worded without its index: ``lines[2].quantity`` by ``lines.quantity``.
``channel``, ``type``, ``lines`` and an item of ``lines`` that is not an object (``lines[]``)
depend on the message and are worded per topic.
"""

_INPUT_MODELS: Final[dict[str, type[InputMessage]]] = {t.value: m for t, m in INPUT_MODELS.items()}
_OUTPUT_MODELS: Final[dict[str, type[OutputMessage]]] = {
    t.value: m for t, m in OUTPUT_MODELS.items()
}
_M = TypeVar("_M", bound=ContractModel)

_PURCHASE_LINE = "{sku, category?, quantity, amount_cents}"
_RETURNED_LINE = "{sku, quantity}"
_RULES_OF_TYPE: Final[dict[str, dict[str, str]]] = {
    "purchase.completed": {
        "channel": 'must be "online" or "in_store"',
        "lines": f"must be an array of {_PURCHASE_LINE} objects",
        "lines[]": f"must be an object {_PURCHASE_LINE}",
    },
    "purchase.returned": {
        "lines": f"must be an array of {_RETURNED_LINE} objects",
        "lines[]": f"must be an object {_RETURNED_LINE}",
    },
    "enrollment.requested": {"channel": 'must be one of "self", "staff", "online"'},
}
_INDEX = re.compile(r"\[\d+\]")
# pydantic puts the tag of a discriminated union in the error path (reward.points.reward_id);
# people know the field as reward.reward_id.
_TAGGED_FIELDS: Final = frozenset({"reward"})
_MAX_ERRORS: Final = 10
_MAX_SHOWN_INPUT: Final = 60
# A dead letter must fit the producer's 5 MiB request; JSON escaping can grow text sixfold
# (control characters become \u00XX), base64 only by a third.
_TEXT_PAYLOAD_BUDGET: Final = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ParseError:
    """Why a Kafka value is not a message of its topic, in words fit for a dead letter."""

    message: str
    """One or more ``path: why (got ...)`` sentences, joined by ``; ``."""
    fields: tuple[str, ...] = field(default=())
    """The offending field paths (``amount_cents``, ``card.card_number``); empty when the value
    as a whole is unreadable (not UTF-8, not JSON, not an object)."""

    def __str__(self) -> str:
        return self.message


def parse_input(topic: str, raw: bytes | None) -> InputMessage | ParseError:
    """The input message in ``raw``, read as the model of ``topic``, or why it is not one.

    Never raises: whatever the bytes, the caller gets a message or a ``ParseError``.
    """
    model = _INPUT_MODELS.get(topic)
    if model is None:
        return ParseError(f"topic {topic} carries no input message of contract v1")
    return _parse(model, topic, raw)


def parse_output(topic: str, raw: bytes | None) -> OutputMessage | ParseError:
    """The output message in ``raw`` (for consumers of the engine's own topics); never raises."""
    model = _OUTPUT_MODELS.get(topic)
    if model is None:
        return ParseError(f"topic {topic} carries no output message of contract v1")
    return _parse(model, topic, raw)


class _EventId(msgspec.Struct):
    event_id: UUID


_EVENT_ID: Final = msgspec.json.Decoder(_EventId)


def peek_event_id(raw: bytes | None) -> UUID | None:
    """The ``event_id`` of a raw input message, read without parsing the rest (a twentieth of
    ``parse_input``'s cost); None when there is none to read. Says nothing of the rest's
    validity: only for skipping messages whose event is known to be applied already."""
    if raw is None:
        return None
    try:
        return _EVENT_ID.decode(raw).event_id
    except msgspec.DecodeError:  # its ValidationError too
        return None


def _parse(model: type[_M], topic: str, raw: bytes | None) -> _M | ParseError:
    if raw is None:
        return ParseError("value is null (a tombstone), not a message")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        first_look = exc
    except Exception as exc:  # a validator bug must not stop the partition
        return ParseError(f"value could not be read: {type(exc).__name__}")
    try:
        return _explain(topic, raw, first_look)
    except Exception as exc:  # RecursionError on absurd nesting, and anything unforeseen
        return ParseError(f"value could not be read: {type(exc).__name__}")


def _explain(topic: str, raw: bytes, exc: ValidationError) -> ParseError:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as bad:
        byte = raw[bad.start]
        return ParseError(
            f"value is not UTF-8 text ({bad.reason}: byte 0x{byte:02x} at {bad.start})"
        )
    if not text.strip():
        return ParseError("value is empty, not a JSON object")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as bad:
        return ParseError(
            f"value is not valid JSON ({bad.msg} at line {bad.lineno}, column {bad.colno})"
        )
    except RecursionError:
        return ParseError("value is not valid JSON (nested too deeply)")
    if not isinstance(data, dict):
        return ParseError(f"value must be a JSON object (got {_kind_of(data)})")
    expected = TYPE_OF_TOPIC.get(topic)
    got_type = data.get("type")
    if expected is not None and "type" in data and got_type != expected:
        # Another message type on this topic: its other fields are beside the point.
        return ParseError(
            f'type: must be "{expected}" on {topic} (got {_shown(got_type)})', ("type",)
        )
    errors = exc.errors(include_url=False)
    for error in errors:
        if error["type"] == "json_invalid":
            # pydantic's JSON is stricter than the json module (NaN, lone surrogates).
            return ParseError(f"value is not valid JSON ({error['msg']})")
    sentences: list[str] = []
    paths: list[str] = []
    for error in errors[:_MAX_ERRORS]:
        path, sentence = _sentence(error, expected)
        sentences.append(sentence)
        if path not in paths:
            paths.append(path)
    if len(errors) > _MAX_ERRORS:
        sentences.append(f"and {len(errors) - _MAX_ERRORS} more")
    return ParseError("; ".join(sentences), tuple(paths))


def _sentence(error: ErrorDetails, message_type: str | None) -> tuple[str, str]:
    parts: list[str] = []
    after_tagged = False
    for item in error["loc"]:
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1] if parts else ''}[{item}]"]
        elif not after_tagged:  # else it is the discriminator's tag, see _TAGGED_FIELDS
            parts.append(item)
        after_tagged = item in _TAGGED_FIELDS and not after_tagged
    path = ".".join(parts) or "value"
    kind = error["type"]
    if kind == "missing":
        return path, f"{path}: is required"
    if kind == "contract":  # our own model validators already speak the contract's words
        return path, f"{path}: {error['msg']}"
    if kind == "union_tag_not_found":
        return f"{path}.kind", f"{path}.kind: is required"
    if kind == "union_tag_invalid":
        path = f"{path}.kind"
        got: Any = (error.get("ctx") or {}).get("tag")
    else:
        got = error["input"]
    rule = _rule(path, message_type) or _lower_first(error["msg"])
    return path, f"{path}: {rule} (got {_shown(got)})"


def _rule(path: str, message_type: str | None) -> str | None:
    if path == "type" and message_type is not None:
        return f'must be "{message_type}"'
    if "[" in path:
        # Every item of a list obeys one rule, whatever its index.
        key = _INDEX.sub("", path)
        if path.endswith("]"):  # the item itself, e.g. a number where an object belongs
            key += "[]"
    else:
        key = path
    if message_type is not None:
        rule = _RULES_OF_TYPE.get(message_type, {}).get(key)
        if rule is not None:
            return rule
    return RULES.get(key)


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _kind_of(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


def _shown(value: Any) -> str:
    """A value as JSON, cut short: enough to recognise it, never a whole payload."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    if len(text) > _MAX_SHOWN_INPUT:
        text = text[: _MAX_SHOWN_INPUT - 3] + "..."
    return text


def dead_letter_for(
    topic: str,
    partition: int,
    offset: int,
    key: bytes | str | None,
    raw: bytes | None,
    error: ParseError | str,
) -> DeadLetter:
    """The ``dead_letter`` for a value that could not be parsed, ready for ``loyalty.dlq.v1``.

    ``payload`` is ``raw`` as text, or base64 when it is not UTF-8 (or when its JSON-escaped
    text would not fit a Kafka request); ``error`` then says so. ``occurred_at`` is now: a dead
    letter reports when the engine refused the value.
    """
    reason = str(error)
    payload, encoded = _payload(raw)
    if encoded:
        reason += "; payload is base64"
    return DeadLetter(
        event_id=uuid4(),
        occurred_at=datetime.now(UTC),
        source_topic=topic,
        partition=partition,
        offset=offset,
        key=key if key is None or isinstance(key, str) else key.decode("utf-8", "backslashreplace"),
        payload=payload,
        error=reason,
    )


def _payload(raw: bytes | None) -> tuple[str, bool]:
    if raw is None:
        return "", False
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), True
    # Only a large value can outgrow the budget, so small ones skip the escaping pass.
    if len(raw) * 6 > _TEXT_PAYLOAD_BUDGET and (
        len(json.dumps(text, ensure_ascii=False)) > _TEXT_PAYLOAD_BUDGET
    ):
        return base64.b64encode(raw).decode("ascii"), True
    return text, False


@overload
def key_for(message: DeadLetter) -> str | None: ...


@overload
def key_for(message: InputMessage | EventProcessed | CardBalanceChanged | Notification) -> str: ...


def key_for(message: InputMessage | OutputMessage) -> str | None:
    """The Kafka key of a message, by the rules of CONTRACT.md section 1.

    Card references are keyed by their normalised value, so one card's messages share a
    partition however the till spelled its number or email.
    """
    match message:
        case PurchaseCompleted() | RewardRedeemRequested():
            return message.card.value
        case PurchaseReturned():
            return message.card.value if message.card is not None else message.order_reference
        case EnrollmentRequested():
            customer = message.customer
            if customer.email is not None:
                return customer.email
            assert customer.customer_ref is not None  # the model requires one of the two
            return customer.customer_ref
        case ExpiryRunRequested():
            return message.merchant_code if message.merchant_code is not None else "all"
        case EventProcessed():
            return str(message.source_event_id)
        case CardBalanceChanged() | Notification():
            return message.card_number
        case DeadLetter():
            return message.key
    raise TypeError(f"not a message of the contract: {type(message).__name__}")


class Record(NamedTuple):
    """A message as Kafka carries it."""

    topic: str
    key: bytes | None
    value: bytes


def record_for(message: InputMessage | OutputMessage) -> Record:
    """The message's contract topic, its key (section 1, UTF-8) and its JSON value."""
    key = key_for(message)
    return Record(
        TOPIC_OF_MODEL[type(message)].value,
        key.encode("utf-8") if key is not None else None,
        message.to_json(),
    )
