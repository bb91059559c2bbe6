"""Field types shared by the message models: the contract's rules for one value each.

Integers are strict: a till that sends ``"12"``, ``12.0``, ``1.5`` or ``true`` for an amount has a
bug, and guessing what it meant would credit points nobody earned, so the message is
dead-lettered instead. Timestamps must be RFC 3339 strings with an offset, because every rule is
judged at ``occurred_at`` and a naive or numeric time has no unambiguous instant.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, StringConstraints
from pydantic_core import PydanticCustomError

# PostgreSQL's bigint: a larger count fits JSON but not the ledger, so it is refused at the door
# rather than failing a whole database batch later.
INT64_MAX = 2**63 - 1

# RFC 3339 section 5.6 (``T`` or, as its note allows, a space; seconds required; offset required).
# pydantic alone would also take unix timestamps and date-only strings.
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})",
    re.ASCII,
)
PLAIN_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)",
    re.ASCII,
)
"""The RFC 3339 timestamps tills send (``T``, ``Z`` or an offset of at most 23:59, at most
microseconds), which ``datetime.fromisoformat`` reads as pydantic does; a subset of what
``Timestamp`` takes (``fromisoformat`` alone would take an offset of +12:99 as +13:39)."""
_CARD_NUMBER_SEPARATORS = str.maketrans("", "", "- ")
_CARD_NUMBER_CHARS = re.compile(r"[A-Z0-9]{12}", re.ASCII)
_CANONICAL_CARD_NUMBER = re.compile(r"[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}", re.ASCII)


def _rfc3339_text(value: Any) -> Any:
    # datetime objects come from Python callers (the engine's own outputs); they are checked for
    # an offset by AwareDatetime right after.
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _RFC3339.fullmatch(value):
        return value
    raise PydanticCustomError("rfc3339", "must be an RFC 3339 timestamp with an offset")


def normalise_card_number(value: str) -> str:
    """``abcd 1234-efgh5678`` -> ``ABCD-1234-EFGH-5678``-style dashed, upper-case 12 characters.

    Raises ``ValueError`` when what is left after dropping dashes and spaces is not 12 letters
    or digits.
    """
    if _CANONICAL_CARD_NUMBER.fullmatch(value):  # how tills send it, nearly always
        return value
    compact = value.translate(_CARD_NUMBER_SEPARATORS).upper()
    if not _CARD_NUMBER_CHARS.fullmatch(compact):
        raise ValueError("not a card number")
    return f"{compact[0:4]}-{compact[4:8]}-{compact[8:12]}"


def _card_number(value: str) -> str:
    try:
        return normalise_card_number(value)
    except ValueError:
        raise PydanticCustomError("card_number", "not a card number") from None


def is_email(value: str) -> bool:
    """Whether ``value`` (stripped, lower-cased) has the shape of an email address."""
    local, at, domain = value.partition("@")
    return (
        bool(at and local and domain) and "@" not in domain and not any(c.isspace() for c in value)
    )


def _email(value: str) -> str:
    if not is_email(value):
        raise PydanticCustomError("email", "not an email address")
    return value


Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_rfc3339_text),
    Field(description="RFC 3339 timestamp with an offset, e.g. 2025-03-01T10:15:00+01:00"),
]
"""An instant: RFC 3339 text with ``Z`` or ``+hh:mm``; naive and numeric times are refused."""

Code = Annotated[str, Field(min_length=1, max_length=255)]
"""A code or reference chosen by a merchant or a till (store, merchant, customer, reward)."""

ItemCode = Annotated[str, Field(min_length=1, max_length=64)]
"""A basket line's ``sku`` or ``category``, as the merchant's catalog names it."""

Text = Annotated[str, Field(max_length=1000)]
"""Free text that is only stored or displayed (names, audit references)."""

Count = Annotated[int, Field(strict=True, ge=0, le=INT64_MAX)]
"""A non-negative integer: a JSON integer, never a string, float or boolean."""

PositiveCount = Annotated[int, Field(strict=True, gt=0, le=INT64_MAX)]
"""A positive integer: a JSON integer, never a string, float or boolean."""

Delta = Annotated[int, Field(strict=True, ge=-INT64_MAX, le=INT64_MAX)]
"""A signed change of a balance."""

Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. EUR")]
"""An ISO 4217 currency code: three upper-case letters."""

CardNumber = Annotated[
    str,
    Field(
        max_length=64,
        description="XXXX-XXXX-XXXX; dashes and spaces are ignored, letters are upper-cased",
    ),
    AfterValidator(_card_number),
]
"""A card number as received; normalised to ``XXXX-XXXX-XXXX``, upper case."""

Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_lower=True, min_length=3, max_length=254),
    AfterValidator(_email),
    Field(description="email address, case-insensitive (stored lower-case)"),
]
"""An email address, compared case-insensitively, so it is lower-cased on the way in."""
