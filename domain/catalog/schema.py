"""The catalog's schema: what a merchant, a store, a program, a reward, a campaign, a tier and
a staff member may be.

One set of pydantic models for the provisioning file (CONTRACT.md sections 5, 7.1 and 7.4) and the
admin panel's forms, so both accept and refuse exactly the same values with the same sentences.
Values come out normalised: text trimmed, colours upper case, amounts as ``Decimal``, lists of
labels without repeats, weekdays in the week's order. What spans several fields (a campaign's
window, a campaign that changes nothing, tiers' thresholds) is ``domain.catalog.checks``'
business.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from core.enums import CampaignStatus, ExpiryPolicy
from domain.currencies import is_currency
from domain.models import ProgramType
from domain.staff_pins import PIN_PATTERN

INT32_MAX = 2**31 - 1
MAX_DAYS = 36_500
MAX_GRACE_DAYS = 3_650


def _code(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", value):
        raise PydanticCustomError(
            "code", "must be letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return value


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise PydanticCustomError(
            "timezone",
            "unknown time zone '{value}' (an IANA name like Europe/Luxembourg)",
            {"value": value},
        ) from None
    return value


def _currency(value: str) -> str:
    if not is_currency(value):
        raise PydanticCustomError(
            "currency", "unknown currency '{value}' (an ISO 4217 code like EUR)", {"value": value}
        )
    return value


def _color(value: str) -> str:
    if not re.fullmatch(r"#[0-9A-Fa-f]{6}", value):
        raise PydanticCustomError("color", "must be a colour like #1F2937")
    return value.upper()


def _url(value: str) -> str:
    if not re.fullmatch(r"https?://\S+", value):
        raise PydanticCustomError("url", "must be an http:// or https:// address")
    return value


def _pin_text(value: Any) -> Any:
    # YAML reads `pin: 0123` as the octal number 83, and `pin: 4821` as a number: demanding a
    # string avoids both surprises. The PIN itself is never echoed.
    if not isinstance(value, str) or not PIN_PATTERN.fullmatch(value):
        raise PydanticCustomError("pin", 'must be a quoted string of 4 to 8 digits, e.g. "4821"')
    return value


def _list_or_empty(value: Any) -> Any:
    # An optional list written `null` (or left empty in a form) means "none".
    return [] if value is None else value


def _without_repeats(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _campaign_code(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9-]+", value):
        raise PydanticCustomError("campaign_code", "must be lower-case letters, digits and '-'")
    return value


_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def _timestamp(value: Any) -> Any:
    # YAML reads an unquoted timestamp as a datetime (naive when it has no offset) and a bare
    # date as a date; JSON and forms send text. A time without an offset would be read in the
    # server's zone, so it is refused whatever its form.
    if isinstance(value, datetime) and value.utcoffset() is not None:
        return value
    if isinstance(value, str) and _RFC3339.fullmatch(value.strip()):
        try:
            return datetime.fromisoformat(value.strip().upper())
        except ValueError:
            pass  # 2026-02-30 and the like
    raise PydanticCustomError(
        "timestamp", "must be an RFC 3339 time with an offset, e.g. 2026-01-01T00:00:00+01:00"
    )


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[str, ...] = get_args(Weekday)


def _weekdays(values: list[str]) -> list[str]:
    seen: set[str] = set()
    for day in values:
        if day in seen:
            raise PydanticCustomError("weekdays", "duplicate day '{day}'", {"day": day})
        seen.add(day)
    return sorted(values, key=WEEKDAYS.index)


_HOURS = re.compile(r"(\d{2}):(\d{2})-(\d{2}):(\d{2})")


def _minutes(hours: str, minutes: str) -> int | None:
    h, m = int(hours), int(minutes)
    if m > 59 or h > 24 or (h == 24 and m):
        return None
    return h * 60 + m


def _hours(value: str) -> str:
    match = _HOURS.fullmatch(value)
    start = _minutes(*match.group(1, 2)) if match else None
    end = _minutes(*match.group(3, 4)) if match else None
    if start is None or end is None or start >= end:
        raise PydanticCustomError("hours", "must be HH:MM-HH:MM with the start before the end")
    return value


Code = Annotated[str, Field(strict=True, min_length=1, max_length=64), AfterValidator(_code)]
Name = Annotated[str, Field(strict=True, min_length=1, max_length=200)]
StaffName = Annotated[str, Field(strict=True, min_length=1, max_length=100)]
ShortText = Annotated[str, Field(strict=True, max_length=200)]
LongText = Annotated[str, Field(strict=True, max_length=2000)]
Url = Annotated[str, Field(strict=True, max_length=500), AfterValidator(_url)]
Color = Annotated[str, Field(strict=True), AfterValidator(_color)]
Count = Annotated[int, Field(strict=True, ge=0, le=INT32_MAX)]
Positive = Annotated[int, Field(strict=True, ge=1, le=INT32_MAX)]
# A number of days added to a time (pending points, reminders): a century at most, so the
# date it gives stays within the calendar.
Days = Annotated[int, Field(strict=True, ge=0, le=MAX_DAYS)]
Flag = Annotated[bool, Field(strict=True)]
TimeZone = Annotated[str, Field(strict=True, max_length=64), AfterValidator(_timezone)]
Currency = Annotated[str, Field(strict=True), AfterValidator(_currency)]
Pin = Annotated[str, BeforeValidator(_pin_text)]
PointValue = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=4)]
# A SKU or a category, as purchase lines carry them (CONTRACT.md 7.1).
Label = Annotated[str, Field(strict=True, min_length=1, max_length=64)]
Labels = Annotated[list[Label], BeforeValidator(_list_or_empty), AfterValidator(_without_repeats)]
CampaignCode = Annotated[
    str, Field(strict=True, min_length=1, max_length=64), AfterValidator(_campaign_code)
]
Timestamp = Annotated[datetime, BeforeValidator(_timestamp)]
Weekdays = Annotated[list[Weekday], BeforeValidator(_list_or_empty), AfterValidator(_weekdays)]
Hours = Annotated[str, Field(strict=True), AfterValidator(_hours)]
Multiplier = Annotated[Decimal, Field(gt=0, le=100, decimal_places=3)]
# A tier's id is written on cards and in their history, like a campaign's in its results.
TierCode = CampaignCode
TierName = Annotated[str, Field(strict=True, min_length=1, max_length=100)]
# What a tier multiplies a purchase's points by; the rules count in thousandths.
TierMultiplier = Annotated[Decimal, Field(gt=0, le=10, decimal_places=3)]
# ``domain.rules.tiers.TierWindow.ALL``.
TierWindowName = Literal["rolling_12_months", "calendar_year"]
GraceDays = Annotated[int, Field(strict=True, ge=0, le=MAX_GRACE_DAYS)]


class Spec(BaseModel):
    """The catalog's models: frozen, trimmed, and no unknown field."""

    # A typo in a field name must not be ignored: `stamp_target: 8` would silently keep 10.
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class RewardSpec(Spec):
    """An entry of a points program's catalog; ``id`` is its code within the program."""

    id: Code
    name: Name
    points_required: Positive
    description: LongText | None = None


class CampaignSpec(Spec):
    """An earning rule of a program (CONTRACT.md 7.1); ``id`` is its code within the program.

    ``status`` left out means: a new campaign of the file is ``active``, one made in the admin
    panel a ``draft``, and an existing one keeps its own. ``points_awarded`` is not here: it
    is the engine's counter, never written by the catalog.
    """

    id: CampaignCode
    name: Name
    status: CampaignStatus | None = None
    starts_at: Timestamp | None = None
    ends_at: Timestamp | None = None
    days: Weekdays = Field(default_factory=list)
    hours: Hours | None = None
    skus: Labels = Field(default_factory=list)
    categories: Labels = Field(default_factory=list)
    multiplier: Multiplier = Decimal(1)
    bonus_points: Count = 0
    min_basket_cents: Count = 0
    budget_points: Positive | None = None
    max_awards_per_card: Positive | None = None


class TierSpec(Spec):
    """A tier of a program (CONTRACT.md 7.4); ``id`` is its code within the program. That
    thresholds ascend from 0 and ids are unique is ``checks.tier_rules``' business."""

    id: TierCode
    name: TierName
    threshold_points: Count
    multiplier: TierMultiplier = Decimal(1)


class ProgramSpec(Spec):
    """A merchant's program; see ``LoyaltyProgram`` for what each field means."""

    type: ProgramType
    name: Name | None = None
    currency: Currency = "EUR"
    stamps_target: Positive = 10
    stamps_reward_description: ShortText | None = None
    stamps_reward_value_cents: Count = 0
    points_per_euro: Count = 0
    points_rewards: list[RewardSpec] | None = None
    points_expiration_days: Positive | None = None
    # CONTRACT.md 7.2 and 7.3; the defaults are v1's behaviour. A change applies to the points
    # earned afterwards: each lot keeps the expiry it was given (``expiry_rules`` spans them).
    pending_days: Days = 0
    expiry_policy: ExpiryPolicy = ExpiryPolicy.INACTIVITY
    expiry_reminder_days: Days = 30
    welcome_bonus_points: Count = 0
    minimum_redemption_points: Count = 0
    minimum_purchase_cents: Count = 0
    cooldown_minutes: Count = 0
    max_daily_stamps: Positive | None = None
    require_staff_pin: Flag = False
    pin_max_attempts: Positive = 5
    pin_lockout_minutes: Positive = 30
    point_value_cents: PointValue = Decimal(1)
    card_name: Name | None = None
    background_color: Color = "#1F2937"
    foreground_color: Color = "#FFFFFF"
    label_color: Color = "#D1D5DB"
    logo_url: Url | None = None
    hero_image_url: Url | None = None
    terms_url: Url | None = None
    privacy_url: Url | None = None
    apple_pass_type_id: ShortText | None = None
    google_class_id: ShortText | None = None
    is_active: Flag = True
    non_earning_categories: Labels = Field(default_factory=list)
    campaigns: list[CampaignSpec] | None = None
    # CONTRACT.md 7.4: no tiers (``[]``, or ``null``) is v1's behaviour. Unlike the rewards
    # catalog, the list is a setting of the program: the file states it whole when it has it.
    tiers: Annotated[list[TierSpec], BeforeValidator(_list_or_empty)] = Field(default_factory=list)
    tier_window: TierWindowName = "rolling_12_months"
    tier_grace_days: GraceDays = 0


class MerchantSettings(Spec):
    """A merchant's switches."""

    allow_self_enrollment: Flag = True
    allow_cross_location_redemption: Flag = True


class MerchantFields(Spec):
    """A merchant's own fields: its code, name, time zone and switches."""

    code: Code
    name: Name
    timezone: TimeZone = "Europe/Luxembourg"
    settings: MerchantSettings | None = None


class StoreSpec(Spec):
    """A store; its code is unique among all live stores, whatever the merchant."""

    code: Code
    name: Name


class StaffSpec(Spec):
    """A staff member's PIN at one of the merchant's stores; known by (store, name)."""

    store: Code
    name: StaffName
    pin: Pin
