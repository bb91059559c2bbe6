"""The words and formats of the campaign pages, and the form's texts read back as values.

A merchant thinks in their own clock: a campaign's window is typed and shown in the
merchant's time zone ("2026-03-03 14:00"), never in UTC, and hours and weekdays are theirs
already (CONTRACT.md 7.1). Skus and categories are typed as comma-separated lists, amounts in
the currency (``12.50``), kept in cents. Figures are written in the admin's language
(``admin_ui.formatting``). Nothing here knows NiceGUI or the database, so it is tested on its
own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from admin_ui.formatting import money, number

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = {day: day.capitalize() for day in WEEKDAYS}

# (word, Quasar colour) of each status.
STATUSES: dict[str, tuple[str, str]] = {
    "draft": ("Draft", "grey-7"),
    "active": ("Active", "positive"),
    "paused": ("Paused", "orange-8"),
    "ended": ("Ended", "blue-grey-8"),
}

LOCAL_FORMAT = "%Y-%m-%d %H:%M"
LOCAL_HINT = "a date and time like 2026-03-31 14:00"
_LOCAL = re.compile(r"\s*(\d{4}-\d{2}-\d{2})(?:[ T](\d{1,2}:\d{2}))?\s*")
_CLOCK = re.compile(r"\s*(\d{1,2}):(\d{2})\s*")
# The longest trial the panel runs at once: a year of a busy merchant stays under a minute.
MAX_TRIAL_DAYS = 366


def status_word(status: str) -> str:
    """A status as the badge says it."""
    return STATUSES.get(status, (status.capitalize(), "grey"))[0]


def status_color(status: str) -> str:
    """The badge's colour of a status."""
    return STATUSES.get(status, ("", "grey"))[1]


def points(n: int | None) -> str:
    """``7450`` -> ``7,450`` (``7 450`` in French)."""
    return number(n)


def multiplier(value: Decimal | float | int) -> str:
    """``Decimal("2.000")`` -> ``×2``; ``1.5`` -> ``×1.5`` (``×1,5`` in French)."""
    exact = Decimal(str(value)).normalize()
    exponent = exact.as_tuple().exponent
    digits = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    return f"×{number(exact, digits=digits)}"


def budget(awarded: int, limit: int | None) -> str:
    """The budget's used part: ``7,450 / 10,000 points``, or what was awarded without one."""
    if limit is None:
        return f"{points(awarded)} points · no budget"
    return f"{points(awarded)} / {points(limit)} points"


def budget_used(awarded: int, limit: int | None) -> float | None:
    """The used part of the budget between 0 and 1, ``None`` without a budget."""
    if limit is None or limit <= 0:
        return None
    return max(0.0, min(1.0, awarded / limit))


def per_card(limit: int | None) -> str:
    """How many purchases of one card the campaign rewards."""
    if limit is None:
        return "no limit"
    return "1 purchase" if limit == 1 else f"{number(limit)} purchases"


def local(at: datetime | None, zone: str) -> str:
    """A time on the merchant's clock, to the minute (``—`` for none)."""
    if at is None:
        return "—"
    return at.astimezone(ZoneInfo(zone)).strftime(LOCAL_FORMAT)


def local_text(at: object, zone: str) -> str:
    """A time as its input holds it on the merchant's clock (blank for none)."""
    return local(at, zone) if isinstance(at, datetime) else ""


def read_local(text: str | None, zone: str) -> datetime | None:
    """A date and time typed on the merchant's clock (``2026-03-31 14:00``; a date alone is
    its midnight), as an aware time; ``None`` when blank. ``ValueError`` says what to type."""
    if text is None or not text.strip():
        return None
    match = _LOCAL.fullmatch(text)
    if match is None:
        raise ValueError(f"must be {LOCAL_HINT}")
    try:
        day = date.fromisoformat(match.group(1))
        clock = _clock(match.group(2)) if match.group(2) else time(0, 0)
    except ValueError:
        raise ValueError(f"must be {LOCAL_HINT}") from None
    return datetime.combine(day, clock, tzinfo=ZoneInfo(zone))


def _clock(text: str) -> time:
    match = _CLOCK.fullmatch(text)
    if match is None:
        raise ValueError("not a time")
    return time(int(match.group(1)), int(match.group(2)))


def labels(text: str | None) -> list[str]:
    """A comma-separated list as typed (``"pastry, bread,"``) -> ``["pastry", "bread"]``."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def labels_text(values: Iterable[str] | None) -> str:
    """A list as its input shows it: ``pastry, bread``."""
    return ", ".join(values or ())


def split_hours(hours: str | None) -> tuple[str, str]:
    """``"14:00-17:00"`` -> the "from" and "until" inputs' texts (both blank for all day)."""
    if not hours or "-" not in hours:
        return "", ""
    start, end = hours.split("-", 1)
    return start, end


def join_hours(start: str | None, end: str | None) -> tuple[str | None, str | None]:
    """The two time inputs as the campaign's ``hours`` and, when they do not make one, why
    (the second value). An "until" of 00:00 is the end of the day (24:00)."""
    start, end = (start or "").strip(), (end or "").strip()
    if not start and not end:
        return None, None
    if not start or not end:
        return None, "give both times, or neither for all day"
    if not _CLOCK.fullmatch(start) or not _CLOCK.fullmatch(end):
        return None, "must be times like 14:00"
    begin, until = _hhmm(start), _hhmm(end)
    if until == "00:00":
        until = "24:00"
    return f"{begin}-{until}", None


def _hhmm(text: str) -> str:
    hours, minutes = text.split(":")
    return f"{int(hours):02d}:{minutes}"


def days_text(days: Sequence[str]) -> str:
    """The weekdays a campaign runs on, in words."""
    if not days or len(days) == len(WEEKDAYS):
        return "every day"
    ordered = sorted(days, key=lambda d: WEEKDAYS.index(d) if d in WEEKDAYS else 7)
    return ", ".join(DAY_NAMES.get(d, d) for d in ordered)


def when(campaign: Mapping[str, object], zone: str) -> str:
    """When a campaign applies: its window, weekdays and hours on the merchant's clock."""
    starts, ends = campaign.get("starts_at"), campaign.get("ends_at")
    parts = []
    if isinstance(starts, datetime) and isinstance(ends, datetime):
        parts.append(f"{local(starts, zone)} → {local(ends, zone)}")
    elif isinstance(starts, datetime):
        parts.append(f"from {local(starts, zone)}")
    elif isinstance(ends, datetime):
        parts.append(f"until {local(ends, zone)}")
    else:
        parts.append("no end date")
    days = campaign.get("days")
    parts.append(days_text(list(days) if isinstance(days, (list, tuple)) else []))
    hours = campaign.get("hours")
    parts.append(str(hours).replace("-", "–") if hours else "all day")
    return " · ".join(parts)


def applies_to(skus: Sequence[str], categories: Sequence[str]) -> str:
    """Which lines a campaign applies to, in words."""
    parts = []
    if categories:
        parts.append(", ".join(categories))
    if skus:
        parts.append(("SKU " if len(skus) == 1 else "SKUs ") + ", ".join(skus))
    return " and ".join(parts) if parts else "every earning line"


def on_what(
    skus: Sequence[str], categories: Sequence[str], min_basket: object, currency: str
) -> str:
    """Which purchases a campaign rewards: its lines and the least basket, in the currency
    (``pastry · baskets of 12.50 EUR or more``)."""
    lines = applies_to(skus, categories)
    if isinstance(min_basket, int) and not isinstance(min_basket, bool) and min_basket > 0:
        return f"{lines} · baskets of {money(min_basket, currency)} or more"
    return lines


def gives(multiplier_value: Decimal, bonus_points: int) -> str:
    """What a matching purchase gets: ``×2 · +50 points``."""
    parts = []
    if Decimal(multiplier_value) != 1:
        parts.append(multiplier(multiplier_value))
    if bonus_points:
        parts.append(f"+{points(bonus_points)} points")
    return " · ".join(parts) or "nothing"


def amount_text(cents: object) -> float | None:
    """Cents as the amount an input shows (``1250`` -> ``12.5``); ``None`` for none or 0."""
    if not isinstance(cents, int) or isinstance(cents, bool) or cents == 0:
        return None
    return cents / 100


def read_amount(value: object) -> int | None:
    """An amount typed in the currency (``12.5``) as cents (``1250``); ``None`` when blank.
    ``ValueError`` says what to type (a negative amount or a fraction of a cent)."""
    if value is None or value == "":
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError("must be an amount like 12.50") from None
    cents = amount * 100
    if not amount.is_finite() or amount < 0 or cents != cents.to_integral_value():
        raise ValueError("must be an amount like 12.50, in whole cents")
    return int(cents)


# --- the trial's period ---------------------------------------------------------------------


def default_period(today: date) -> tuple[str, str]:
    """The trial's period when the dialog opens: the last 30 days, today included."""
    return (today - timedelta(days=29)).isoformat(), today.isoformat()


def read_period(first: str | None, last: str | None, zone: str) -> tuple[datetime, datetime]:
    """The days typed (first and last, both included) as the trial's [start, end) on the
    merchant's clock. ``ValueError`` says what is wrong."""
    try:
        begin = date.fromisoformat((first or "").strip())
        finish = date.fromisoformat((last or "").strip())
    except ValueError:
        raise ValueError("give the first and the last day as dates like 2026-03-31") from None
    if finish < begin:
        raise ValueError("the last day is before the first")
    if (finish - begin).days + 1 > MAX_TRIAL_DAYS:
        raise ValueError(f"a trial covers {MAX_TRIAL_DAYS} days at most")
    tz = ZoneInfo(zone)
    start = datetime.combine(begin, time(0, 0), tzinfo=tz)
    end = datetime.combine(finish + timedelta(days=1), time(0, 0), tzinfo=tz)
    return start, end


def every_day(
    per_day: Mapping[date, Sequence[int]], first: date, last: date
) -> tuple[list[str], list[int], list[int]]:
    """The chart's days from ``first`` to ``last`` and the points without and with the
    campaign on each; a day without purchases counts 0 (the trial lists only days it saw)."""
    days, without, with_ = [], [], []
    day = first
    while day <= last:
        figures = per_day.get(day, (0, 0))
        days.append(day.isoformat())
        without.append(int(figures[0]))
        with_.append(int(figures[1]))
        day += timedelta(days=1)
    return days, without, with_
