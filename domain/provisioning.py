"""The provisioning file (CONTRACT.md section 5): its schema, and applying it by code.

``load_file`` reads YAML or JSON and validates it; ``apply`` creates or updates merchants,
stores, programs, reward catalogs, campaigns (section 7.1) and staff PINs, by code, in the
caller's transaction. The schema and the writes are the catalog service's (``domain.catalog``),
the very ones the admin panel's forms use; this module adds the file around them: its reading,
the checks spanning several merchants, and what to create or update, in one run at a time.
Every refusal is a ``ProvisioningError`` whose ``errors`` name the offending field by its
path, e.g. ``merchants[0].program.stamps_target: must be >= 1``; the caller rolls back, so a
file that breaks the schema, or conflicts with the database, changes nothing.

Updating is a merge: a field absent from the file is left as it is (write ``null`` to clear an
optional one), a store or staff member absent from the file stays. The one exception is the
rewards catalog, which the file states whole when it has ``points_rewards``: rewards missing
from it are deactivated (never deleted: ledger entries name them). Applying the same file twice
changes nothing the second time; a PIN is re-hashed only when it no longer matches its hash.

Campaigns (``program.campaigns``) are created or updated by (program, id); each one the file
names is stated whole (a field it leaves out takes its default) except its ``status``: a new
campaign is ``active`` unless the file says otherwise, an existing one keeps the status the
admin panel may have given it (pause, end) unless the file names one. Campaigns the file does
not name are left alone, neither ended nor deleted; a deleted campaign's id may be used again.
``points_awarded`` is the engine's counter and never written here, and a ``budget_points``
under it is refused by path, like a schema error.

A program's ``pending_days``, ``expiry_policy`` and ``expiry_reminder_days`` (CONTRACT.md 7.2,
7.3) default to v1's behaviour; a file that changes them alone is judged with the settings the
program keeps (``pending_days`` under ``rolling`` must stay below ``points_expiration_days``).
A change applies to the points earned afterwards: points already earned keep their expiry.

A program's ``tiers`` (CONTRACT.md 7.4), when the file has them, are stated whole like any
other setting (``[]`` or ``null``: no tiers, v1's behaviour); ``tier_window`` and
``tier_grace_days`` are merged like the other fields. Ids are unique in the program,
thresholds ascend strictly from 0 (``merchants[0].program.tiers[0].threshold_points: the
first tier starts at 0``), multipliers are above 0 and at most 10.

A merchant's ``webhooks`` (issue 16: ``url``, ``events``, optional ``secret``,
``description`` and ``active``) are found again by URL within the merchant (as normalised:
``HTTPS://Shop.example:443/x`` is ``https://shop.example/x``), created or updated; ``events``
is stated whole. A ``secret``
in the file replaces the stored one; without one an existing endpoint keeps its secret and a
new one gets a generated secret (shown in the admin panel, never printed). ``description``
and ``active`` left out keep what the endpoint has. Endpoints the file does not name are left
alone, neither deactivated nor deleted. URLs must be https and reach public addresses unless
``LOYALTY_WEBHOOK_ALLOW_PRIVATE`` is set (``domain.webhooks.check_url``); a refusal names the
field (``merchants[0].webhooks[1].url: ...``, ``merchants[0].webhooks[1].events[0]: unknown
type ...``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, Field, ValidationError
from pydantic_core import PydanticCustomError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.settings import get_settings
from domain import catalog, webhooks
from domain.catalog import (
    CatalogRefusal,
    FieldError,
    InvalidFields,
    ProgramChange,
    validation_errors,
)
from domain.catalog.schema import (
    CampaignSpec,
    Flag,
    MerchantFields,
    MerchantSettings,
    ProgramSpec,
    RewardSpec,
    Spec,
    StaffSpec,
    StoreSpec,
    TierSpec,
)
from domain.models import Merchant, StaffPin, Store, WebhookEndpoint
from domain.rules.webhooks import WEBHOOK_EVENT_TYPES, ordered_event_types
from domain.webhooks import EndpointSpec, WebhookError, check_url
from domain.webhooks.specs import MAX_DESCRIPTION_LENGTH, MAX_SECRET_LENGTH, MIN_SECRET_LENGTH
from domain.webhooks.urls import MAX_URL_LENGTH, parse_url

__all__ = [
    "CampaignSpec",
    "FieldError",
    "MerchantSettings",
    "MerchantSpec",
    "ProgramSpec",
    "ProvisioningError",
    "ProvisioningFile",
    "ProvisioningSummary",
    "RewardSpec",
    "StaffSpec",
    "StoreSpec",
    "TierSpec",
    "WebhookSpec",
    "apply",
    "load_file",
    "parse",
    "read_text",
]

# An arbitrary constant key of PostgreSQL's advisory locks: provisioning runs take turns.
_PROVISIONING_LOCK = 0x10_7A17_01

# --------------------------------------------------------------------------------------------
# The file: the catalog's schema (``domain.catalog.schema``), one merchant with all it holds


def _webhook_type(value: str) -> str:
    if value not in WEBHOOK_EVENT_TYPES:
        raise PydanticCustomError(
            "webhook_type",
            "unknown type '{value}' (one of {types})",
            {"value": value, "types": ", ".join(WEBHOOK_EVENT_TYPES)},
        )
    return value


def _some_types(values: list[str]) -> list[str]:
    if not values:
        raise PydanticCustomError("webhook_types", "choose at least one type")
    return list(ordered_event_types(values))


WebhookType = Annotated[str, Field(strict=True), AfterValidator(_webhook_type)]


class WebhookSpec(Spec):
    """A merchant's webhook endpoint (``domain.webhooks``), found again by its URL."""

    url: Annotated[str, Field(strict=True, min_length=1, max_length=MAX_URL_LENGTH)]
    events: Annotated[list[WebhookType], AfterValidator(_some_types)]
    secret: (
        Annotated[
            str, Field(strict=True, min_length=MIN_SECRET_LENGTH, max_length=MAX_SECRET_LENGTH)
        ]
        | None
    ) = None
    description: Annotated[str, Field(strict=True, max_length=MAX_DESCRIPTION_LENGTH)] | None = None
    active: Flag = True


class MerchantSpec(MerchantFields):
    """A merchant with its stores, program, staff and webhook endpoints."""

    stores: list[StoreSpec] = Field(default_factory=list)
    program: ProgramSpec | None = None
    staff: list[StaffSpec] = Field(default_factory=list)
    webhooks: list[WebhookSpec] = Field(default_factory=list)


class ProvisioningFile(Spec):
    """The whole file."""

    merchants: list[MerchantSpec]


# --------------------------------------------------------------------------------------------
# Errors


class ProvisioningError(Exception):
    """The file was refused; ``errors`` say where and why, one line each."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors = tuple(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


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
            errors += catalog.reward_rules(
                m.program.type,
                [r.model_dump() for r in m.program.points_rewards],
                at=f"{here}.program.points_rewards",
                style="file",
            )
        if m.program is not None:
            errors += catalog.expiry_rules(
                m.program.model_dump(include=set(catalog.EXPIRY_FIELDS)), at=f"{here}.program"
            )
        if m.program is not None and m.program.campaigns is not None:
            errors += catalog.campaign_rules(
                m.program.type, m.program.campaigns, at=f"{here}.program.campaigns"
            )
        if m.program is not None:
            errors += catalog.tier_rules(
                [t.model_dump() for t in m.program.tiers],
                at=f"{here}.program.tiers",
                style="file",
            )
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
        errors += _webhook_checks(m.webhooks, here)
    return errors


def _webhook_checks(specs: Sequence[WebhookSpec], here: str) -> list[FieldError]:
    """Each URL as the engine may call it (``check_url``), each once in the merchant."""
    errors: list[FieldError] = []
    allow_private = get_settings().webhook_allow_private
    urls: dict[str, str] = {}
    for k, webhook in enumerate(specs):
        path = f"{here}.webhooks[{k}].url"
        try:
            url = check_url(webhook.url, allow_private=allow_private)
        except WebhookError as exc:
            errors.append(FieldError(path, exc.message))
            continue
        if url in urls:
            errors.append(FieldError(path, f"duplicate webhook URL {url!r} (also {urls[url]})"))
        else:
            urls[url] = path
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

    def count(self, kind: str, outcome: str, n: int = 1) -> None:
        """Record ``n`` rows' outcome."""
        self.counts.setdefault(kind, Counter())[outcome] += n

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
        kinds = ("merchants", "stores", "programs", "rewards", "campaigns", "staff", "webhooks")
        for kind in kinds:
            if kind == "webhooks" and kind not in self.counts:
                continue  # files without webhooks read as they always did
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
        here = f"merchants[{i}]"
        try:
            merchant = await _merchant(session, m_spec, merchants.get(m_spec.code), summary)
            for s_spec in m_spec.stores:
                await _store(session, merchant, s_spec, stores.get(s_spec.code), summary)
            if m_spec.program is not None:
                await _program(session, merchant, m_spec.program, when, summary, here)
        except CatalogRefusal as exc:
            # Only a concurrent change gets here: the checks above saw the same conflicts.
            raise ProvisioningError([FieldError(here, str(exc))]) from None
        await _staff(session, merchant, m_spec, here, summary, rounds)
        await _webhooks(session, merchant, m_spec, here, summary)
    return summary


async def _database_checks(
    session: AsyncSession,
    spec: ProvisioningFile,
    merchants: Mapping[str, Merchant],
    stores: Mapping[str, Store],
) -> list[FieldError]:
    errors: list[FieldError] = []
    unknown = await catalog.unknown_zones(session, {m.timezone for m in spec.merchants})
    for i, m_spec in enumerate(spec.merchants):
        here = f"merchants[{i}]"
        if m_spec.timezone in unknown:
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
        merchant = await catalog.create_merchant(session, {"code": spec.code, **values})
        summary.count("merchants", "created")
    elif await catalog.update_merchant(session, merchant, values):
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
        await catalog.create_store(session, merchant.id, spec.code, spec.name)
        summary.count("stores", "created")
    elif await catalog.update_store(session, store, {"name": spec.name}):
        summary.count("stores", "updated")
    else:
        summary.count("stores", "unchanged")


async def _program(
    session: AsyncSession,
    merchant: Merchant,
    spec: ProgramSpec,
    when: datetime,
    summary: ProvisioningSummary,
    here: str,
) -> None:
    change = ProgramChange.of(spec)
    program = await catalog.live_program(session, merchant.id)
    try:
        if program is None:
            program = await catalog.create_program(session, merchant.id, change.values, at=when)
            summary.count("programs", "created")
        elif await catalog.update_program(session, program, change.values, at=when):
            summary.count("programs", "updated")
        else:
            summary.count("programs", "unchanged")
    except InvalidFields as exc:
        # The file's settings clash with those the program keeps (``expiry_rules``).
        at = f"{here}.program."
        raise ProvisioningError([FieldError(at + e.path, e.message) for e in exc.errors]) from None
    if change.rewards is not None:
        for outcome, n in (await catalog.put_rewards(session, program.id, change.rewards)).items():
            summary.count("rewards", outcome, n)
    if change.campaigns is not None:
        try:
            counts = await catalog.put_campaigns(session, program, change.campaigns)
        except InvalidFields as exc:
            at = f"{here}.program.campaigns"
            raise ProvisioningError(
                [FieldError(at + e.path, e.message) for e in exc.errors]
            ) from None
        for outcome, n in counts.items():
            summary.count("campaigns", outcome, n)


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
        others = [
            p for p in active if p.store_id == store_id and (p.store_id, p.name) not in in_file
        ]
        holder = await catalog.pin_holder(staff_spec.pin, others)
        if holder is not None:
            errors.append(
                FieldError(
                    f"{here}.staff[{n}].pin",
                    f"staff member {holder.name!r} of store {staff_spec.store} already "
                    "has this PIN: two staff members of a store cannot share a PIN",
                )
            )
    if errors:
        raise ProvisioningError(errors)
    by_key = {(p.store_id, p.name): p for p in active}
    for staff_spec in spec.staff:
        store_id = store_ids[staff_spec.store]
        outcome = await catalog.put_staff(
            session,
            store_id,
            staff_spec.name,
            staff_spec.pin,
            by_key.get((store_id, staff_spec.name)),
            rounds=rounds,
        )
        summary.count("staff", outcome)


# The file's names of the service's fields, for the paths of its refusals.
_WEBHOOK_FIELDS = {"event_types": "events", "is_active": "active"}


async def _webhooks(
    session: AsyncSession,
    merchant: Merchant,
    spec: MerchantSpec,
    here: str,
    summary: ProvisioningSummary,
) -> None:
    if not spec.webhooks:
        return
    allow_private = get_settings().webhook_allow_private
    by_url: dict[str, WebhookEndpoint] = {}
    for live in await webhooks.list_endpoints(session, merchant.id):
        by_url.setdefault(live.url, live)
    for k, w_spec in enumerate(spec.webhooks):
        at = f"{here}.webhooks[{k}]"
        given = w_spec.model_fields_set
        try:
            endpoint = by_url.get(parse_url(w_spec.url, allow_private=allow_private).url)
            if endpoint is None:
                wanted = EndpointSpec(
                    w_spec.url,
                    tuple(w_spec.events),
                    w_spec.description,
                    w_spec.active,
                    w_spec.secret,
                )
                await webhooks.create_endpoint(
                    session, merchant.id, wanted, allow_private=allow_private
                )
                summary.count("webhooks", "created")
                continue
            before = _endpoint_values(endpoint)
            wanted = EndpointSpec(
                endpoint.url,
                tuple(w_spec.events),
                w_spec.description if "description" in given else endpoint.description,
                w_spec.active if "active" in given else endpoint.is_active,
                w_spec.secret,
            )
            await webhooks.update_endpoint(
                session, endpoint.id, wanted, allow_private=allow_private
            )
            changed = _endpoint_values(endpoint) != before
            summary.count("webhooks", "updated" if changed else "unchanged")
        except WebhookError as exc:
            field = _WEBHOOK_FIELDS.get(exc.field, exc.field)
            raise ProvisioningError([FieldError(f"{at}.{field}", exc.message)]) from None


def _endpoint_values(endpoint: WebhookEndpoint) -> tuple[Any, ...]:
    return (
        endpoint.url,
        list(endpoint.event_types),
        endpoint.description,
        endpoint.is_active,
        endpoint.secret,
    )
