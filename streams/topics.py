"""The Kafka topics of the contract (CONTRACT.md section 1, and 7.5's notifications)."""

from __future__ import annotations

from dataclasses import dataclass

from core.enums import Topic as Topic  # re-exported: the contract's topic names


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
    TopicSpec(Topic.NOTIFICATIONS, "points.expiring, reward.available or tier.changed", False),
)

INPUT_TOPICS: tuple[Topic, ...] = tuple(t.topic for t in TOPICS if t.is_input)
TYPE_OF_TOPIC: dict[str, str] = {t.topic.value: t.message_type for t in TOPICS}
