"""The engine's output messages (CONTRACT.md section 4) as the outbox stores them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from core.enums import Topic
from domain.identifiers import new_event_id
from domain.rules.lots import NextExpiry
from domain.rules.values import CardBalance, ProgramTerms, Reason


class OutboxEntry(msgspec.Struct, frozen=True, gc=False):
    """A message for the relay: topic, key and JSON payload."""

    topic: str
    key: str
    payload: dict[str, Any]


@dataclass
class Result:
    """The outcome of one input event, before it becomes an ``event.processed`` message."""

    source_event_id: uuid.UUID
    source_topic: str
    status: str
    reasons: list[Reason] = field(default_factory=list)
    merchant_code: str | None = None
    store_code: str | None = None
    card_number: str | None = None
    stamps_delta: int = 0
    points_delta: int = 0
    stamp_count: int | None = None
    stamps_target: int | None = None
    points_balance: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    campaigns: list[dict[str, Any]] | None = None
    """What each campaign added (``[{id, points}]``); purchases only."""
    points_pending: int | None = None
    next_expiry: NextExpiry | None = None
    tier: dict[str, Any] | None = None
    """``tier`` and ``points_to_next_tier`` (CONTRACT.md 7.4), for programs with tiers."""


APPLIED, REJECTED, HELD, DUPLICATE = "applied", "rejected", "held", "duplicate"

_RESULTS, _WALLET_UPDATES = Topic.RESULTS.value, Topic.WALLET_UPDATES.value
_NOTIFICATIONS = Topic.NOTIFICATIONS.value


def expiry_json(expiry: NextExpiry | None) -> dict[str, Any] | None:
    """``next_expiry`` as the contract writes it: ``{points, at}`` or null."""
    return None if expiry is None else {"points": expiry.points, "at": expiry.at.isoformat()}


def result_message(result: Result, now: datetime | str) -> OutboxEntry:
    """``event.processed``, keyed by the source event id (``now`` may come pre-formatted)."""
    source = str(result.source_event_id)
    payload: dict[str, Any] = {
        "event_id": new_event_id(),
        "type": "event.processed",
        "occurred_at": now if isinstance(now, str) else now.isoformat(),
        "source_event_id": source,
        "source_topic": result.source_topic,
        "status": result.status,
        "reasons": [str(r) for r in _unique(result.reasons)],
        "merchant_code": result.merchant_code,
        "store_code": result.store_code,
    }
    if result.extra:
        payload.update(result.extra)
    else:
        payload.update(
            card_number=result.card_number,
            stamps_delta=result.stamps_delta,
            points_delta=result.points_delta,
            stamp_count=result.stamp_count,
            stamps_target=result.stamps_target,
            points_balance=result.points_balance,
        )
        if result.card_number is not None:  # v1.1 (7.2, 7.3): only beside a card
            payload["points_pending"] = result.points_pending
            payload["next_expiry"] = expiry_json(result.next_expiry)
            if result.tier is not None:
                payload.update(result.tier)
    if result.campaigns is not None:
        payload["campaigns"] = result.campaigns
    return OutboxEntry(_RESULTS, source, payload)


def wallet_message(
    *,
    card_number: str,
    merchant_code: str,
    stamp_count: int,
    stamps_target: int | None,
    points_balance: int,
    is_active: bool,
    version: int,
    reason: str,
    source_event_id: uuid.UUID | None,
    now: datetime | str,
    points_pending: int = 0,
) -> OutboxEntry:
    """``card.balance_changed``, keyed by the card number."""
    payload = {
        "event_id": new_event_id(),
        "type": "card.balance_changed",
        "occurred_at": now if isinstance(now, str) else now.isoformat(),
        "card_number": card_number,
        "merchant_code": merchant_code,
        "stamp_count": stamp_count,
        "stamps_target": stamps_target,
        "points_balance": points_balance,
        "points_pending": points_pending,
        "is_active": is_active,
        "version": version,
        "reason": reason,
        "source_event_id": str(source_event_id) if source_event_id else None,
    }
    return OutboxEntry(_WALLET_UPDATES, card_number, payload)


def notification(
    kind: str, card_number: str, merchant_code: str, now: datetime | str, **fields: Any
) -> OutboxEntry:
    """A message of ``loyalty.notifications.v1`` (CONTRACT.md 7.5), keyed by the card."""
    payload: dict[str, Any] = {
        "event_id": new_event_id(),
        "type": kind,
        "occurred_at": now if isinstance(now, str) else now.isoformat(),
        "card_number": card_number,
        "merchant_code": merchant_code,
        **fields,
    }
    return OutboxEntry(_NOTIFICATIONS, card_number, payload)


_NONE: tuple[OutboxEntry, ...] = ()


def reward_notices(
    card_number: str,
    merchant_code: str,
    terms: ProgramTerms,
    before: tuple[int, int],
    card: CardBalance,
    now: datetime | str,
) -> Sequence[OutboxEntry]:
    """``reward.available`` for every reward a change made affordable: the card could not
    have it before, it can now (``before``: stamps and points before the change)."""
    stamps, points = before
    if card.stamp_count <= stamps and card.points_balance <= points:
        return _NONE  # nothing went up: nothing became affordable (most changes)
    notices: list[OutboxEntry] = []
    if terms.stamps_enabled and stamps < terms.stamps_target <= card.stamp_count:
        notices.append(
            notification("reward.available", card_number, merchant_code, now, reward="stamps")
        )
    if terms.points_enabled and card.points_balance > points:
        floor = terms.minimum_redemption_points
        for reward in terms.rewards.values():
            needed = max(reward.points_required, floor)
            if reward.is_active and points < needed <= card.points_balance:
                notices.append(
                    notification(
                        "reward.available", card_number, merchant_code, now, reward=reward.code
                    )
                )
    return notices


def _unique(reasons: Sequence[Reason]) -> list[Reason]:
    return list(dict.fromkeys(reasons))
