"""Numbers, money and times as an admin reads them.

Numbers and money follow the admin's language (Babel, from the browser's ``Accept-Language``:
``52,694,301`` and ``526,978.98 EUR`` in English, ``52 694 301`` and ``526 978,98 EUR`` in
French); times are on the merchant's clock, with the zone's abbreviation, never UTC unless the
merchant is in UTC. Every page formats through this module, so a figure reads the same
everywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.numbers import format_currency, format_decimal, format_percent

from admin_ui.i18n import accepted_languages

# The languages the panel formats for; anything else is shown as English.
LOCALES = ("en", "en_GB", "fr", "de", "lb", "nl", "it", "es", "pt")
DEFAULT_LOCALE = "en"
# Money as "1,234.56 EUR": the ISO code reads the same in every language and for every currency,
# where a symbol ("$") can mean several.
_MONEY_PATTERN = "#,##0.00\xa0¤¤"

_locale: ContextVar[str] = ContextVar("admin_locale", default=DEFAULT_LOCALE)


def negotiate(accept_language: str | None) -> str:
    """The best of :data:`LOCALES` for an ``Accept-Language`` header, else English."""
    preferred = [tag.replace("-", "_") for tag in accepted_languages(accept_language)]
    found = Locale.negotiate(preferred, LOCALES, sep="_") if preferred else None
    return str(found) if found is not None else DEFAULT_LOCALE


def current_locale() -> str:
    """The locale figures are formatted in now: the page's admin's, else English."""
    chosen = _locale.get()
    if chosen != DEFAULT_LOCALE:
        return chosen
    try:
        from nicegui import context

        request = context.client.request
    except (RuntimeError, AttributeError, LookupError):
        return DEFAULT_LOCALE
    if request is None:
        return DEFAULT_LOCALE
    return _negotiated(request.headers.get("accept-language"))


@lru_cache(maxsize=256)
def _negotiated(header: str | None) -> str:
    try:
        return negotiate(header)
    except (UnknownLocaleError, ValueError):
        return DEFAULT_LOCALE


@contextmanager
def using_locale(locale: str) -> Iterator[None]:
    """Format in ``locale`` within the block (tests, reports made outside a page)."""
    token = _locale.set(locale)
    try:
        yield
    finally:
        _locale.reset(token)


def number(
    value: int | float | Decimal | None, *, digits: int = 0, locale: str | None = None
) -> str:
    """A count or amount with the language's grouping: ``52694301`` -> ``52,694,301``;
    ``digits`` fixes the decimals shown; ``locale`` overrides the admin's (a customer's page
    speaks the customer's language). ``—`` for nothing."""
    if value is None:
        return "—"
    pattern = "#,##0" + ("." + "0" * digits if digits > 0 else "")
    return str(format_decimal(value, format=pattern, locale=locale or current_locale()))


def money(amount_cents: int | Decimal | None, currency: str = "EUR") -> str:
    """An amount of cents as money: ``52697898`` -> ``526,978.98 EUR``. ``—`` for nothing."""
    if amount_cents is None:
        return "—"
    value = Decimal(amount_cents) / 100
    return str(
        format_currency(
            value, currency, format=_MONEY_PATTERN, locale=current_locale(), currency_digits=False
        )
    )


def percent(ratio: float | Decimal | None, *, digits: int = 1) -> str:
    """A ratio as a percentage, the sign where the language puts it: ``0.4213`` -> ``42.1%``
    (``42,1 %`` in French). ``—`` for nothing."""
    if ratio is None:
        return "—"
    locale = current_locale()
    decimals = "." + "0" * digits if digits > 0 else ""
    return str(format_percent(ratio, format=_percent_pattern(locale, decimals), locale=locale))


@lru_cache(maxsize=64)
def _percent_pattern(locale: str, decimals: str) -> str:
    """The language's own percent pattern (``#,##0\xa0%``) with ``decimals`` fixed."""
    pattern = str(Locale.parse(locale).percent_formats[None].pattern)
    return (
        pattern.replace("#,##0", "#,##0" + decimals, 1)
        if "#,##0" in pattern
        else ("#,##0" + decimals + "%")
    )


def zone_of(zone: ZoneInfo | str | None) -> ZoneInfo:
    """A time zone from its name; UTC for none or an unknown name."""
    if isinstance(zone, ZoneInfo):
        return zone
    try:
        return ZoneInfo(zone or "UTC")
    except (ValueError, KeyError, OSError):
        return ZoneInfo("UTC")


def local_when(at: datetime | None, zone: ZoneInfo | str | None) -> str:
    """A time on the merchant's clock, to the minute, with its zone's abbreviation
    (``2027-01-01 00:00 CET``). ``—`` for nothing."""
    if at is None:
        return "—"
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(zone_of(zone)).strftime("%Y-%m-%d %H:%M %Z")


def local_day(at: datetime | date | None, zone: ZoneInfo | str | None) -> str:
    """The merchant's calendar day of a time (``2027-01-01``); a date as it is."""
    if at is None:
        return "—"
    if isinstance(at, datetime):
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        return at.astimezone(zone_of(zone)).date().isoformat()
    return at.isoformat()
