"""Card numbers, QR tokens and pass authentication tokens: random, from ``secrets``."""

from __future__ import annotations

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
