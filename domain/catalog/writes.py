"""The catalog's writes: merchants, stores, programs, rewards catalogs, campaigns and staff PINs.

The one place these rows are created and changed, for ``loyalty provision`` and the admin
panel alike. Values come validated (``domain.catalog.checks``); what only the database can
tell (a code in use, a second live program, a time zone PostgreSQL lacks) is refused here with
a ``CatalogRefusal``, or with ``InvalidFields`` when one field of a campaign is to blame (its
id in use, a budget under what it has awarded, a status it cannot move to) or a program's
settings clash with those it keeps (``expiry_rules``), so a form shows it under the field and
the file names its path. Every function writes through the caller's
session and flushes; none commits. An update sets only the attributes that differ and says
whether any did, so an unchanged row is not written (its ``updated_at`` stays).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from core.enums import CampaignStatus
from domain import staff_pins
from domain.catalog.checks import EXPIRY_FIELDS, RewardLine, expiry_rules
from domain.catalog.errors import CatalogRefusal, FieldError, InvalidFields, error_message
from domain.catalog.schema import StaffName
from domain.hashing import check_secret_async, hash_secret_async, pin_rounds
from domain.models import (
    Campaign,
    LoyaltyProgram,
    Merchant,
    ProgramType,
    Reward,
    StaffPin,
    Store,
)

Outcome = Literal["created", "updated", "unchanged"]

_staff_name: TypeAdapter[str] = TypeAdapter(StaffName)


def assign(row: Any, values: Mapping[str, Any]) -> bool:
    """Set the attributes that differ; whether any did."""
    changed = False
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    return changed


# --- merchants ------------------------------------------------------------------------------


async def unknown_zones(session: AsyncSession, zones: Iterable[str]) -> set[str]:
    """The time zones among ``zones`` that PostgreSQL does not know.

    The ledger's statistics group entries by the merchant's local day in SQL: a zone Python
    knows and PostgreSQL does not would make every ledger write of the merchant fail.
    """
    wanted = set(zones)
    known = set(
        await session.scalars(
            select(text("name"))
            .select_from(text("pg_timezone_names"))
            .where(text("name = ANY(:zones)")),
            {"zones": list(wanted)},
        )
    )
    return wanted - known


async def _known_zone(session: AsyncSession, zone: str) -> None:
    if await unknown_zones(session, [zone]):
        raise CatalogRefusal(f"time zone {zone!r} unknown to PostgreSQL")


async def _code_taken(
    session: AsyncSession, model: type[Merchant] | type[Store], code: str, but: int | None
) -> bool:
    query = select(model.id).where(model.code == code)
    if but is not None:
        query = query.where(model.id != but)
    return (await session.scalar(query)) is not None


async def create_merchant(session: AsyncSession, values: Mapping[str, Any]) -> Merchant:
    """A new merchant (``values`` has its ``code``); refused when a live merchant has it."""
    code = values["code"]
    if await _code_taken(session, Merchant, code, None):
        raise CatalogRefusal(f"the merchant code {code!r} is already used")
    if "timezone" in values:
        await _known_zone(session, values["timezone"])
    merchant = Merchant(**values)
    session.add(merchant)
    await session.flush()
    return merchant


async def update_merchant(
    session: AsyncSession, merchant: Merchant, values: Mapping[str, Any]
) -> bool:
    """Change a merchant's fields given in ``values``; whether anything changed."""
    code = values.get("code", merchant.code)
    if code != merchant.code and await _code_taken(session, Merchant, code, merchant.id):
        raise CatalogRefusal(f"the merchant code {code!r} is already used")
    zone = values.get("timezone", merchant.timezone)
    if zone != merchant.timezone:
        await _known_zone(session, zone)
    changed = assign(merchant, values)
    await session.flush()
    return changed


# --- stores ---------------------------------------------------------------------------------


async def create_store(session: AsyncSession, merchant_id: int, code: str, name: str) -> Store:
    """A new store of the merchant; refused when a live store has the code."""
    if await _code_taken(session, Store, code, None):
        raise CatalogRefusal(f"the store code {code!r} is already used by a live store")
    store = Store(merchant_id=merchant_id, code=code, name=name)
    session.add(store)
    await session.flush()
    return store


async def update_store(session: AsyncSession, store: Store, values: Mapping[str, Any]) -> bool:
    """Change a store's ``code`` and ``name`` (those given); whether anything changed."""
    code = values.get("code", store.code)
    if code != store.code and await _code_taken(session, Store, code, store.id):
        raise CatalogRefusal(f"the store code {code!r} is already used by a live store")
    changed = assign(store, values)
    await session.flush()
    return changed


# --- programs and their rewards -------------------------------------------------------------


async def live_program(session: AsyncSession, merchant_id: int) -> LoyaltyProgram | None:
    """The merchant's live program, if it has one."""
    return await session.scalar(
        select(LoyaltyProgram).where(LoyaltyProgram.merchant_id == merchant_id)
    )


def _expiry_problems(program: LoyaltyProgram | None, values: Mapping[str, Any]) -> None:
    # A file states only the fields it changes: its pending days are judged with the expiry
    # policy and days the program keeps (or the defaults of a new one), and the other way round.
    merged = {
        key: values.get(key, default if program is None else getattr(program, key))
        for key, default in EXPIRY_FIELDS.items()
    }
    errors = expiry_rules(merged)
    if errors:
        raise InvalidFields(errors)


async def create_program(
    session: AsyncSession, merchant_id: int, values: Mapping[str, Any], *, at: datetime
) -> LoyaltyProgram:
    """The merchant's program; refused when it has a live one. Active from ``at`` unless
    ``values`` switch it off. ``InvalidFields`` when its settings clash (``expiry_rules``)."""
    if await live_program(session, merchant_id) is not None:
        raise CatalogRefusal("this merchant already has a program (one live program per merchant)")
    _expiry_problems(None, values)
    program = LoyaltyProgram(merchant_id=merchant_id, **values)
    if program.is_active is not False:
        program.activated_at = at
    session.add(program)
    await session.flush()
    return program


async def update_program(
    session: AsyncSession, program: LoyaltyProgram, values: Mapping[str, Any], *, at: datetime
) -> bool:
    """Change a program's settings given in ``values``; switched on, it is active from
    ``at``. ``InvalidFields`` when they clash with those it keeps (``expiry_rules``): nothing
    is changed then. Whether anything changed.

    A new ``expiry_policy`` or ``pending_days`` applies to the points earned afterwards: the
    lots already earned keep the release and expiry they were given."""
    _expiry_problems(program, values)
    was_active = program.is_active
    changed = assign(program, values)
    if changed and program.is_active and not was_active:
        program.activated_at = at
    await session.flush()
    return changed


async def put_rewards(
    session: AsyncSession, program_id: int, lines: Sequence[RewardLine]
) -> Counter[str]:
    """Make the program's catalog ``lines``: rewards missing from them are deactivated, never
    deleted (ledger entries name them). Counts ``created``, ``updated``, ``unchanged`` and
    ``deactivated`` rewards."""
    counts: Counter[str] = Counter()
    existing = {
        r.code: r
        for r in await session.scalars(select(Reward).where(Reward.program_id == program_id))
    }
    for line in lines:
        values = {
            "name": line.name,
            "points_required": line.points_required,
            "description": line.description,
            "is_active": line.is_active,
        }
        reward = existing.pop(line.code, None)
        if reward is None:
            session.add(Reward(program_id=program_id, code=line.code, **values))
            counts["created"] += 1
        elif assign(reward, values):
            counts["updated"] += 1
        else:
            counts["unchanged"] += 1
    for reward in existing.values():
        if reward.is_active:
            reward.is_active = False
            counts["deactivated"] += 1
    await session.flush()
    return counts


# --- campaigns ------------------------------------------------------------------------------

# Where a campaign may go from each status: ending is final (what it awarded stays its own),
# and a campaign that has run is never a draft again.
_NEXT_STATUS: dict[CampaignStatus, frozenset[CampaignStatus]] = {
    CampaignStatus.DRAFT: frozenset({CampaignStatus.ACTIVE, CampaignStatus.ENDED}),
    CampaignStatus.ACTIVE: frozenset({CampaignStatus.PAUSED, CampaignStatus.ENDED}),
    CampaignStatus.PAUSED: frozenset({CampaignStatus.ACTIVE, CampaignStatus.ENDED}),
    CampaignStatus.ENDED: frozenset(),
}


def status_problem(old: CampaignStatus, new: CampaignStatus) -> str | None:
    """Why a campaign cannot move from ``old`` to ``new``, or ``None`` when it can."""
    if new == old or new in _NEXT_STATUS[old]:
        return None
    if old == CampaignStatus.ENDED:
        return f"the campaign has ended: it cannot be {new.value} again (create a new campaign)"
    if new == CampaignStatus.DRAFT:
        return f"the campaign is {old.value}: it cannot go back to draft (pause it instead)"
    return f"a draft has not started: it cannot be {new.value} (activate it or end it)"


def campaign_problems(
    program: LoyaltyProgram, campaign: Campaign | None, values: Mapping[str, Any]
) -> list[FieldError]:
    """What the database's state refuses in ``values`` for ``campaign`` (``None``: a new one,
    whose ``values`` hold its status), by field name: a status it cannot move to, an active
    campaign in a stamps program, a budget under the points it has already awarded."""
    errors: list[FieldError] = []
    status = values.get("status", campaign.status if campaign else CampaignStatus.DRAFT)
    if campaign is not None and (problem := status_problem(campaign.status, status)):
        errors.append(FieldError("status", problem))
    elif status == CampaignStatus.ACTIVE and program.type == ProgramType.STAMPS:
        errors.append(
            FieldError(
                "status",
                "a stamps program runs no campaigns (they change points: type points or hybrid)",
            )
        )
    budget = values.get("budget_points")
    if campaign is not None and budget is not None and budget < campaign.points_awarded:
        errors.append(
            FieldError(
                "budget_points",
                f"cannot be lower than the {campaign.points_awarded} points the campaign "
                "has already awarded",
            )
        )
    return errors


async def _campaign_code_taken(
    session: AsyncSession, program_id: int, code: str, but: int | None
) -> bool:
    query = select(Campaign.id).where(
        Campaign.program_id == program_id, Campaign.code == code, Campaign.deleted_at.is_(None)
    )
    if but is not None:
        query = query.where(Campaign.id != but)
    return (await session.scalar(query)) is not None


def _code_in_use(code: str) -> FieldError:
    return FieldError("id", f"the program already has a campaign {code!r}")


async def create_campaign(
    session: AsyncSession, program: LoyaltyProgram, values: Mapping[str, Any]
) -> Campaign:
    """A new campaign of the program (``values``: ``campaign_columns``), a draft unless
    ``values`` give its status; ``InvalidFields`` when a live campaign of the program has its
    code, or it would run in a stamps program."""
    values = {"status": CampaignStatus.DRAFT, **values}
    errors = campaign_problems(program, None, values)
    if await _campaign_code_taken(session, program.id, values["code"], None):
        errors.insert(0, _code_in_use(values["code"]))
    if errors:
        raise InvalidFields(errors)
    campaign = Campaign(program_id=program.id, **values)
    session.add(campaign)
    await session.flush()
    return campaign


async def _locked(session: AsyncSession, campaign: Campaign) -> None:
    # The engine moves points_awarded under this row's lock: holding it, the budget compared
    # with it below is the one the database's check will see.
    await session.refresh(campaign, with_for_update=True)


async def update_campaign(
    session: AsyncSession, program: LoyaltyProgram, campaign: Campaign, values: Mapping[str, Any]
) -> bool:
    """Change a campaign of the program to ``values`` (``campaign_columns``; without a
    ``status`` it keeps its own). ``points_awarded`` is never written. ``InvalidFields`` when
    the database's state refuses a field (``campaign_problems``, a code in use). Whether
    anything changed."""
    await _locked(session, campaign)
    errors = campaign_problems(program, campaign, values)
    code = values.get("code", campaign.code)
    if code != campaign.code and await _campaign_code_taken(session, program.id, code, campaign.id):
        errors.insert(0, _code_in_use(code))
    if errors:
        raise InvalidFields(errors)
    changed = assign(campaign, values)
    await session.flush()
    return changed


async def set_campaign_status(
    session: AsyncSession, program: LoyaltyProgram, campaign: Campaign, status: CampaignStatus
) -> bool:
    """Move a campaign of the program to ``status``; ``CatalogRefusal`` when it cannot go
    there (``status_problem``, or active in a stamps program). Whether it moved."""
    await _locked(session, campaign)
    errors = campaign_problems(program, campaign, {"status": status})
    if errors:
        raise CatalogRefusal(errors[0].message)
    changed = assign(campaign, {"status": status})
    await session.flush()
    return changed


async def put_campaigns(
    session: AsyncSession, program: LoyaltyProgram, lines: Sequence[Mapping[str, Any]]
) -> Counter[str]:
    """Create or update the program's campaigns ``lines`` (``campaign_columns``) by code.

    Campaigns not in ``lines`` are left as they are, neither ended nor deleted: a file names
    the campaigns it sets, and the admin panel may run others. A new campaign is active unless
    its line gives a status; an existing one without a status in its line keeps its own.
    ``points_awarded`` is never written (it is the engine's counter). Refused, before anything
    is written, with ``InvalidFields`` whose paths are ``[index].field`` within ``lines``
    (``campaign_problems``). Counts ``created``, ``updated`` and ``unchanged`` campaigns.
    """
    existing = {
        c.code: c
        for c in await session.scalars(
            select(Campaign)
            .where(Campaign.program_id == program.id, Campaign.deleted_at.is_(None))
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    }
    rows: list[tuple[Campaign | None, Mapping[str, Any]]] = []
    for line in lines:
        campaign = existing.get(line["code"])
        rows.append((campaign, line if campaign else {"status": CampaignStatus.ACTIVE, **line}))
    errors = [
        FieldError(f"[{k}].{e.path}", e.message)
        for k, (campaign, values) in enumerate(rows)
        for e in campaign_problems(program, campaign, values)
    ]
    if errors:
        raise InvalidFields(errors)
    counts: Counter[str] = Counter()
    for campaign, values in rows:
        if campaign is None:
            session.add(Campaign(program_id=program.id, **values))
            counts["created"] += 1
        elif assign(campaign, values):
            counts["updated"] += 1
        else:
            counts["unchanged"] += 1
    await session.flush()
    return counts


# --- staff ----------------------------------------------------------------------------------


async def pin_holder(pin: str, others: Iterable[StaffPin]) -> StaffPin | None:
    """The staff member among ``others`` whose PIN this is (PINs are compared by hash)."""
    for other in others:
        if await check_secret_async(pin, other.pin_hash):
            return other
    return None


async def put_staff(
    session: AsyncSession,
    store_id: int,
    name: str,
    pin: str,
    current: StaffPin | None,
    *,
    rounds: int | None = None,
) -> Outcome:
    """Give the staff member ``name`` of the store this PIN: a new PIN row when ``current``
    (their active PIN) is ``None``, else re-hashed only when the PIN changed. The caller has
    checked that no other staff member of the store has the PIN."""
    if current is None:
        session.add(
            StaffPin(
                store_id=store_id,
                name=name,
                pin_hash=await hash_secret_async(pin, rounds=pin_rounds(rounds)),
                is_active=True,
            )
        )
        await session.flush()
        return "created"
    if await check_secret_async(pin, current.pin_hash):
        return "unchanged"
    current.pin_hash = await hash_secret_async(pin, rounds=pin_rounds(rounds))
    await session.flush()
    return "updated"


async def add_staff(session: AsyncSession, store_code: str, name: str, pin: str) -> StaffPin:
    """A new staff member of the store with this PIN (``domain.staff_pins`` refuses a name or
    a PIN the store already has, with the store's row locked)."""
    name = name.strip()
    if name:
        try:
            _staff_name.validate_python(name)
        except ValidationError as exc:
            raise CatalogRefusal(f"the name {error_message(exc.errors()[0])}") from None
    return await staff_pins.add_pin(session, store_code, name, pin)


async def change_staff_pin(session: AsyncSession, staff_pin_id: int, pin: str) -> StaffPin:
    """A staff member's new PIN, refused when another staff member of the store has it."""
    return await staff_pins.change_pin(session, staff_pin_id, pin)


async def remove_staff(session: AsyncSession, staff_pin_id: int) -> StaffPin:
    """Retire a staff member's PIN (kept, since ledger entries may name it)."""
    return await staff_pins.remove_pin(session, staff_pin_id)
