"""Webhook rules: the output types an endpoint may be sent, and when a failed delivery is tried
again or parked.

Plain functions over plain values: the caller passes the time and the random source, so the
dispatcher's retries are tested without a clock or a network.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import datetime

WEBHOOK_EVENT_TYPES: tuple[str, ...] = (
    "event.processed",
    "card.balance_changed",
    "points.expiring",
    "reward.available",
    "tier.changed",
)
"""The output message types a merchant's endpoint may choose (CONTRACT.md 4 and 7.5)."""

# 2 ** 60 times any first pause is past every cap; a larger power would overflow a float.
_MAX_DOUBLINGS = 60


def unknown_event_types(types: Iterable[str]) -> list[str]:
    """The types of ``types`` that are not webhook types, in their order, each once."""
    return list(dict.fromkeys(t for t in types if t not in WEBHOOK_EVENT_TYPES))


def ordered_event_types(types: Iterable[str]) -> tuple[str, ...]:
    """Known types each once, in ``WEBHOOK_EVENT_TYPES``' order (how they are stored)."""
    chosen = set(types)
    return tuple(t for t in WEBHOOK_EVENT_TYPES if t in chosen)


def next_delay(attempts: int, first_s: float, max_s: float, rng: random.Random) -> float:
    """Seconds to wait after a delivery's ``attempts``-th failed attempt.

    The step doubles from ``first_s`` at each attempt up to ``max_s``; the wait is half the
    step plus a random part of the other half ("equal jitter"). The random half spreads the
    retries of many deliveries that failed together (an endpoint that was down), and the fixed
    half keeps an endpoint that is down from being called again at once, which full jitter
    (anywhere from 0) would allow.
    """
    doublings = min(max(attempts - 1, 0), _MAX_DOUBLINGS)
    step = min(max_s, first_s * 2.0**doublings)
    return step / 2 + rng.uniform(0, step / 2)


def is_expired(retry_from: datetime, now: datetime, window_s: float) -> bool:
    """Whether a delivery's retry window, opened at ``retry_from``, is over at ``now``: a
    delivery that fails then is parked instead of tried again."""
    return (now - retry_from).total_seconds() >= window_s
