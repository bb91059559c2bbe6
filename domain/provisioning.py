"""The provisioning file (CONTRACT.md section 5): its schema, and applying it by code.

``load_file`` reads YAML or JSON and validates it; ``apply`` creates or updates merchants,
stores, programs, reward catalogs and staff PINs, by code, in the caller's transaction. Every
refusal is a ``ProvisioningError`` whose ``errors`` name the offending field by its path, e.g.
``merchants[0].program.stamps_target: must be >= 1``; the caller rolls back, so a file that
breaks the schema, or conflicts with the database, changes nothing.

Updating is a merge: a field absent from the file is left as it is (write ``null`` to clear an
optional one), a store or staff member absent from the file stays. The one exception is the
rewards catalog, which the file states whole when it has ``points_rewards``: rewards missing
from it are deactivated (never deleted: ledger entries name them). Applying the same file twice
changes nothing the second time; a PIN is re-hashed only when it no longer matches its hash.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from domain.currencies import is_currency
from domain.hashing import check_secret_async, hash_secret_async, pin_rounds
from domain.models import (
    LoyaltyProgram,
    Merchant,
    ProgramType,
    Reward,
    StaffPin,
    Store,
)
from domain.staff_pins import PIN_PATTERN

INT32_MAX = 2**31 - 1
# An arbitrary constant key of PostgreSQL's advisory locks: provisioning runs take turns.
_PROVISIONING_LOCK = 0x10_7A17_01

# --------------------------------------------------------------------------------------------
# Field types


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


class _Spec(BaseModel):
    # A typo in a field name must not be ignored: `stamp_target: 8` would silently keep 10.
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class RewardSpec(_Spec):
    """An entry of a points program's catalog; ``id`` is its code within the program."""

    id: Code
    name: Name
    points_required: Positive
    description: LongText | None = None


class ProgramSpec(_Spec):
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


class MerchantSettings(_Spec):
    """A merchant's switches."""

    allow_self_enrollment: Flag = True
    allow_cross_location_redemption: Flag = True


class StoreSpec(_Spec):
    """A store; its code is unique among all live stores, whatever the merchant."""

    code: Code
    name: Name


class StaffSpec(_Spec):
    """A staff member's PIN at one of the merchant's stores; known by (store, name)."""

    store: Code
    name: Annotated[str, Field(strict=True, min_length=1, max_length=100)]
    pin: Pin


class MerchantSpec(_Spec):
    """A merchant with its stores, program and staff."""

    code: Code
    name: Name
    timezone: TimeZone = "Europe/Luxembourg"
    settings: MerchantSettings | None = None
    stores: list[StoreSpec] = []
    program: ProgramSpec | None = None
    staff: list[StaffSpec] = []


class ProvisioningFile(_Spec):
    """The whole file."""

    merchants: list[MerchantSpec]


# --------------------------------------------------------------------------------------------
# Errors


@dataclass(frozen=True)
class FieldError:
    """One refusal: the field's path in the file and why."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ProvisioningError(Exception):
    """The file was refused; ``errors`` say where and why, one line each."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors = tuple(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


def field_path(loc: Sequence[int | str]) -> str:
    """``("merchants", 0, "program", "type")`` -> ``merchants[0].program.type``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "(file)"


def error_message(error: ErrorDetails) -> str:
    """A short sentence for one pydantic error, in the contract's style (``must be >= 1``)."""
    kind = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    simple = {
        "missing": "required",
        "extra_forbidden": "unknown field",
        "int_type": "must be an integer",
        "int_parsing": "must be an integer",
        "int_from_float": "must be an integer",
        "bool_type": "must be true or false",
        "bool_parsing": "must be true or false",
        "string_type": "must be a string (quote it)",
        "list_type": "must be a list",
        "model_type": "must be a mapping",
        "model_attributes_type": "must be a mapping",
        "dict_type": "must be a mapping",
        "decimal_type": "must be a number",
        "decimal_parsing": "must be a number",
        "finite_number": "must be a finite number",
    }
    if kind in simple:
        return simple[kind]
    bounds = {
        "greater_than_equal": ("ge", ">="),
        "greater_than": ("gt", ">"),
        "less_than_equal": ("le", "<="),
        "less_than": ("lt", "<"),
    }
    if kind in bounds:
        key, sign = bounds[kind]
        return f"must be {sign} {ctx[key]}"
    if kind == "string_too_short":
        n = ctx["min_length"]
        return "must not be empty" if n == 1 else f"must have at least {n} characters"
    if kind == "string_too_long":
        return f"must have at most {ctx['max_length']} characters"
    if kind in ("enum", "literal_error"):
        expected = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        return f"must be one of {expected} (got {error['input']!r})"
    if kind == "decimal_max_places":
        return f"must have at most {ctx['decimal_places']} decimal places"
    if kind in ("decimal_max_digits", "decimal_whole_digits"):
        return "is too large"
    message = error["msg"]
    return message[:1].lower() + message[1:]


def validation_errors(exc: ValidationError) -> list[FieldError]:
    """pydantic's errors as path-named ``FieldError``s, in the file's order."""
    return [FieldError(field_path(e["loc"]), error_message(e)) for e in exc.errors()]


# --------------------------------------------------------------------------------------------
# Reading


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys; a provisioning file with both is a mistake."""


def _mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def read_text(content: str, *, json_format: bool = False, source: str = "(file)") -> Any:
    """The data of a YAML (or JSON) text; ``ProvisioningError`` when it does not parse."""
    try:
        if json_format:
            return json.loads(content)
        return yaml.load(content, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise ProvisioningError(
            [FieldError(source, f"invalid JSON at {where}: {exc.msg}")]
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ProvisioningError([FieldError(source, f"invalid YAML{where}: {problem}")]) from None


def parse(data: Any) -> ProvisioningFile:
    """Validate the data of a file: schema, then what spans several fields (duplicates)."""
    try:
        spec = ProvisioningFile.model_validate(data)
    except ValidationError as exc:
        raise ProvisioningError(validation_errors(exc)) from None
    errors = _cross_checks(spec)
    if errors:
        raise ProvisioningError(errors)
    return spec


def load_file(path: Path) -> ProvisioningFile:
    """Read and validate a provisioning file (JSON when it ends in ``.json``, else YAML)."""
    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProvisioningError([FieldError(str(path), f"cannot be read: {exc}")]) from None
    return parse(read_text(content, json_format=path.suffix.lower() == ".json", source=str(path)))


def _cross_checks(spec: ProvisioningFile) -> list[FieldError]:
    errors: list[FieldError] = []
    merchant_codes: dict[str, str] = {}
    store_codes: dict[str, str] = {}
    for i, m in enumerate(spec.merchants):
        here = f"merchants[{i}]"
        _unique(errors, merchant_codes, m.code, f"{here}.code", "merchant code")
        for k, s in enumerate(m.stores):
            _unique(errors, store_codes, s.code, f"{here}.stores[{k}].code", "store code")
        if m.program is not None and m.program.points_rewards is not None:
            if m.program.type is ProgramType.STAMPS and m.program.points_rewards:
                errors.append(
                    FieldError(
                        f"{here}.program.points_rewards",
                        "a stamps program has no points rewards (type points or hybrid)",
                    )
                )
            reward_ids: dict[str, str] = {}
            for r, reward in enumerate(m.program.points_rewards):
                path = f"{here}.program.points_rewards[{r}].id"
                _unique(errors, reward_ids, reward.id, path, "reward id")
        staff_names: dict[str, str] = {}
        staff_pins: dict[str, str] = {}
        for n, staff in enumerate(m.staff):
            path = f"{here}.staff[{n}]"
            key = f"{staff.store}\x00{staff.name}"
            if key in staff_names:
                errors.append(
                    FieldError(
                        f"{path}.name",
                        f"duplicate staff member {staff.name!r} at store {staff.store} "
                        f"(also {staff_names[key]})",
                    )
                )
            else:
                staff_names[key] = f"{path}.name"
            pin_key = f"{staff.store}\x00{staff.pin}"
            if pin_key in staff_pins:
                errors.append(
                    FieldError(
                        f"{path}.pin",
                        f"same PIN as {staff_pins[pin_key]} at store {staff.store}: "
                        "two staff members of a store cannot share a PIN",
                    )
                )
            else:
                staff_pins[pin_key] = path
    return errors


def _unique(
    errors: list[FieldError], seen: dict[str, str], value: str, path: str, what: str
) -> None:
    if value in seen:
        errors.append(FieldError(path, f"duplicate {what} {value!r} (also {seen[value]})"))
    else:
        seen[value] = path


# --------------------------------------------------------------------------------------------
# Applying


@dataclass
class ProvisioningSummary:
    """What ``apply`` did, per kind of row: ``created``, ``updated``, ``unchanged`` (and
    ``deactivated`` for rewards)."""

    counts: dict[str, Counter[str]] = field(default_factory=dict)

    def count(self, kind: str, outcome: str) -> None:
        """Record one row's outcome."""
        self.counts.setdefault(kind, Counter())[outcome] += 1

    def get(self, kind: str, outcome: str) -> int:
        """How many rows of ``kind`` had ``outcome``."""
        return self.counts.get(kind, Counter())[outcome]

    @property
    def changed(self) -> bool:
        """Whether anything was created, updated or deactivated."""
        return any(
            c[o] for c in self.counts.values() for o in ("created", "updated", "deactivated")
        )

    def __str__(self) -> str:
        parts = []
        for kind in ("merchants", "stores", "programs", "rewards", "staff"):
            c = self.counts.get(kind, Counter())
            text = f"{kind} {c['created']} created, {c['updated']} updated"
            if kind == "rewards" and c["deactivated"]:
                text += f", {c['deactivated']} deactivated"
            parts.append(text + f", {c['unchanged']} unchanged")
        head = "provisioned" if self.changed else "nothing to change"
        return f"{head}: " + "; ".join(parts)


async def apply(
    session: AsyncSession,
    spec: ProvisioningFile,
    *,
    at: datetime | None = None,
    rounds: int | None = None,
) -> ProvisioningSummary:
    """Create or update everything the file describes, in the caller's transaction.

    Raises ``ProvisioningError`` (path-named, like a schema error) when the file conflicts with
    the database: a store code of another merchant, a staff member's unknown store, a PIN
    already used at the store, a time zone PostgreSQL does not know. The caller then rolls back.
    """
    when = at or datetime.now(UTC)
    await session.execute(select(func.pg_advisory_xact_lock(_PROVISIONING_LOCK)))
    merchants = {
        m.code: m
        for m in await session.scalars(
            select(Merchant).where(Merchant.code.in_([m.code for m in spec.merchants]))
        )
    }
    all_store_codes = [s.code for m in spec.merchants for s in m.stores]
    stores = {
        s.code: s
        for s in await session.scalars(select(Store).where(Store.code.in_(all_store_codes)))
    }
    errors = await _database_checks(session, spec, merchants, stores)
    if errors:
        raise ProvisioningError(errors)
    summary = ProvisioningSummary()
    for i, m_spec in enumerate(spec.merchants):
        merchant = await _merchant(session, m_spec, merchants.get(m_spec.code), summary)
        for s_spec in m_spec.stores:
            await _store(session, merchant, s_spec, stores.get(s_spec.code), summary)
        if m_spec.program is not None:
            await _program(session, merchant, m_spec.program, when, summary)
        await _staff(session, merchant, m_spec, f"merchants[{i}]", summary, rounds)
    return summary


async def _database_checks(
    session: AsyncSession,
    spec: ProvisioningFile,
    merchants: Mapping[str, Merchant],
    stores: Mapping[str, Store],
) -> list[FieldError]:
    errors: list[FieldError] = []
    # The ledger's statistics group entries by the merchant's local day in SQL: a zone Python
    # knows and PostgreSQL does not would make every ledger write of the merchant fail.
    zones = {m.timezone for m in spec.merchants}
    known = set(
        await session.scalars(
            select(text("name"))
            .select_from(text("pg_timezone_names"))
            .where(text("name = ANY(:zones)")),
            {"zones": list(zones)},
        )
    )
    for i, m_spec in enumerate(spec.merchants):
        here = f"merchants[{i}]"
        if m_spec.timezone not in known:
            errors.append(
                FieldError(
                    f"{here}.timezone", f"time zone {m_spec.timezone!r} unknown to PostgreSQL"
                )
            )
        existing = merchants.get(m_spec.code)
        for k, s_spec in enumerate(m_spec.stores):
            store = stores.get(s_spec.code)
            if store is not None and (existing is None or store.merchant_id != existing.id):
                owner = await session.scalar(
                    select(Merchant.code).where(Merchant.id == store.merchant_id)
                )
                errors.append(
                    FieldError(
                        f"{here}.stores[{k}].code",
                        f"store code {s_spec.code!r} already belongs to merchant {owner!r}",
                    )
                )
        if m_spec.staff:
            known_stores = {s.code for s in m_spec.stores}
            if existing is not None:
                known_stores |= set(
                    await session.scalars(
                        select(Store.code).where(Store.merchant_id == existing.id)
                    )
                )
            for n, staff in enumerate(m_spec.staff):
                if staff.store not in known_stores:
                    listed = ", ".join(sorted(known_stores)) or "none"
                    errors.append(
                        FieldError(
                            f"{here}.staff[{n}].store",
                            f"unknown store {staff.store!r} (stores of {m_spec.code}: {listed})",
                        )
                    )
    return errors


def _assign(row: Any, values: Mapping[str, Any]) -> bool:
    """Set the attributes that differ; whether any did (so an unchanged row is not written)."""
    changed = False
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    return changed


async def _merchant(
    session: AsyncSession,
    spec: MerchantSpec,
    merchant: Merchant | None,
    summary: ProvisioningSummary,
) -> Merchant:
    values: dict[str, Any] = {"name": spec.name}
    if "timezone" in spec.model_fields_set:
        values["timezone"] = spec.timezone
    if spec.settings is not None:
        values.update(spec.settings.model_dump(exclude_unset=True))
    if merchant is None:
        merchant = Merchant(code=spec.code, **values)
        session.add(merchant)
        await session.flush()
        summary.count("merchants", "created")
    elif _assign(merchant, values):
        summary.count("merchants", "updated")
    else:
        summary.count("merchants", "unchanged")
    return merchant


async def _store(
    session: AsyncSession,
    merchant: Merchant,
    spec: StoreSpec,
    store: Store | None,
    summary: ProvisioningSummary,
) -> None:
    if store is None:
        session.add(Store(merchant_id=merchant.id, code=spec.code, name=spec.name))
        await session.flush()
        summary.count("stores", "created")
    elif _assign(store, {"name": spec.name}):
        summary.count("stores", "updated")
    else:
        summary.count("stores", "unchanged")


async def _program(
    session: AsyncSession,
    merchant: Merchant,
    spec: ProgramSpec,
    when: datetime,
    summary: ProvisioningSummary,
) -> None:
    values = spec.model_dump(exclude_unset=True, exclude={"points_rewards"})
    values["type"] = spec.type
    program = await session.scalar(
        select(LoyaltyProgram).where(LoyaltyProgram.merchant_id == merchant.id)
    )
    if program is None:
        program = LoyaltyProgram(merchant_id=merchant.id, **values)
        if program.is_active is not False:
            program.activated_at = when
        session.add(program)
        await session.flush()
        summary.count("programs", "created")
    else:
        was_active = program.is_active
        if _assign(program, values):
            if program.is_active and not was_active:
                program.activated_at = when
            summary.count("programs", "updated")
        else:
            summary.count("programs", "unchanged")
    if spec.points_rewards is not None:
        await _rewards(session, program, spec.points_rewards, summary)


async def _rewards(
    session: AsyncSession,
    program: LoyaltyProgram,
    specs: Sequence[RewardSpec],
    summary: ProvisioningSummary,
) -> None:
    existing = {
        r.code: r
        for r in await session.scalars(select(Reward).where(Reward.program_id == program.id))
    }
    for spec in specs:
        values = {
            "name": spec.name,
            "points_required": spec.points_required,
            "description": spec.description,
            "is_active": True,
        }
        reward = existing.pop(spec.id, None)
        if reward is None:
            session.add(Reward(program_id=program.id, code=spec.id, **values))
            summary.count("rewards", "created")
        elif _assign(reward, values):
            summary.count("rewards", "updated")
        else:
            summary.count("rewards", "unchanged")
    for reward in existing.values():
        if reward.is_active:
            reward.is_active = False
            summary.count("rewards", "deactivated")
    await session.flush()


async def _staff(
    session: AsyncSession,
    merchant: Merchant,
    spec: MerchantSpec,
    here: str,
    summary: ProvisioningSummary,
    rounds: int | None,
) -> None:
    if not spec.staff:
        return
    store_ids = {
        s.code: s.id
        for s in await session.scalars(select(Store).where(Store.merchant_id == merchant.id))
    }
    active = list(
        await session.scalars(
            select(StaffPin)
            .where(StaffPin.store_id.in_(store_ids.values()), StaffPin.is_active.is_(True))
            .order_by(StaffPin.id)
        )
    )
    in_file = {(store_ids[s.store], s.name) for s in spec.staff}
    errors: list[FieldError] = []
    for n, staff_spec in enumerate(spec.staff):
        store_id = store_ids[staff_spec.store]
        # The file's own staff were compared in plain text by parse(); the store's other PINs
        # (given in the admin panel) can only be compared through their hashes.
        for other in active:
            if other.store_id != store_id or (other.store_id, other.name) in in_file:
                continue
            if await check_secret_async(staff_spec.pin, other.pin_hash):
                errors.append(
                    FieldError(
                        f"{here}.staff[{n}].pin",
                        f"staff member {other.name!r} of store {staff_spec.store} already "
                        "has this PIN: two staff members of a store cannot share a PIN",
                    )
                )
    if errors:
        raise ProvisioningError(errors)
    by_key = {(p.store_id, p.name): p for p in active}
    for staff_spec in spec.staff:
        store_id = store_ids[staff_spec.store]
        current = by_key.get((store_id, staff_spec.name))
        if current is None:
            session.add(
                StaffPin(
                    store_id=store_id,
                    name=staff_spec.name,
                    pin_hash=await hash_secret_async(staff_spec.pin, rounds=pin_rounds(rounds)),
                    is_active=True,
                )
            )
            summary.count("staff", "created")
        elif await check_secret_async(staff_spec.pin, current.pin_hash):
            summary.count("staff", "unchanged")
        else:
            current.pin_hash = await hash_secret_async(staff_spec.pin, rounds=pin_rounds(rounds))
            summary.count("staff", "updated")
    await session.flush()
