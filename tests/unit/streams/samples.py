"""Valid messages of contract v1, as a till would send them, for tests to start from."""

from __future__ import annotations

import json
from typing import Any

from streams.topics import Topic

EVENT_ID = "6f1c6a4e-0f7e-4b4e-9d0e-4c7c1c2b3a4d"


def purchase() -> dict[str, Any]:
    """A purchase at Café Lux's Gare store (CONTRACT.md section 5), every field given."""
    return {
        "event_id": EVENT_ID,
        "type": "purchase.completed",
        "occurred_at": "2025-03-01T10:15:00+01:00",
        "store_code": "LUX-01",
        "order_reference": "POS-000123",
        "amount_cents": 1250,
        "currency": "EUR",
        "card": {"card_number": "AB12-CD34-EF56"},
        "channel": "in_store",
        "stamps": 2,
        "staff_ref": "anna",
    }


def minimal_purchase() -> dict[str, Any]:
    """A purchase with only the required fields."""
    return {
        "event_id": EVENT_ID,
        "type": "purchase.completed",
        "occurred_at": "2025-03-01T09:15:00Z",
        "store_code": "LUX-01",
        "order_reference": "WEB-1",
        "amount_cents": 0,
        "card": {"email": "Jo@Example.COM"},
    }


def purchase_with_lines() -> dict[str, Any]:
    """That purchase with its basket (contract 7.1): 9.50 of lines, 3.00 of delivery."""
    return {
        **purchase(),
        "lines": [
            {"sku": "CROISSANT", "category": "pastry", "quantity": 3, "amount_cents": 450},
            {"sku": "GIFT-CARD-5", "category": "gift_card", "quantity": 1, "amount_cents": 500},
            {"sku": "BAG", "quantity": 1, "amount_cents": 0},
        ],
    }


def purchase_return() -> dict[str, Any]:
    """A partial refund of that purchase."""
    return {
        "event_id": "0d7bb3a0-5d3e-4c55-8a4b-6a4a8b7c1e21",
        "type": "purchase.returned",
        "occurred_at": "2025-03-02T11:00:00+01:00",
        "store_code": "LUX-02",
        "order_reference": "POS-000123",
        "refund_amount_cents": 500,
        "card": {"qr_code": "qr-7f3a9c"},
    }


def return_with_lines() -> dict[str, Any]:
    """That refund, naming the units given back: two of the three croissants."""
    return {
        **purchase_return(),
        "refund_amount_cents": 300,
        "lines": [{"sku": "CROISSANT", "quantity": 2}],
    }


def enrollment() -> dict[str, Any]:
    """A storefront's enrollment with every customer field."""
    return {
        "event_id": "f2b5e3c1-9a0d-4c8e-b1f7-3d2e4a5b6c7d",
        "type": "enrollment.requested",
        "occurred_at": "2025-03-01T08:00:00+01:00",
        "store_code": "LUX-01",
        "customer": {
            "email": "Marie.Muller@Example.lu",
            "customer_ref": "C-42",
            "phone": "+352 621 000 000",
            "first_name": "Marie",
            "last_name": "Müller",
            "locale": "lb",
        },
        "channel": "online",
    }


def redemption() -> dict[str, Any]:
    """A points reward of the catalog (`coffee`, 100 points)."""
    return {
        "event_id": "9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
        "type": "reward.redeem_requested",
        "occurred_at": "2025-03-03T16:45:00+01:00",
        "store_code": "LUX-02",
        "card": {"customer_ref": "C-42"},
        "reward": {"kind": "points", "reward_id": "coffee"},
        "staff_ref": "anna",
    }


def expiry() -> dict[str, Any]:
    """The nightly run for one merchant."""
    return {
        "event_id": "3e2d1c0b-a9f8-4e7d-9c6b-5a4f3e2d1c0b",
        "type": "expiry.run_requested",
        "occurred_at": "2025-03-04T03:00:00+01:00",
        "merchant_code": "cafe-lux",
    }


SAMPLES = {
    Topic.PURCHASES: purchase,
    Topic.RETURNS: purchase_return,
    Topic.ENROLLMENTS: enrollment,
    Topic.REDEMPTIONS: redemption,
    Topic.EXPIRY: expiry,
}
"""A valid message builder per input topic."""


def encoded(message: dict[str, Any] | list[Any] | str | int | None) -> bytes:
    """JSON bytes, as they travel on Kafka."""
    return json.dumps(message, ensure_ascii=False).encode("utf-8")
