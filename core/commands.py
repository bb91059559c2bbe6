"""What the engine is asked to do, as plain values: one command per input message type.

The wire format (``streams``) is translated into these at the edge (``streams.commands``), so
the engine and its rules never see a Kafka message or a pydantic model; the staff terminal and
the tests build them the same way. ``msgspec`` structs: immutable, and a tenth of a frozen
dataclass's cost to build (a batch makes thousands; ``gc=False``: they hold no cycles, so the
collector never scans them).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec

from core.enums import CardRefKind, EnrollmentChannel

__all__ = [
    "CardRef",
    "Command",
    "CustomerDetails",
    "Enrol",
    "ExpiryRun",
    "Line",
    "Purchase",
    "Redeem",
    "Return",
    "ReturnedLine",
]


class CardRef(msgspec.Struct, frozen=True, gc=False):
    """A card by one of its four references; ``value`` is already normalised."""

    kind: CardRefKind
    value: str


class Line(msgspec.Struct, frozen=True, gc=False):
    """A line of a basket: ``amount_cents`` is the line's total after discounts."""

    sku: str
    quantity: int
    amount_cents: int
    category: str | None = None


class ReturnedLine(msgspec.Struct, frozen=True, gc=False):
    """Units of a sku given back (``purchase.returned``'s ``lines``)."""

    sku: str
    quantity: int


class Purchase(msgspec.Struct, frozen=True, gc=False):
    """A purchase to earn on (``purchase.completed``); ``lines`` may be empty (v1)."""

    event_id: uuid.UUID
    occurred_at: datetime
    store_code: str
    order_reference: str
    amount_cents: int
    currency: str
    card: CardRef
    stamps: int = 1
    staff_ref: str | None = None
    lines: tuple[Line, ...] = ()


class Return(msgspec.Struct, frozen=True, gc=False):
    """A refund of (part of) a purchase (``purchase.returned``).

    ``payload`` is the message as received, kept with a held return so it can be applied
    when its purchase arrives (``Return.from_payload``).
    """

    event_id: uuid.UUID
    occurred_at: datetime
    store_code: str
    order_reference: str
    refund_amount_cents: int
    card: CardRef | None = None
    payload: dict[str, Any] | None = None
    lines: tuple[ReturnedLine, ...] = ()

    def as_payload(self) -> dict[str, Any]:
        """What a held return keeps: the message as received, or its fields in its shape."""
        if self.payload is not None:
            return self.payload
        payload: dict[str, Any] = {
            "event_id": str(self.event_id),
            "type": "purchase.returned",
            "occurred_at": self.occurred_at.isoformat(),
            "store_code": self.store_code,
            "order_reference": self.order_reference,
            "refund_amount_cents": self.refund_amount_cents,
        }
        if self.card is not None:
            payload["card"] = {self.card.kind.value: self.card.value}
        if self.lines:
            payload["lines"] = [{"sku": ln.sku, "quantity": ln.quantity} for ln in self.lines]
        return payload

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Return:
        """A held return, from the JSON it was stored as (the wire message's fields)."""
        card = payload.get("card")
        ref = None
        if isinstance(card, dict):
            kind, value = next((k, v) for k, v in card.items() if v is not None)
            ref = CardRef(CardRefKind(kind), str(value))
        return cls(
            event_id=uuid.UUID(str(payload["event_id"])),
            occurred_at=datetime.fromisoformat(str(payload["occurred_at"])),
            store_code=str(payload["store_code"]),
            order_reference=str(payload["order_reference"]),
            refund_amount_cents=int(payload["refund_amount_cents"]),
            card=ref,
            payload=payload,
            lines=tuple(
                ReturnedLine(str(ln["sku"]), int(ln["quantity"]))
                for ln in payload.get("lines") or ()
            ),
        )


class CustomerDetails(msgspec.Struct, frozen=True, gc=False):
    """Who enrols: ``email`` and/or ``customer_ref``, and what else they told."""

    email: str | None = None
    customer_ref: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    locale: str | None = None


class Enrol(msgspec.Struct, frozen=True, gc=False):
    """A request for a card (``enrollment.requested``)."""

    event_id: uuid.UUID
    occurred_at: datetime
    store_code: str
    customer: CustomerDetails
    channel: EnrollmentChannel


class Redeem(msgspec.Struct, frozen=True, gc=False):
    """A redemption (``reward.redeem_requested``): the stamp card when ``reward_id`` is None,
    else that reward of the points catalog."""

    event_id: uuid.UUID
    occurred_at: datetime
    store_code: str
    card: CardRef
    reward_id: str | None = None
    staff_ref: str | None = None


class ExpiryRun(msgspec.Struct, frozen=True, gc=False):
    """The daily run (``expiry.run_requested``): expire what is due as of ``occurred_at``."""

    event_id: uuid.UUID
    occurred_at: datetime
    merchant_code: str | None = None


Command = Purchase | Return | Enrol | Redeem | ExpiryRun
"""Any command the engine applies."""
