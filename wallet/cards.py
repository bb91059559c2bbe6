"""The plain values the wallets are built from.

The database models and the Kafka consumers fill these in; nothing in ``wallet/`` reads the
database, so every format can be built and tested from values alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

SUPPORTED_LOCALES: tuple[str, ...] = ("en", "fr", "de", "lb")

_HEX_COLOR = re.compile(r"^#?(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")


class ProgramType(StrEnum):
    """What a program counts: stamps, points, or both."""

    STAMPS = "stamps"
    POINTS = "points"
    HYBRID = "hybrid"

    @property
    def stamps_enabled(self) -> bool:
        """True when cards of this program collect stamps."""
        return self in (ProgramType.STAMPS, ProgramType.HYBRID)

    @property
    def points_enabled(self) -> bool:
        """True when cards of this program collect points."""
        return self in (ProgramType.POINTS, ProgramType.HYBRID)


def parse_hex_color(value: str) -> tuple[int, int, int]:
    """``#RRGGBB``, ``RRGGBB`` or ``#RGB`` as an ``(r, g, b)`` tuple; ValueError otherwise."""
    if not _HEX_COLOR.match(value):
        raise ValueError(f"not a hex colour: {value!r} (expected #RRGGBB)")
    digits = value.lstrip("#")
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


def normalize_hex_color(value: str) -> str:
    """The canonical ``#RRGGBB`` (upper case) of any accepted hex colour."""
    r, g, b = parse_hex_color(value)
    return f"#{r:02X}{g:02X}{b:02X}"


def normalize_locale(value: str) -> str:
    """One of :data:`SUPPORTED_LOCALES`: ``fr-LU`` becomes ``fr``, anything unknown ``en``."""
    base = value.replace("_", "-").split("-", 1)[0].lower()
    return base if base in SUPPORTED_LOCALES else "en"


@dataclass(frozen=True, kw_only=True)
class PassCard:
    """Everything a wallet shows of one loyalty card, as plain values.

    Secrets (``qr_token``, ``authentication_token``) and image bytes stay out of ``repr`` so
    a card can be logged or shown in a traceback without leaking them.
    """

    card_number: str
    merchant_code: str
    merchant_name: str
    program_name: str
    program_type: ProgramType
    qr_token: str = field(repr=False)
    authentication_token: str = field(repr=False)
    updated_at: datetime
    customer_name: str = ""
    stamp_count: int = 0
    stamps_target: int = 0
    points_balance: int = 0
    reward_description: str = ""
    background_color: str = "#1F2937"
    foreground_color: str = "#FFFFFF"
    label_color: str = "#D1D5DB"
    logo: bytes | None = field(default=None, repr=False)
    icon: bytes | None = field(default=None, repr=False)
    locale: str = "en"
    is_active: bool = True
    points_pending: int = 0
    """Points earned but not yet spendable; not part of ``points_balance``."""
    next_expiry_points: int = 0
    next_expiry_on: date | None = None
    """The next points to expire, and the last day (the merchant's) they can be spent."""
    tier_name: str = ""
    """The card's tier (CONTRACT.md 7.4); empty when the program has no tiers."""
    next_tier_name: str = ""
    points_to_next_tier: int | None = None
    """The tier above and the qualifying points still missing for it (none at the top)."""

    def __post_init__(self) -> None:
        # Callers holding strings from the database or a message get the enum for free.
        object.__setattr__(self, "program_type", ProgramType(self.program_type))
        object.__setattr__(self, "locale", normalize_locale(self.locale))
        for name in ("background_color", "foreground_color", "label_color"):
            object.__setattr__(self, name, normalize_hex_color(getattr(self, name)))
        if not self.card_number.strip():
            raise ValueError("card_number is empty")
        if not self.merchant_code.strip():
            raise ValueError("merchant_code is empty")
        if not self.qr_token:
            raise ValueError("qr_token is empty")
        try:
            # Apple's QR barcode declares iso-8859-1; a token outside it would be mangled.
            self.qr_token.encode("iso-8859-1")
        except UnicodeEncodeError:
            raise ValueError("qr_token must be ISO-8859-1 text") from None
        if len(self.authentication_token) < 16:
            raise ValueError("authentication_token must be at least 16 characters (Apple's rule)")
        if self.updated_at.tzinfo is None:
            raise ValueError("updated_at must carry a time zone")
        if self.stamp_count < 0 or self.points_balance < 0:
            raise ValueError("stamp_count and points_balance must be >= 0")
        if self.points_pending < 0 or self.next_expiry_points < 0:
            raise ValueError("points_pending and next_expiry_points must be >= 0")
        if self.points_to_next_tier is not None and self.points_to_next_tier < 0:
            raise ValueError("points_to_next_tier must be >= 0")
        if (self.next_tier_name or self.points_to_next_tier is not None) and not (
            self.tier_name and self.next_tier_name and self.points_to_next_tier is not None
        ):
            raise ValueError("next_tier_name and points_to_next_tier go together, with a tier_name")
        if self.program_type.stamps_enabled and self.stamps_target < 1:
            raise ValueError("stamps_target must be >= 1 in a stamps or hybrid program")

    @property
    def serial_number(self) -> str:
        """Apple's serial number: the card number, stable for the card's whole life."""
        return self.card_number

    @property
    def next_expiry(self) -> tuple[int, date] | None:
        """The next expiry to show, ``(points, last day)``, or None (none due, no points)."""
        if (
            not self.program_type.points_enabled
            or self.next_expiry_on is None
            or self.next_expiry_points <= 0
        ):
            return None
        return self.next_expiry_points, self.next_expiry_on

    @property
    def next_tier(self) -> tuple[int, str] | None:
        """What the next tier takes, ``(points still missing, its name)``, or None (no
        tiers, or the top tier)."""
        if not self.tier_name or self.points_to_next_tier is None:
            return None
        return self.points_to_next_tier, self.next_tier_name

    @property
    def stamps_text(self) -> str:
        """The stamps as Apple shows them, ``"3 / 10"``."""
        return f"{self.stamp_count} / {self.stamps_target}"


@dataclass(frozen=True, kw_only=True)
class PassProgram:
    """A program as Google Wallet's LoyaltyClass needs it (one class per merchant program).

    ``logo_url`` must be a public HTTPS URL: Google fetches the logo itself and rejects a
    class without one.
    """

    merchant_code: str
    issuer_name: str
    program_name: str
    logo_url: str
    background_color: str = "#1F2937"

    def __post_init__(self) -> None:
        object.__setattr__(self, "background_color", normalize_hex_color(self.background_color))
        if not self.merchant_code.strip():
            raise ValueError("merchant_code is empty")
        if not self.logo_url:
            raise ValueError("logo_url is required by Google Wallet")
