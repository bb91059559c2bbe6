"""The messages the engine consumes (CONTRACT.md sections 2 and 3)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

# The wire format speaks the shared vocabulary; re-exported as part of its schema.
from core.enums import CardRefKind as CardRefKind
from core.enums import EnrollmentChannel as EnrollmentChannel
from core.enums import Locale as Locale
from core.enums import PurchaseChannel as PurchaseChannel
from streams.base import ContractModel
from streams.fields import (
    CardNumber,
    Code,
    Count,
    Currency,
    Email,
    ItemCode,
    PositiveCount,
    Text,
    Timestamp,
)


class RewardKind(StrEnum):
    """The two kinds of reward a card can redeem."""

    STAMPS = "stamps"
    POINTS = "points"


def _is_none(value: object) -> bool:
    return value is None


_CARD_REF_FIELDS = ", ".join(kind.value for kind in CardRefKind)
# Field name -> kind, walked once per reference when it is validated (hot path: every event).
_KIND_OF_FIELD = {kind.value: kind for kind in CardRefKind}


class CardRef(ContractModel):
    """A card reference: exactly one of `card_number`, `qr_code`, `email`, `customer_ref`.

    `card_number` is normalised to `XXXX-XXXX-XXXX` in upper case and `email` to lower
    case, so a card is found (and keyed) the same whatever spelling the till used.
    """

    # Absent references are left out of the JSON: "exactly one of" reads better on the wire
    # than three nulls.
    card_number: CardNumber | None = Field(default=None, exclude_if=_is_none)
    qr_code: Code | None = Field(default=None, exclude_if=_is_none)
    email: Email | None = Field(default=None, exclude_if=_is_none)
    customer_ref: Code | None = Field(default=None, exclude_if=_is_none)

    @model_validator(mode="after")
    def _exactly_one(self) -> CardRef:
        values = self.__dict__
        given = [name for name in _KIND_OF_FIELD if values[name] is not None]
        if len(given) != 1:
            got = " and ".join(given) if given else "none"
            raise PydanticCustomError(
                "contract",
                "must hold exactly one of {fields} (got {got})",
                {"fields": _CARD_REF_FIELDS, "got": got},
            )
        return self

    @property
    def kind(self) -> CardRefKind:
        """The field this reference uses."""
        # Read on every event: plain dict lookups, no walk over the enum.
        values = self.__dict__
        if values["card_number"] is not None:
            return CardRefKind.CARD_NUMBER
        if values["qr_code"] is not None:
            return CardRefKind.QR_CODE
        if values["email"] is not None:
            return CardRefKind.EMAIL
        return CardRefKind.CUSTOMER_REF

    @property
    def value(self) -> str:
        """The reference's (normalised) value; also the Kafka key of messages that carry it."""
        value: str = self.__dict__[self.kind.value]
        return value


class Customer(ContractModel):
    """Who enrolls: `email` and/or `customer_ref` (at least one) and optional details."""

    email: Email | None = Field(default=None, exclude_if=_is_none)
    customer_ref: Code | None = Field(default=None, exclude_if=_is_none)
    phone: Annotated[str, Field(min_length=1, max_length=50)] | None = Field(
        default=None, exclude_if=_is_none
    )
    first_name: Text | None = Field(default=None, exclude_if=_is_none)
    last_name: Text | None = Field(default=None, exclude_if=_is_none)
    locale: Locale | None = Field(default=None, exclude_if=_is_none)

    @model_validator(mode="after")
    def _identified(self) -> Customer:
        if self.email is None and self.customer_ref is None:
            raise PydanticCustomError(
                "contract", "must hold email or customer_ref, or both (got neither)"
            )
        return self


class StampsReward(ContractModel):
    """The stamp card's reward: takes `stamps_target` stamps."""

    kind: Literal[RewardKind.STAMPS]


class PointsReward(ContractModel):
    """A reward of the program's points catalog, by its id."""

    kind: Literal[RewardKind.POINTS]
    reward_id: Code


Reward = Annotated[StampsReward | PointsReward, Field(discriminator="kind")]
"""`{"kind": "stamps"}` or `{"kind": "points", "reward_id": "..."}`."""


class PurchaseLine(ContractModel):
    """A line of the basket (contract 7.1): `amount_cents` is its total after discounts."""

    sku: ItemCode = Field(description="the product's code; what a return's lines name")
    category: ItemCode | None = Field(
        default=None,
        exclude_if=_is_none,
        description="what earning rules and non-earning categories match on",
    )
    quantity: PositiveCount = Field(description="units bought")
    amount_cents: Count = Field(description="the line's total after discounts")


class ReturnedLine(ContractModel):
    """Units of a sku given back (contract 7.1): they void what those units earned."""

    sku: ItemCode = Field(description="the sku of a line of the purchase")
    quantity: PositiveCount = Field(description="units returned")


class _Input(ContractModel):
    event_id: UUID = Field(description="idempotency key: a second message with it has no effect")
    # Narrowed to the topic's Literal by each message; declared here to keep the contract's
    # field order in the JSON and the documentation.
    type: str
    occurred_at: Timestamp


class _StoreInput(_Input):
    store_code: Code = Field(
        description="the store where it happened; its merchant owns the program"
    )


class PurchaseCompleted(_StoreInput):
    """`purchase.completed` on `loyalty.purchases.v1`: earns points and/or stamps."""

    type: Literal["purchase.completed"]
    order_reference: Annotated[str, Field(min_length=1, max_length=100)] = Field(
        description="unique per merchant; a second purchase with it is rejected"
    )
    amount_cents: Count
    currency: Currency = "EUR"
    card: CardRef
    channel: PurchaseChannel = PurchaseChannel.ONLINE
    stamps: Annotated[int, Field(strict=True, ge=0, le=100)] = Field(
        default=1, description="what the purchase is worth in a stamp program"
    )
    staff_ref: Text | None = Field(default=None, description="audit only")
    # A tuple, not a list: the model is frozen because a parsed message is shared as a fact,
    # and a list inside it could still be changed by whoever holds it.
    lines: tuple[PurchaseLine, ...] | None = Field(
        default=None,
        exclude_if=_is_none,
        description=(
            "the basket, line by line (contract 7.1); their amount_cents add up to at most the "
            "purchase's, the rest (shipping, fees) earning at the base rate. Absent or empty: "
            "the whole amount earns at the base rate, as in v1"
        ),
    )

    @field_validator("lines")
    @classmethod
    def _lines_within_amount(
        cls, lines: tuple[PurchaseLine, ...] | None, info: ValidationInfo
    ) -> tuple[PurchaseLine, ...] | None:
        # A field validator, not a model validator, so the dead letter blames `lines`.
        amount = info.data.get("amount_cents")
        if not lines or amount is None:  # no amount: its own error already says why
            return lines
        total = sum(line.amount_cents for line in lines)
        if total > amount:
            raise PydanticCustomError(
                "contract",
                "the lines' amount_cents add up to {total}, over the purchase's amount_cents"
                " {amount}",
                {"total": total, "amount": amount},
            )
        return lines


class PurchaseReturned(_StoreInput):
    """`purchase.returned` on `loyalty.returns.v1`: voids what the purchase earned, pro rata,
    or, when it names `lines`, what those units earned."""

    type: Literal["purchase.returned"]
    order_reference: Annotated[str, Field(min_length=1, max_length=100)] = Field(
        description="the order_reference of the purchase"
    )
    refund_amount_cents: PositiveCount
    card: CardRef | None = None
    lines: tuple[ReturnedLine, ...] | None = Field(
        default=None,
        exclude_if=_is_none,
        description=(
            "the units given back (contract 7.1); absent or empty: the refund voids in "
            "proportion to the amount, as in v1"
        ),
    )


class EnrollmentRequested(_StoreInput):
    """`enrollment.requested` on `loyalty.enrollments.v1`: issues (or returns) a card."""

    type: Literal["enrollment.requested"]
    customer: Customer
    channel: EnrollmentChannel


class RewardRedeemRequested(_StoreInput):
    """`reward.redeem_requested` on `loyalty.redemptions.v1`: spends stamps or points."""

    type: Literal["reward.redeem_requested"]
    card: CardRef
    reward: Reward
    staff_ref: Text | None = Field(default=None, description="audit only")


class ExpiryRunRequested(_Input):
    """`expiry.run_requested` on `loyalty.expiry.v1`: expires idle points as of occurred_at."""

    type: Literal["expiry.run_requested"]
    merchant_code: Code | None = Field(default=None, description="all merchants when absent")


InputMessage = Annotated[
    PurchaseCompleted
    | PurchaseReturned
    | EnrollmentRequested
    | RewardRedeemRequested
    | ExpiryRunRequested,
    Field(discriminator="type"),
]
"""Any input message, told apart by `type`."""
