"""Lists a form picks from: time zones and currencies, with names a person reads."""

from __future__ import annotations

from functools import cache
from zoneinfo import available_timezones

from babel.numbers import get_currency_name, list_currencies

# The currencies first offered; every ISO 4217 code Babel knows follows them.
COMMON_CURRENCIES = ("EUR", "USD", "GBP", "CHF", "SEK", "NOK", "DKK", "PLN", "CZK", "CAD", "AUD")


@cache
def time_zone_options() -> dict[str, str]:
    """Every IANA time zone (``Europe/Luxembourg``), sorted, each shown as its name with
    underscores as spaces; for a searchable select (value -> label)."""
    zones = sorted(z for z in available_timezones() if "/" in z and not z.startswith("Etc/"))
    return {zone: zone.replace("_", " ") for zone in ["UTC", *zones]}


@cache
def currency_options() -> dict[str, str]:
    """ISO 4217 codes with their English names (``EUR — Euro``), common ones first."""
    rest = sorted(set(list_currencies()) - set(COMMON_CURRENCIES))
    return {
        code: f"{code} — {get_currency_name(code, locale='en')}"
        for code in (*COMMON_CURRENCIES, *rest)
    }
