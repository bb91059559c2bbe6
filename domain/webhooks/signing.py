"""Signing webhook deliveries, and checking a signature as a receiver does.

Each attempt is signed afresh: ``Loyalty-Signature: v1=<hex>``, the HMAC-SHA256 with the
endpoint's secret of the ``Loyalty-Timestamp`` (Unix seconds), a dot, and the body's bytes.
Signing the timestamp with the body lets a receiver refuse an old delivery replayed to it;
``verify`` accepts five minutes either way by default. README ("Webhooks") has the recipe.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SCHEME = "v1"
USER_AGENT = "loyalty-webhooks/1"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Loyalty-Signature`` value: ``v1=`` and the hex HMAC-SHA256 of
    ``f"{timestamp}."`` and the body under the secret."""
    message = f"{int(timestamp)}.".encode() + body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return f"{SCHEME}={digest}"


def verify(
    secret: str,
    timestamp: int | str,
    body: bytes,
    signature: str,
    *,
    tolerance_s: float = 300,
    now: float | None = None,
) -> bool:
    """Whether ``signature`` (a ``Loyalty-Signature`` value, which may list several
    signatures separated by commas or spaces) signs ``body`` at ``timestamp`` with ``secret``,
    and the timestamp is within ``tolerance_s`` of ``now`` (the clock when ``None``)."""
    try:
        stamp = int(timestamp)
    except (TypeError, ValueError):
        return False
    moment = time.time() if now is None else now
    if abs(moment - stamp) > tolerance_s:
        return False
    expected = sign(secret, stamp, body)
    offered = signature.replace(",", " ").split()
    # Every candidate is compared, in constant time each, so the answer's timing tells
    # nothing about which part matched.
    return any([hmac.compare_digest(expected, candidate) for candidate in offered])


def delivery_headers(
    secret: str, event_id: str, event_type: str, body: bytes, timestamp: int
) -> dict[str, str]:
    """The headers of one attempt to deliver ``body`` (an output message as on Kafka)."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Idempotency-Key": event_id,
        "Loyalty-Event-Type": event_type,
        "Loyalty-Timestamp": str(int(timestamp)),
        "Loyalty-Signature": sign(secret, timestamp, body),
    }
