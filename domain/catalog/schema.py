"""The catalog's schema: what a merchant, a store, a program, a reward and a staff member may be.

One set of pydantic models for the provisioning file (CONTRACT.md section 5) and the admin
panel's forms, so both accept and refuse exactly the same values with the same sentences.
Values come out normalised: text trimmed, colours upper case, amounts as ``Decimal``.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from domain.currencies import is_currency
from domain.models import ProgramType
from domain.staff_pins import PIN_PATTERN

INT32_MAX = 2**31 - 1


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


Code = Annotated[str, Field(strict=True, min_length=1, max_length=64), AfterValidator(_code)]
Name = Annotated[str, Field(strict=True, min_length=1, max_length=200)]
StaffName = Annotated[str, Field(strict=True, min_length=1, max_length=100)]
ShortText = Annotated[str, Field(strict=True, max_length=200)]
LongText = Annotated[str, Field(strict=True, max_length=2000)]
Url = Annotated[str, Field(strict=True, max_length=500), AfterValidator(_url)]
Color = Annotated[str, Field(strict=True), AfterValidator(_color)]
Count = Annotated[int, Field(strict=True, ge=0, le=INT32_MAX)]
Positive = Annotated[int, Field(strict=True, ge=1, le=INT32_MAX)]
Flag = Annotated[bool, Field(strict=True)]
TimeZone = Annotated[str, Field(strict=True, max_length=64), AfterValidator(_timezone)]
Currency = Annotated[str, Field(strict=True), AfterValidator(_currency)]
Pin = Annotated[str, BeforeValidator(_pin_text)]
PointValue = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=4)]


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
