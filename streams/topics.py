"""The Kafka topics of contract v1 (CONTRACT.md section 1)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Topic(StrEnum):
    """Every topic of the public contract, by name."""

    PURCHASES = "loyalty.purchases.v1"
    RETURNS = "loyalty.returns.v1"
    ENROLLMENTS = "loyalty.enrollments.v1"
    REDEMPTIONS = "loyalty.redemptions.v1"
    EXPIRY = "loyalty.expiry.v1"
    RESULTS = "loyalty.results.v1"
    WALLET_UPDATES = "loyalty.wallet-updates.v1"
    DLQ = "loyalty.dlq.v1"


@dataclass(frozen=True)
class TopicSpec:
    """A topic, the message `type` it carries, and whether the engine consumes it."""

    topic: Topic
    message_type: str
    is_input: bool


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(Topic.PURCHASES, "purchase.completed", True),
    TopicSpec(Topic.RETURNS, "purchase.returned", True),
    TopicSpec(Topic.ENROLLMENTS, "enrollment.requested", True),
    TopicSpec(Topic.REDEMPTIONS, "reward.redeem_requested", True),
    TopicSpec(Topic.EXPIRY, "expiry.run_requested", True),
    TopicSpec(Topic.RESULTS, "event.processed", False),
    TopicSpec(Topic.WALLET_UPDATES, "card.balance_changed", False),
    TopicSpec(Topic.DLQ, "dead_letter", False),
)

INPUT_TOPICS: tuple[Topic, ...] = tuple(t.topic for t in TOPICS if t.is_input)
TYPE_OF_TOPIC: dict[str, str] = {t.topic.value: t.message_type for t in TOPICS}
