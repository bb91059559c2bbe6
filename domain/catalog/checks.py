"""The catalog's one validation: the schema plus the rules that span several fields.

``merchant_values``, ``store_values``, ``program_change`` and ``campaign_values`` read what an
admin form sends (or a provisioning file's program, through ``ProgramChange.of``) and return
validated, normalised values ready for ``domain.catalog.writes``; they raise ``InvalidFields``
otherwise. The ``check_*`` functions say the same as a list of ``FieldError``s, empty when all
is well.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, TypeGuard, TypeVar

from pydantic import BaseModel, ValidationError

from core.enums import CampaignStatus, ExpiryPolicy
from domain.catalog.errors import FieldError, InvalidFields, validation_errors
from domain.catalog.schema import CampaignSpec, MerchantFields, ProgramSpec, StoreSpec, TierSpec
from domain.models import ProgramType

M = TypeVar("M", bound=BaseModel)
R = TypeVar("R")

MERCHANT_SWITCHES = ("allow_self_enrollment", "allow_cross_location_redemption")


@dataclass(frozen=True)
class RewardLine:
    """One entry of a program's catalog as it is written."""

    code: str
    name: str
    points_required: int
    description: str | None = None
    is_active: bool = True


def campaign_columns(spec: CampaignSpec) -> dict[str, Any]:
    """A validated campaign as the columns of its row: ``id`` is the ``code``, and ``status``
    is there only when given (its default depends on who creates the campaign)."""
    values = spec.model_dump(exclude={"id", "status"})
    values["code"] = spec.id
    if spec.status is not None:
        values["status"] = spec.status
    return values


def tier_columns(tiers: Sequence[TierSpec]) -> list[dict[str, Any]]:
    """Validated tiers as ``loyalty_programs.tiers`` holds them: JSON objects ``{id, name,
    threshold_points, multiplier}``, the multiplier a JSON number (whole when it is)."""
    return [
        {
            "id": t.id,
            "name": t.name,
            "threshold_points": t.threshold_points,
            "multiplier": _json_number(t.multiplier),
        }
        for t in tiers
    ]


def _json_number(value: Decimal) -> int | float:
    # At most three decimal places (the schema's): a float holds them exactly enough to read
    # back the same thousandths.
    return int(value) if value == value.to_integral_value() else float(value)


@dataclass(frozen=True)
class ProgramChange:
    """A program's validated settings: ``values`` holds only the columns given; ``rewards`` is
    the whole catalog, or ``None`` to leave the catalog as it is; ``campaigns`` the campaigns
    to create or update by code (``campaign_columns``), or ``None``."""

    values: Mapping[str, Any]
    rewards: tuple[RewardLine, ...] | None = None
    campaigns: tuple[Mapping[str, Any], ...] | None = None

    @classmethod
    def of(cls, spec: ProgramSpec, active: Sequence[bool] | None = None) -> ProgramChange:
        """The change a validated spec states (every reward active unless ``active`` says)."""
        values = spec.model_dump(exclude_unset=True, exclude={"points_rewards", "campaigns"})
        values["type"] = spec.type
        if "tiers" in values:
            values["tiers"] = tier_columns(spec.tiers)
        rewards = None
        if spec.points_rewards is not None:
            flags = list(active) if active is not None else [True] * len(spec.points_rewards)
            rewards = tuple(
                RewardLine(r.id, r.name, r.points_required, r.description, flag)
                for r, flag in zip(spec.points_rewards, flags, strict=True)
            )
        campaigns = None
        if spec.campaigns is not None:
            campaigns = tuple(campaign_columns(c) for c in spec.campaigns)
        return cls(values, rewards, campaigns)


def reward_rules(
    program_type: object,
    rewards: Sequence[Mapping[str, Any]],
    *,
    at: str,
    style: Literal["file", "form"],
) -> list[FieldError]:
    """What is wrong with a catalog as a whole: an active reward in a stamps program, a code
    given twice. ``at`` is the catalog's path; in a file the key is ``id`` and the earlier
    entry is named by its path, in a form the field is labelled "Code" and the message stands
    under it."""
    errors: list[FieldError] = []
    if program_type == ProgramType.STAMPS and any(r.get("is_active", True) for r in rewards):
        errors.append(
            FieldError(at, "a stamps program has no points rewards (type points or hybrid)")
        )
    seen: dict[str, int] = {}
    for i, reward in enumerate(rewards):
        code = reward.get("id")
        if not isinstance(code, str):
            continue
        if code not in seen:
            seen[code] = i
        elif style == "file":
            message = f"duplicate reward id {code!r} (also {at}[{seen[code]}].id)"
            errors.append(FieldError(f"{at}[{i}].id", message))
        else:
            errors.append(FieldError(f"{at}[{i}].id", f"duplicate reward code {code!r}"))
    return errors


def _at(at: str, name: str) -> str:
    return f"{at}.{name}" if at else name


# The program's settings ``expiry_rules`` reads, and their values when a program has none yet
# (the columns' defaults: v1's behaviour).
EXPIRY_FIELDS: Mapping[str, Any] = {
    "expiry_policy": ExpiryPolicy.INACTIVITY,
    "points_expiration_days": None,
    "pending_days": 0,
}


def _whole(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def expiry_rules(values: Mapping[str, Any], *, at: str = "") -> list[FieldError]:
    """What is wrong with a program's pending and expiry settings together (CONTRACT.md 7.2,
    7.3): under the ``rolling`` policy, points pending as long as they live, or longer, would
    expire before they could be spent. ``values`` holds the program's whole settings (those
    of ``EXPIRY_FIELDS`` at least); ``at`` is the program's path ("" in a form)."""
    policy = values.get("expiry_policy")
    days = values.get("points_expiration_days")
    pending = values.get("pending_days")
    if policy == ExpiryPolicy.ROLLING and _whole(days) and _whole(pending) and 0 <= days <= pending:
        return [
            FieldError(
                _at(at, "pending_days"),
                f"must be < points_expiration_days ({days}) when expiry_policy is rolling: "
                "the points would expire before they could be spent",
            )
        ]
    return []


def campaign_field_rules(spec: CampaignSpec, *, at: str = "") -> list[FieldError]:
    """What is wrong with one campaign across its fields: a window that ends before it
    starts, a campaign that changes nothing. ``at`` is the campaign's path ("" in a form)."""
    errors: list[FieldError] = []
    if spec.starts_at is not None and spec.ends_at is not None and spec.ends_at <= spec.starts_at:
        errors.append(FieldError(_at(at, "ends_at"), "must be after starts_at"))
    if spec.multiplier == 1 and spec.bonus_points == 0:
        errors.append(
            FieldError(
                _at(at, "multiplier"),
                "the campaign changes nothing: give it a multiplier other than 1 "
                "or bonus points above 0",
            )
        )
    return errors


def campaign_rules(
    program_type: object, campaigns: Sequence[CampaignSpec], *, at: str
) -> list[FieldError]:
    """What is wrong with a program's campaigns as a file states them: each one's
    ``campaign_field_rules``, an id given twice, a campaign that would run in a stamps program
    (campaigns change points). ``at`` is the list's path."""
    errors: list[FieldError] = []
    # A campaign without a status is created active (and an existing one may be active).
    running = [c for c in campaigns if c.status in (None, CampaignStatus.ACTIVE)]
    if program_type == ProgramType.STAMPS and running:
        errors.append(
            FieldError(
                at, "a stamps program runs no campaigns (they change points: type points or hybrid)"
            )
        )
    seen: dict[str, int] = {}
    for k, campaign in enumerate(campaigns):
        errors += campaign_field_rules(campaign, at=f"{at}[{k}]")
        if campaign.id not in seen:
            seen[campaign.id] = k
        else:
            message = f"duplicate campaign id {campaign.id!r} (also {at}[{seen[campaign.id]}].id)"
            errors.append(FieldError(f"{at}[{k}].id", message))
    return errors


def tier_rules(
    tiers: Sequence[Mapping[str, Any]], *, at: str, style: Literal["file", "form"]
) -> list[FieldError]:
    """What is wrong with a program's tiers as a whole (CONTRACT.md 7.4): an id given twice,
    a first threshold other than 0, a threshold not above the previous tier's. ``at`` is the
    list's path; in a file a repeated id names the earlier entry by its path. Reads raw
    values too (a form's, refused elsewhere): what is not a whole number or a text is left to
    the schema."""
    errors: list[FieldError] = []
    seen: dict[str, int] = {}
    previous: int | None = None
    for i, tier in enumerate(tiers):
        code = tier.get("id")
        if isinstance(code, str) and code.strip():
            code = code.strip()
            if code not in seen:
                seen[code] = i
            elif style == "file":
                message = f"duplicate tier id {code!r} (also {at}[{seen[code]}].id)"
                errors.append(FieldError(f"{at}[{i}].id", message))
            else:
                errors.append(FieldError(f"{at}[{i}].id", f"duplicate tier id {code!r}"))
        threshold = tier.get("threshold_points")
        if not _whole(threshold):
            continue
        path = f"{at}[{i}].threshold_points"
        if i == 0 and threshold != 0:
            errors.append(FieldError(path, "the first tier starts at 0"))
        elif previous is not None and threshold <= previous:
            errors.append(FieldError(path, f"must be above the previous tier's ({previous})"))
        previous = threshold
    return errors


def _validated(model: type[M], data: Mapping[str, Any]) -> tuple[M | None, list[FieldError]]:
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        return None, validation_errors(exc)


def merchant_values(data: Mapping[str, Any]) -> dict[str, Any]:
    """A merchant's code, name, time zone and two switches, validated (flat, as a form sends
    them); ``InvalidFields`` names each bad one by its own name."""
    spec, errors = _validated(
        MerchantFields,
        {
            "code": data.get("code"),
            "name": data.get("name"),
            "timezone": data.get("timezone"),
            "settings": {key: data.get(key) for key in MERCHANT_SWITCHES},
        },
    )
    if spec is None:
        raise InvalidFields(
            [FieldError(e.path.removeprefix("settings."), e.message) for e in errors]
        )
    values = spec.model_dump(include={"code", "name", "timezone"})
    values.update(spec.settings.model_dump() if spec.settings else {})
    return values


def store_values(data: Mapping[str, Any]) -> dict[str, Any]:
    """A store's code and name, validated; ``InvalidFields`` otherwise."""
    spec, errors = _validated(StoreSpec, data)
    if spec is None:
        raise InvalidFields(errors)
    return spec.model_dump()


def program_change(data: Mapping[str, Any]) -> ProgramChange:
    """A program's settings and, under ``points_rewards``, its whole catalog as a form sends
    it (each reward with an ``is_active`` switch); ``InvalidFields`` names every problem."""
    rewards = data.get("points_rewards")
    spec_data = dict(data)
    if rewards is not None:
        # The catalog's on/off switch is the panel's, not the file's: a reward absent from a
        # provisioning file is deactivated instead.
        spec_data["points_rewards"] = [
            {k: v for k, v in r.items() if k != "is_active"} for r in rewards
        ]
    spec, errors = _validated(ProgramSpec, spec_data)
    errors += reward_rules(data.get("type"), rewards or [], at="points_rewards", style="form")
    # Judged on the raw values too when another field is refused, so a form shows every
    # problem at once (``expiry_rules`` reads only whole numbers and a known policy).
    expiry = (
        spec.model_dump(include=set(EXPIRY_FIELDS))
        if spec is not None
        else {key: data.get(key, default) for key, default in EXPIRY_FIELDS.items()}
    )
    refused = {e.path for e in errors}
    errors += [e for e in expiry_rules(expiry) if e.path not in refused]
    if spec is not None and spec.campaigns is not None:
        errors += campaign_rules(spec.type, spec.campaigns, at="campaigns")
    tiers = data.get("tiers")
    if isinstance(tiers, Sequence) and not isinstance(tiers, str):
        rows = [t for t in tiers if isinstance(t, Mapping)]
        if len(rows) == len(tiers):
            refused = {e.path for e in errors}
            errors += [
                e for e in tier_rules(rows, at="tiers", style="form") if e.path not in refused
            ]
    if spec is None or errors:
        raise InvalidFields(errors)
    active = [bool(r.get("is_active", True)) for r in rewards] if rewards is not None else None
    return ProgramChange.of(spec, active)


def campaign_values(data: Mapping[str, Any]) -> dict[str, Any]:
    """A campaign as a form sends it (``id``, ``name``, ..., as in the file), validated: the
    columns of its row (``campaign_columns``); ``InvalidFields`` names every problem."""
    spec, errors = _validated(CampaignSpec, data)
    if spec is not None:
        errors += campaign_field_rules(spec)
    if spec is None or errors:
        raise InvalidFields(errors)
    return campaign_columns(spec)


def problems(read: Callable[[Mapping[str, Any]], R], data: Mapping[str, Any]) -> list[FieldError]:
    """What ``read`` refuses in ``data``, by field (empty when it reads)."""
    try:
        read(data)
    except InvalidFields as exc:
        return list(exc.errors)
    return []


def check_merchant(data: Mapping[str, Any]) -> list[FieldError]:
    """What is wrong with a merchant's code, name, time zone and switches."""
    return problems(merchant_values, data)


def check_store(data: Mapping[str, Any]) -> list[FieldError]:
    """What is wrong with a store's code and name."""
    return problems(store_values, data)


def check_program(data: Mapping[str, Any]) -> list[FieldError]:
    """What is wrong with a program's settings and catalog, by field path."""
    return problems(program_change, data)


def check_campaign(data: Mapping[str, Any]) -> list[FieldError]:
    """What is wrong with a campaign's fields, by field name."""
    return problems(campaign_values, data)
