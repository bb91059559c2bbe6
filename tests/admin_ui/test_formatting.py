"""``admin_ui.formatting``: numbers, money and percentages in the admin's language (English,
French, German), the language chosen from the browser's ``Accept-Language``, and times on the
merchant's clock on both sides of a change of daylight saving time. Also the panel's plain words
for the trail's codes (``admin_ui.texts``). Nothing here needs the database."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from admin_ui import texts
from admin_ui.formatting import (
    current_locale,
    local_day,
    local_when,
    money,
    negotiate,
    number,
    percent,
    using_locale,
    zone_of,
)

NARROW = "\u202f"  # French groups thousands with a narrow no-break space
NBSP = "\u00a0"  # between an amount and its currency: never parted at a line's end


# --- numbers, money, percentages -------------------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "count", "amount", "share"),
    [
        ("en", "52,694,301", f"526,978.98{NBSP}EUR", "42.1%"),
        ("fr", f"52{NARROW}694{NARROW}301", f"526{NARROW}978,98{NBSP}EUR", f"42,1{NBSP}%"),
        ("de", "52.694.301", f"526.978,98{NBSP}EUR", f"42,1{NBSP}%"),
    ],
)
def test_figures_in_each_language(locale: str, count: str, amount: str, share: str) -> None:
    with using_locale(locale):
        assert current_locale() == locale
        assert number(52694301) == count
        assert money(52697898) == amount
        assert percent(0.4213) == share


def test_numbers() -> None:
    assert number(0) == "0"
    assert number(-1234) == "-1,234"
    assert number(1234.5) == "1,234"  # no decimals unless asked: half to even
    assert number(Decimal("1234.567"), digits=2) == "1,234.57"
    assert number(1.5, digits=1) == "1.5"
    assert number(None) == "—"
    with using_locale("fr"):
        assert number(Decimal("1234.5"), digits=2) == f"1{NARROW}234,50"
    with using_locale("de"):
        assert number(0.25, digits=2) == "0,25"


def test_money_from_cents() -> None:
    assert money(0) == f"0.00{NBSP}EUR"
    assert money(5) == f"0.05{NBSP}EUR"
    assert money(-12345) == f"-123.45{NBSP}EUR"
    assert money(Decimal("1234.5")) == f"12.34{NBSP}EUR"  # half a cent: to the even cent
    assert money(Decimal("1235.5")) == f"12.36{NBSP}EUR"
    assert money(199, "USD") == f"1.99{NBSP}USD"  # the code, never a "$" of several countries
    assert money(None) == "—"
    with using_locale("fr"):
        assert money(100000000, "CHF") == f"1{NARROW}000{NARROW}000,00{NBSP}CHF"
    with using_locale("de"):
        assert money(-5, "GBP") == f"-0,05{NBSP}GBP"


def test_percentages() -> None:
    assert percent(0) == "0.0%"
    assert percent(1) == "100.0%"
    assert percent(0.12346, digits=2) == "12.35%"
    assert percent(Decimal("0.5"), digits=0) == "50%"
    assert percent(12.5) == "1,250.0%"
    assert percent(None) == "—"
    with using_locale("fr"):
        assert percent(0.5, digits=0) == f"50{NBSP}%"
        assert percent(0.0751) == f"7,5{NBSP}%"


def test_the_locale_is_english_outside_a_page_and_nests() -> None:
    assert current_locale() == "en"
    with using_locale("fr"):
        with using_locale("de"):
            assert number(1000) == "1.000"
        assert number(1000) == f"1{NARROW}000"
    assert number(1000) == "1,000"


# --- the language of the browser -------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "locale"),
    [
        ("fr-FR,fr;q=0.9,en-US;q=0.8,en;q=0.7", "fr"),
        ("de-DE", "de"),
        ("de-CH,de;q=0.9", "de"),
        ("en-GB,en;q=0.9", "en_GB"),
        ("en-US,en;q=0.9", "en"),
        ("pt-BR;q=0.5, nl;q=0.7", "nl"),  # by quality, not by order
        ("ja,fr;q=0.5", "fr"),  # the first one the panel formats for
        ("ja-JP", "en"),  # none: English
        ("fr;q=0", "en"),  # "not French"
        ("fr;q=abc, de", "de"),  # a broken quality counts as not wanted
        ("*", "en"),
        ("", "en"),
        (None, "en"),
        (",,;;==", "en"),
    ],
)
def test_negotiate_reads_accept_language(header: str | None, locale: str) -> None:
    assert negotiate(header) == locale


# --- times on the merchant's clock -----------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "zone", "shown"),
    [
        # Luxembourg springs forward on 2026-03-29 at 01:00 UTC.
        (datetime(2026, 3, 29, 0, 30, tzinfo=UTC), "Europe/Luxembourg", "2026-03-29 01:30 CET"),
        (datetime(2026, 3, 29, 1, 30, tzinfo=UTC), "Europe/Luxembourg", "2026-03-29 03:30 CEST"),
        # ... and falls back on 2026-10-25 at 01:00 UTC: 02:30 comes twice.
        (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), "Europe/Luxembourg", "2026-10-25 02:30 CEST"),
        (datetime(2026, 10, 25, 1, 30, tzinfo=UTC), "Europe/Luxembourg", "2026-10-25 02:30 CET"),
        # New York springs forward on 2026-03-08 at 07:00 UTC, falls back on 2026-11-01 at 06:00.
        (datetime(2026, 3, 8, 6, 59, tzinfo=UTC), "America/New_York", "2026-03-08 01:59 EST"),
        (datetime(2026, 3, 8, 7, 0, tzinfo=UTC), "America/New_York", "2026-03-08 03:00 EDT"),
        (datetime(2026, 11, 1, 5, 30, tzinfo=UTC), "America/New_York", "2026-11-01 01:30 EDT"),
        (datetime(2026, 11, 1, 6, 30, tzinfo=UTC), "America/New_York", "2026-11-01 01:30 EST"),
        (datetime(2026, 7, 1, 12, 0, tzinfo=UTC), "UTC", "2026-07-01 12:00 UTC"),
    ],
)
def test_local_when_across_daylight_saving_time(at: datetime, zone: str, shown: str) -> None:
    assert local_when(at, zone) == shown
    assert local_when(at, zone_of(zone)) == shown  # a ZoneInfo as well as its name


def test_local_when_of_nothing_naive_times_and_unknown_zones() -> None:
    assert local_when(None, "Europe/Luxembourg") == "—"
    # A time without a zone is the database's: UTC.
    assert local_when(datetime(2026, 1, 15, 12, 0), "Europe/Luxembourg") == "2026-01-15 13:00 CET"
    noon = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    assert local_when(noon, "Mars/Olympus") == "2026-01-15 12:00 UTC"
    assert local_when(noon, None) == "2026-01-15 12:00 UTC"
    assert local_when(noon, "") == "2026-01-15 12:00 UTC"


def test_local_day_is_the_merchants_calendar_day() -> None:
    late = datetime(2026, 1, 1, 4, 0, tzinfo=UTC)  # still New Year's Eve in New York
    assert local_day(late, "America/New_York") == "2025-12-31"
    assert local_day(late, "Europe/Luxembourg") == "2026-01-01"
    assert local_day(datetime(2026, 6, 30, 22, 30), "Europe/Luxembourg") == "2026-07-01"
    assert local_day(date(2026, 2, 28), "America/New_York") == "2026-02-28"  # a day stays
    assert local_day(None, "UTC") == "—"


# --- plain words for the trail's codes (admin_ui.texts) --------------------------------------


def test_who_acted_in_words() -> None:
    assert texts.actor("alice", "panel") == "alice (panel)"
    assert texts.actor("cli:ops", "cli") == "ops (command line)"
    assert texts.actor("admin:alice", "system") == "alice (panel)"  # the ledger's naming
    assert texts.actor("cli:ops", "panel") == "ops (command line)"
    assert texts.actor("system", "system") == "the system"
    assert texts.actor("self", "system") == "the customer"


def test_field_names_and_codes_in_words() -> None:
    assert texts.field_name("points_per_euro") == "points per euro"
    assert texts.field_name("points_rewards[0].name") == "points rewards 1, name"
    assert texts.field_name("tiers[2]") == "tiers 3"
    assert texts.field_name("password_hash") == "password"
    assert texts.field_name("pin_hash") == "PIN"
    assert texts.field_name("min_basket_cents") == "minimum basket (cents)"
    assert texts.words("card.balance_changed") == "card balance changed"
    assert texts.entity("terminal_device") == "terminal"
    assert texts.entity("admin_user") == "admin user"
    assert texts.entity("something_new") == "something new"
    assert texts.audit_action("pin_reset") == "PIN reset"
    assert texts.audit_action("update") == "Changed"
    assert texts.audit_action("brand_new") == "Brand new"
    assert texts.webhook_event_type("tier.changed") == "A card moved to another tier"
    assert texts.webhook_event_type("order.shipped") == "order shipped"


def test_stored_values_in_words() -> None:
    tiers = [{"id": "gold", "name": "Gold", "threshold_points": 1000}]
    assert texts.value(tiers) == "id gold, name Gold, threshold points 1,000"
    assert texts.value([]) == "none"
    assert texts.value(True) == "yes"
    assert texts.value(12.5) == "12.5"
    assert texts.value(None) == "—"
    assert texts.value("[secret set]") == "[secret set]"
    with using_locale("fr"):
        assert texts.value(1234567) == f"1{NARROW}234{NARROW}567"
    assert texts.raw(tiers) == '[{"id": "gold", "name": "Gold", "threshold_points": 1000}]'


def test_a_chart_formats_with_the_languages_separators() -> None:
    # The JavaScript itself runs in Chromium in test_browser_formatting; here: its separators.
    with using_locale("fr"):
        french = texts.chart_number(2, f"{NBSP}EUR")
    # (JSON's escapes: the page's JavaScript reads "\u202f" as the character)
    assert '"\\u202f"' in french and '","' in french and '"\\u00a0EUR"' in french
    english = texts.chart_number()
    assert '","' in english and '"."' in english and "toFixed(0)" in english
