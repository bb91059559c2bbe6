"""The edge between the wire format and the engine: input messages become commands
(``core.commands``). Every producer of events for the engine (the Kafka worker, replay, the
admin panel's terminal and enrolment) translates here, once per message."""

from __future__ import annotations

from core.commands import (
    CardRef,
    Command,
    CustomerDetails,
    Enrol,
    ExpiryRun,
    Line,
    Purchase,
    Redeem,
    Return,
    ReturnedLine,
)
from streams.inputs import (
    CardRef as WireCardRef,
)
from streams.inputs import (
    EnrollmentRequested,
    ExpiryRunRequested,
    PointsReward,
    PurchaseCompleted,
    PurchaseLine,
    PurchaseReturned,
    RewardRedeemRequested,
)
from streams.inputs import (
    ReturnedLine as WireReturnedLine,
)

InputEvent = (
    PurchaseCompleted
    | PurchaseReturned
    | EnrollmentRequested
    | RewardRedeemRequested
    | ExpiryRunRequested
)


def card_ref(ref: WireCardRef) -> CardRef:
    """A wire card reference as a command's."""
    return CardRef(ref.kind, ref.value)


def purchase_lines(lines: tuple[PurchaseLine, ...]) -> tuple[Line, ...]:
    """A purchase's wire lines as the command's."""
    return tuple([Line(ln.sku, ln.quantity, ln.amount_cents, ln.category) for ln in lines])


def returned_lines(lines: tuple[WireReturnedLine, ...]) -> tuple[ReturnedLine, ...]:
    """A return's wire lines as the command's."""
    return tuple([ReturnedLine(ln.sku, ln.quantity) for ln in lines])


def to_command(message: InputEvent) -> Command:
    """The command an input message asks for; absent and empty ``lines`` both become ``()``."""
    if isinstance(message, PurchaseCompleted):
        lines = message.lines
        return Purchase(
            event_id=message.event_id,
            occurred_at=message.occurred_at,
            store_code=message.store_code,
            order_reference=message.order_reference,
            amount_cents=message.amount_cents,
            currency=message.currency,
            card=card_ref(message.card),
            stamps=message.stamps,
            staff_ref=message.staff_ref,
            # Most purchases carry no lines (every v1 till): they pay for one test.
            lines=purchase_lines(lines) if lines else (),
        )
    if isinstance(message, PurchaseReturned):
        returned = message.lines
        return Return(
            event_id=message.event_id,
            occurred_at=message.occurred_at,
            store_code=message.store_code,
            order_reference=message.order_reference,
            refund_amount_cents=message.refund_amount_cents,
            card=card_ref(message.card) if message.card is not None else None,
            payload=message.model_dump(mode="json"),
            lines=returned_lines(returned) if returned else (),
        )
    if isinstance(message, EnrollmentRequested):
        c = message.customer
        return Enrol(
            event_id=message.event_id,
            occurred_at=message.occurred_at,
            store_code=message.store_code,
            customer=CustomerDetails(
                email=c.email,
                customer_ref=c.customer_ref,
                phone=c.phone,
                first_name=c.first_name,
                last_name=c.last_name,
                locale=c.locale.value if c.locale else None,
            ),
            channel=message.channel,
        )
    if isinstance(message, RewardRedeemRequested):
        reward = message.reward
        return Redeem(
            event_id=message.event_id,
            occurred_at=message.occurred_at,
            store_code=message.store_code,
            card=card_ref(message.card),
            reward_id=reward.reward_id if isinstance(reward, PointsReward) else None,
            staff_ref=message.staff_ref,
        )
    return ExpiryRun(
        event_id=message.event_id,
        occurred_at=message.occurred_at,
        merchant_code=message.merchant_code,
    )
