"""The messages the engine publishes (CONTRACT.md section 4)."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal
from uuid import UUID

from pydantic import ConfigDict, Field, StrictBool

from core.enums import ReasonCode as ReasonCode  # re-exported: part of the schema
from streams.base import ContractModel
from streams.fields import Code, Count, Delta, PositiveCount, Timestamp
from streams.topics import Topic


class Status(StrEnum):
    """What became of an input event."""

    APPLIED = "applied"
    """It changed something or returned a card (possibly with some parts refused)."""
    REJECTED = "rejected"
    """It changed nothing."""
    HELD = "held"
    """A return waiting for its purchase; a second `event.processed` follows when applied."""


class _Output(ContractModel):
    # The engine always writes every field (null included), so the document marks them all
    # required, as readers will find them.
    model_config = ConfigDict(
        json_schema_mode_override="serialization", json_schema_serialization_defaults_required=True
    )


def _is_none(value: object) -> bool:
    return value is None


class CampaignAward(_Output):
    """What one campaign added to a purchase's points (contract 7.1)."""

    id: Code = Field(description="the campaign's id in its program")
    points: Delta = Field(
        description="the points it added: its multiplier's share and its bonus points"
    )


class NextExpiry(_Output):
    """The next points of a card to expire (contract 7.3)."""

    points: PositiveCount
    at: Timestamp = Field(description="when they expire")


class EventProcessed(_Output):
    """`event.processed` on `loyalty.results.v1`: the outcome of one input event.

    One per distinct input `event_id` (two for a held return: `held`, then its outcome).
    The card fields are null when no card was found and on expiry runs, which report
    `cards_expired` and `points_expired` instead (null on every other event). A purchase's
    result may carry `campaigns`, absent from every other result.
    """

    event_id: UUID
    type: Literal["event.processed"] = "event.processed"
    occurred_at: Timestamp = Field(description="processing time")
    source_event_id: UUID
    source_topic: Topic
    status: Status
    reasons: tuple[ReasonCode, ...] = Field(
        default=(), description="every rule that refused a part; empty when none did"
    )
    merchant_code: Code | None = None
    store_code: Code | None = None
    card_number: Code | None = None
    stamps_delta: Delta | None = None
    points_delta: Delta | None = None
    stamp_count: Count | None = None
    stamps_target: Count | None = None
    points_balance: Count | None = None
    cards_expired: Count | None = None
    points_expired: Count | None = None
    points_released: Count | None = Field(
        default=None,
        exclude_if=_is_none,
        description="on an expiry run's result: pending points released (contract 7.2)",
    )
    reminders_sent: Count | None = Field(
        default=None,
        exclude_if=_is_none,
        description="on an expiry run's result: `points.expiring` reminders sent (7.3)",
    )
    tiers_changed: Count | None = Field(
        default=None,
        exclude_if=_is_none,
        description="on an expiry run's result: cards whose tier it changed (contract 7.4)",
    )
    tier: Code | None = Field(
        default=None,
        exclude_if=_is_none,
        description="when the result names a card of a program with tiers: its tier's id (7.4)",
    )
    points_to_next_tier: Count | None = Field(
        default=None,
        exclude_if=_is_none,
        description="qualifying points still missing for the next tier; null at the top (7.4)",
    )
    points_pending: Count | None = Field(
        default=None,
        exclude_if=_is_none,
        description=(
            "when the result names a card: its points earned but not yet spendable "
            "(contract 7.2), not part of points_balance"
        ),
    )
    next_expiry: NextExpiry | None = Field(
        default=None,
        exclude_if=_is_none,
        description="when the result names a card: its next points to expire, or null (7.3)",
    )
    # Left out rather than null when there is none, unlike the v1 fields: v1.1 is additive,
    # and a result of v1 must read exactly as it did.
    campaigns: tuple[CampaignAward, ...] | None = Field(
        default=None,
        exclude_if=_is_none,
        description=(
            "on a purchase's result: what each campaign added to points_delta (contract 7.1); "
            "absent on other results"
        ),
    )


class CardBalanceChanged(_Output):
    """`card.balance_changed` on `loyalty.wallet-updates.v1`: a card's new balance or status.

    `version` strictly increases per card, so a wallet that sees an older version after a
    newer one (at-least-once delivery, redelivery) can drop it.
    """

    event_id: UUID
    type: Literal["card.balance_changed"] = "card.balance_changed"
    occurred_at: Timestamp
    card_number: Code
    merchant_code: Code
    stamp_count: Count
    stamps_target: Count | None = Field(default=None, description="null in a points-only program")
    points_balance: Count
    points_pending: Count = Field(
        default=0, description="earned, not yet spendable (contract 7.2); not in points_balance"
    )
    is_active: StrictBool
    version: PositiveCount
    reason: Code = Field(description="the ledger entry type behind the change")
    source_event_id: UUID | None = Field(
        default=None, description="the input event behind the change; null for admin changes"
    )


class DeadLetter(_Output):
    """`dead_letter` on `loyalty.dlq.v1`: a message that is not valid JSON or breaks the schema.

    `payload` is the original value as text, or base64 when it is not UTF-8 (the `error`
    then says so). Nothing of the original is lost: topic, partition, offset and key locate it.
    """

    event_id: UUID
    type: Literal["dead_letter"] = "dead_letter"
    occurred_at: Timestamp
    source_topic: str
    partition: Count
    offset: Count
    key: str | None = Field(description="the original key; null when it had none")
    payload: str
    error: str = Field(description="which field and why, in words")


class Notification(_Output):
    """A message of `loyalty.notifications.v1` (contract 7.5), for the customer's channels.

    `points.expiring`: `points` expire at `expires_at` (sent once per card and expiry date,
    `expiry_reminder_days` ahead); `reward.available`: a change made `reward` (`stamps` or a
    reward id) affordable; `tier.changed`: `from_tier` to `to_tier`. Fields of the other
    types are absent.
    """

    event_id: UUID
    type: Literal["points.expiring", "reward.available", "tier.changed"]
    occurred_at: Timestamp
    card_number: Code
    merchant_code: Code
    points: PositiveCount | None = Field(default=None, exclude_if=_is_none)
    expires_at: Timestamp | None = Field(default=None, exclude_if=_is_none)
    reward: Code | None = Field(default=None, exclude_if=_is_none)
    from_tier: Code | None = Field(default=None, exclude_if=_is_none)
    to_tier: Code | None = Field(default=None, exclude_if=_is_none)
    source_event_id: UUID | None = Field(default=None, exclude_if=_is_none)


OutputMessage = EventProcessed | CardBalanceChanged | DeadLetter | Notification
"""Any message the engine publishes."""
