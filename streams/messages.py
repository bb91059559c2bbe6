"""Every message of contract v1, and which topic carries which model.

Import message models from here; ``streams.inputs`` and ``streams.outputs`` hold them.
"""

from __future__ import annotations

from typing import Final

from streams.base import ContractModel
from streams.fields import normalise_card_number
from streams.inputs import (
    CardRef,
    CardRefKind,
    Customer,
    EnrollmentChannel,
    EnrollmentRequested,
    ExpiryRunRequested,
    InputMessage,
    Locale,
    PointsReward,
    PurchaseChannel,
    PurchaseCompleted,
    PurchaseLine,
    PurchaseReturned,
    ReturnedLine,
    Reward,
    RewardKind,
    RewardRedeemRequested,
    StampsReward,
)
from streams.outputs import (
    CampaignAward,
    CardBalanceChanged,
    DeadLetter,
    EventProcessed,
    Notification,
    OutputMessage,
    ReasonCode,
    Status,
)
from streams.topics import Topic

INPUT_MODELS: Final[dict[Topic, type[InputMessage]]] = {
    Topic.PURCHASES: PurchaseCompleted,
    Topic.RETURNS: PurchaseReturned,
    Topic.ENROLLMENTS: EnrollmentRequested,
    Topic.REDEMPTIONS: RewardRedeemRequested,
    Topic.EXPIRY: ExpiryRunRequested,
}
"""The model of each topic the engine consumes."""

OUTPUT_MODELS: Final[dict[Topic, type[OutputMessage]]] = {
    Topic.RESULTS: EventProcessed,
    Topic.WALLET_UPDATES: CardBalanceChanged,
    Topic.DLQ: DeadLetter,
    Topic.NOTIFICATIONS: Notification,
}
"""The model of each topic the engine publishes."""

MODEL_OF_TOPIC: Final[dict[Topic, type[ContractModel]]] = {**INPUT_MODELS, **OUTPUT_MODELS}
"""Every topic of the contract and its model."""

TOPIC_OF_MODEL: Final[dict[type[ContractModel], Topic]] = {
    model: topic for topic, model in MODEL_OF_TOPIC.items()
}
"""Where each model is published."""

__all__ = [
    "INPUT_MODELS",
    "MODEL_OF_TOPIC",
    "OUTPUT_MODELS",
    "TOPIC_OF_MODEL",
    "CampaignAward",
    "CardBalanceChanged",
    "CardRef",
    "CardRefKind",
    "ContractModel",
    "Customer",
    "DeadLetter",
    "EnrollmentChannel",
    "EnrollmentRequested",
    "EventProcessed",
    "ExpiryRunRequested",
    "InputMessage",
    "Locale",
    "OutputMessage",
    "PointsReward",
    "PurchaseChannel",
    "PurchaseCompleted",
    "PurchaseLine",
    "PurchaseReturned",
    "ReasonCode",
    "ReturnedLine",
    "Reward",
    "RewardKind",
    "RewardRedeemRequested",
    "StampsReward",
    "Status",
    "normalise_card_number",
]
