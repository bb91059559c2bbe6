"""Card numbers, QR tokens, pass authentication tokens and output event ids: random."""

from __future__ import annotations

import os
import re
import secrets

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


def new_event_id() -> str:
    """A random (version 4) UUID in its text form, for an output message's ``event_id``.

    Formatted from 16 random bytes directly: ``str(uuid.uuid4())`` costs three times as much,
    and every output carries one.
    """
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16)]}{h[17:20]}-{h[20:]}"
