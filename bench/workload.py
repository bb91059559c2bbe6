"""The benchmark's traffic: ``purchase.completed`` events over the seeded cards."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from streams.topics import Topic

MERCHANT_CODE = "bench"
STORE_CODE = "BENCH-01"
# Seeded card numbers are this plus the card's index, so the publisher computes them without
# reading 100,000 rows back; the leading 9 makes them easy to spot in the bench database.
_CARD_BASE = 900_000_000_000


def card_number(index: int) -> str:
    """The ``XXXX-XXXX-XXXX`` number of seeded card ``index`` (0-based)."""
    digits = f"{_CARD_BASE + index:012d}"
    return f"{digits[0:4]}-{digits[4:8]}-{digits[8:12]}"


@dataclass(frozen=True, slots=True)
class Event:
    """A message ready to publish, with its ``event_id`` as the results will key it."""

    topic: str
    key: bytes
    value: bytes
    event_id: bytes


# Three lines of a café basket: what the campaign of the line-items run covers (pastry) and
# what it does not.
LINE_SHARES = (("cappuccino", "coffee", 40), ("croissant", "pastry", 35), ("sandwich", "food", 25))


def lines_of(amount_cents: int) -> list[dict[str, object]]:
    """``amount_cents`` split into three lines (the last takes the rounding)."""
    lines: list[dict[str, object]] = []
    left = amount_cents
    for i, (sku, category, share) in enumerate(LINE_SHARES):
        cents = left if i == len(LINE_SHARES) - 1 else amount_cents * share // 100
        left -= cents
        lines.append({"sku": sku, "category": category, "quantity": 1, "amount_cents": cents})
    return lines


def purchase(
    card: int,
    order_reference: str,
    amount_cents: int,
    occurred_at: datetime,
    with_lines: bool = False,
) -> tuple[Event, dict[str, object]]:
    """One ``purchase.completed`` of a seeded card, keyed by its card number (``with_lines``:
    its amount as three line items)."""
    event_id = str(uuid.uuid4())
    number = card_number(card)
    message: dict[str, object] = {
        "event_id": event_id,
        "type": "purchase.completed",
        "occurred_at": occurred_at.isoformat(),
        "store_code": STORE_CODE,
        "order_reference": order_reference,
        "amount_cents": amount_cents,
        "currency": "EUR",
        "card": {"card_number": number},
        "channel": "in_store",
        "stamps": 1,
    }
    if with_lines:
        message["lines"] = lines_of(amount_cents)
    value = json.dumps(message, separators=(",", ":")).encode()
    return Event(Topic.PURCHASES.value, number.encode(), value, event_id.encode()), message


class Workload:
    """Purchases spread evenly over ``cards`` cards in a shuffled order, reproducibly."""

    def __init__(self, cards: int, seed: int = 42) -> None:
        self.cards = cards
        self.rng = random.Random(seed)
        self.order = list(range(cards))
        self.rng.shuffle(self.order)
        self.produced = 0

    def _next(self, occurred_at: datetime, prefix: str, with_lines: bool = False) -> Event:
        card = self.order[self.produced % self.cards]
        self.produced += 1
        amount = self.rng.randrange(100, 10_000)
        event, _ = purchase(card, f"{prefix}-{self.produced}", amount, occurred_at, with_lines)
        return event

    def batch(self, count: int, prefix: str, with_lines: bool = False) -> list[Event]:
        """``count`` purchases with strictly increasing event times, ending about now.

        Event times increase per card in publishing order, as a till would send them, so
        the engine's stamp rules read the card's projection, not the ledger.
        """
        start = datetime.now(UTC) - timedelta(microseconds=count)
        return [
            self._next(start + timedelta(microseconds=i), prefix, with_lines) for i in range(count)
        ]

    def live(self, prefix: str) -> Iterator[tuple[Event, float]]:
        """Purchases stamped with the wall clock at the moment each is taken (latency runs)."""
        while True:
            now = datetime.now(UTC)
            yield self._next(now, prefix), now.timestamp()
