"""Card numbers, QR tokens, pass authentication tokens and output event ids: random."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator

_NOT_DIGITS = re.compile(r"[\s-]")


def new_card_number() -> str:
    """``XXXX-XXXX-XXXX``, twelve random digits (uniqueness is the database's to enforce)."""
    digits = f"{secrets.randbelow(10**12):012d}"
    return f"{digits[0:4]}-{digits[4:8]}-{digits[8:12]}"


def normalize_card_number(value: str) -> str:
    """The stored form of a card number as typed: dashes and spaces ignored."""
    raw = _NOT_DIGITS.sub("", value).upper()
    if len(raw) != 12:
        return raw
    return f"{raw[0:4]}-{raw[4:8]}-{raw[8:12]}"


def new_qr_token() -> str:
    """A URL-safe token printed in the card's QR code (unguessable: it opens the card page)."""
    return secrets.token_urlsafe(24)


def new_authentication_token() -> str:
    """The Apple pass web service token: Apple asks for 16 characters at least."""
    return secrets.token_urlsafe(32)


def mask(secret: str) -> str:
    """What a log line may show of a secret: its last four characters."""
    return "…" + secret[-4:] if len(secret) > 4 else "…"


_VARIANT = "89ab89ab89ab89ab"
_IDS_PER_DRAW = 1024


def _event_ids() -> Iterator[str]:
    # One read of the system's random source per 1,024 ids: a read per id was most of the cost.
    while True:
        pool = os.urandom(16 * _IDS_PER_DRAW).hex()
        for i in range(0, len(pool), 32):
            h = pool[i : i + 32]
            yield f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16)]}{h[17:20]}-{h[20:]}"


_next_event_id = _event_ids().__next__


def new_event_id() -> str:
    """A random (version 4) UUID in its text form, for an output message's ``event_id``.

    Formatted from random bytes directly: ``str(uuid.uuid4())`` costs several times as much,
    and every output carries one. Not a secret: anything that must be unguessable comes
    from ``secrets``.
    """
    return _next_event_id()
