"""What the admin pages read and write: lists (one page at a time, scoped to what an admin may
see), single records, creation, editing, soft-delete and restore.

Lists return plain frozen rows, never ORM objects, so nothing lazy leaks into the pages. Lists
always ask for deleted rows too (``include_deleted``) and filter on the listed table's own
``deleted_at``: the soft-delete hook would otherwise also filter the joined tables, and "only
deleted stores" would then only show stores of deleted merchants.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeAlias, TypeVar

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import ColumnElement, Select, func, or_, select, text, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from admin_ui.auth import Principal
from admin_ui.domain_api import DomainRefusal
from admin_ui.widgets import DeletedMode, PageRequest, Rows
from domain import soft_delete
from domain.models import (
    Customer,
    LedgerEntry,
    LoyaltyCard,
    LoyaltyProgram,
    Merchant,
    ProgramType,
    Reward,
    SoftDeleteMixin,
    Store,
    WalletSyncState,
)
from streams.fields import Email

ALL = {"include_deleted": True}
T = TypeVar("T")
AnySelect: TypeAlias = "Select[*tuple[Any, ...]]"
S = TypeVar("S", bound=AnySelect)

_email = TypeAdapter(Email)


def _mode(column: Any, mode: DeletedMode) -> ColumnElement[bool]:
    if mode == "live":
        return column.is_(None)  # type: ignore[no-any-return]
    if mode == "deleted":
        return column.is_not(None)  # type: ignore[no-any-return]
    return true()


def _like(text_: str) -> str:
    escaped = text_.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _scoped(query: S, column: Any, me: Principal) -> S:
    if me.is_platform:
        return query
    return query.where(column == me.merchant_id)


async def _page(
    session: AsyncSession, query: AnySelect, request: PageRequest, *order: Any
) -> tuple[Sequence[Any], int]:
    total = await session.scalar(
        select(func.count()).select_from(query.order_by(None).subquery()).execution_options(**ALL)
    )
    rows = (
        await session.execute(
            query.order_by(*order)
            .offset(request.offset)
            .limit(request.limit)
            .execution_options(**ALL)
        )
    ).all()
    return rows, int(total or 0)


# --- merchants ------------------------------------------------------------------------------


@dataclass(frozen=True)
class MerchantRow:
    """A merchant as lists and forms show it."""

    id: int
    code: str
    name: str
    timezone: str
    allow_self_enrollment: bool
    allow_cross_location_redemption: bool
    stores: int
    deleted_at: datetime | None
    deleted_by: str | None


def _merchant_row(m: Merchant, stores: int) -> MerchantRow:
    return MerchantRow(
        m.id,
        m.code,
        m.name,
        m.timezone,
        m.allow_self_enrollment,
        m.allow_cross_location_redemption,
        stores,
        m.deleted_at,
        m.deleted_by,
    )


def _store_count() -> Any:
    return (
        select(func.count(Store.id))
        .where(Store.merchant_id == Merchant.id, Store.deleted_at.is_(None))
        .correlate(Merchant)
        .scalar_subquery()
    )


async def list_merchants(
    session: AsyncSession, me: Principal, request: PageRequest
) -> Rows[MerchantRow]:
    """Merchants matching the search (code or name)."""
    query = select(Merchant, _store_count()).where(_mode(Merchant.deleted_at, request.mode))
    query = _scoped(query, Merchant.id, me)
    if request.search:
        pattern = _like(request.search)
        query = query.where(or_(Merchant.code.ilike(pattern), Merchant.name.ilike(pattern)))
    rows, total = await _page(session, query, request, Merchant.code, Merchant.id)
    return Rows([_merchant_row(m, n) for m, n in rows], total)


async def get_merchant(
    session: AsyncSession, me: Principal, merchant_id: int
) -> MerchantRow | None:
    """A merchant this admin may see (deleted ones too), else ``None``."""
    if not me.sees(merchant_id):
        return None
    row = (
        await session.execute(
            select(Merchant, _store_count())
            .where(Merchant.id == merchant_id)
            .execution_options(**ALL)
        )
    ).first()
    return _merchant_row(row[0], row[1]) if row else None


async def merchant_choices(session: AsyncSession, me: Principal) -> dict[int, str]:
    """Live merchants this admin may pick in a form, ``{id: "code — name"}``."""
    query = _scoped(select(Merchant.id, Merchant.code, Merchant.name), Merchant.id, me)
    rows = (await session.execute(query.order_by(Merchant.code))).all()
    return {r[0]: f"{r[1]} — {r[2]}" for r in rows}


async def _code_taken(
    session: AsyncSession, model: Any, code: str, except_id: int | None = None
) -> bool:
    query = select(model.id).where(model.code == code)
    if except_id is not None:
        query = query.where(model.id != except_id)
    return (await session.scalar(query)) is not None


async def create_merchant(session: AsyncSession, me: Principal, data: dict[str, Any]) -> int:
    """A new merchant (platform admins only); returns its id. The caller commits."""
    if not me.is_platform:
        raise DomainRefusal("only a platform admin creates merchants")
    if await _code_taken(session, Merchant, data["code"]):
        raise DomainRefusal(f"the merchant code {data['code']!r} is already used")
    merchant = Merchant(
        code=data["code"],
        name=data["name"],
        timezone=data["timezone"],
        allow_self_enrollment=data["allow_self_enrollment"],
        allow_cross_location_redemption=data["allow_cross_location_redemption"],
    )
    session.add(merchant)
    await session.flush()
    return merchant.id


async def update_merchant(
    session: AsyncSession, me: Principal, merchant_id: int, data: dict[str, Any]
) -> None:
    """Change a live merchant's code, name, time zone and switches. The caller commits."""
    merchant = await _live(session, Merchant, merchant_id, me.sees(merchant_id))
    if data["code"] != merchant.code:
        if not me.is_platform:
            raise DomainRefusal("only a platform admin changes a merchant's code")
        if await _code_taken(session, Merchant, data["code"], merchant_id):
            raise DomainRefusal(f"the merchant code {data['code']!r} is already used")
    for key in (
        "code",
        "name",
        "timezone",
        "allow_self_enrollment",
        "allow_cross_location_redemption",
    ):
        setattr(merchant, key, data[key])
    await session.flush()


# --- stores ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoreRow:
    """A store as lists and forms show it."""

    id: int
    code: str
    name: str
    merchant_id: int
    merchant_code: str
    pin_locked_until: datetime | None
    pin_failed_attempts: int
    deleted_at: datetime | None


async def list_stores(
    session: AsyncSession,
    me: Principal,
    request: PageRequest,
    *,
    merchant_id: int | None = None,
) -> Rows[StoreRow]:
    """Stores matching the search (code, name or merchant code)."""
    query = (
        select(Store, Merchant.code)
        .join(Merchant, Merchant.id == Store.merchant_id)
        .where(_mode(Store.deleted_at, request.mode))
    )
    query = _scoped(query, Store.merchant_id, me)
    if merchant_id is not None:
        query = query.where(Store.merchant_id == merchant_id)
    if request.search:
        pattern = _like(request.search)
        query = query.where(
            or_(Store.code.ilike(pattern), Store.name.ilike(pattern), Merchant.code.ilike(pattern))
        )
    rows, total = await _page(session, query, request, Store.code, Store.id)
    return Rows([_store_row(s, code) for s, code in rows], total)


def _store_row(s: Store, merchant_code: str) -> StoreRow:
    return StoreRow(
        s.id,
        s.code,
        s.name,
        s.merchant_id,
        merchant_code,
        s.pin_locked_until,
        s.pin_failed_attempts,
        s.deleted_at,
    )


async def get_store(session: AsyncSession, me: Principal, store_id: int) -> StoreRow | None:
    """A store this admin may see (deleted ones too), else ``None``."""
    row = (
        await session.execute(
            select(Store, Merchant.code)
            .join(Merchant, Merchant.id == Store.merchant_id)
            .where(Store.id == store_id)
            .execution_options(**ALL)
        )
    ).first()
    if row is None or not me.sees(row[0].merchant_id):
        return None
    return _store_row(row[0], row[1])


async def create_store(
    session: AsyncSession, me: Principal, merchant_id: int, code: str, name: str
) -> int:
    """A new store of a live merchant; returns its id. The caller commits."""
    await _live(session, Merchant, merchant_id, me.sees(merchant_id))
    if await _code_taken(session, Store, code):
        raise DomainRefusal(f"the store code {code!r} is already used by a live store")
    store = Store(merchant_id=merchant_id, code=code, name=name)
    session.add(store)
    await session.flush()
    return store.id


async def update_store(
    session: AsyncSession, me: Principal, store_id: int, code: str, name: str
) -> None:
    """Rename a live store or change its code. The caller commits."""
    store = await session.get(Store, store_id)
    if store is None or not me.sees(store.merchant_id):
        raise DomainRefusal("this store does not exist or is deleted")
    if code != store.code and await _code_taken(session, Store, code, store_id):
        raise DomainRefusal(f"the store code {code!r} is already used by a live store")
    store.code, store.name = code, name
    await session.flush()


# --- programs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProgramRow:
    """A program as lists show it."""

    id: int
    merchant_id: int
    merchant_code: str
    name: str
    type: ProgramType
    is_active: bool
    deleted_at: datetime | None


async def list_programs(
    session: AsyncSession, me: Principal, request: PageRequest
) -> Rows[ProgramRow]:
    """Programs matching the search (name or merchant code)."""
    query = (
        select(LoyaltyProgram, Merchant.code)
        .join(Merchant, Merchant.id == LoyaltyProgram.merchant_id)
        .where(_mode(LoyaltyProgram.deleted_at, request.mode))
    )
    query = _scoped(query, LoyaltyProgram.merchant_id, me)
    if request.search:
        pattern = _like(request.search)
        query = query.where(or_(LoyaltyProgram.name.ilike(pattern), Merchant.code.ilike(pattern)))
    rows, total = await _page(session, query, request, Merchant.code, LoyaltyProgram.id)
    return Rows(
        [
            ProgramRow(p.id, p.merchant_id, code, p.name, p.type, p.is_active, p.deleted_at)
            for p, code in rows
        ],
        total,
    )


@dataclass(frozen=True)
class ProgramDetail:
    """A program's every setting and its rewards catalog, for the settings form."""

    id: int
    merchant_id: int
    merchant_code: str
    settings: dict[str, Any]
    rewards: list[dict[str, Any]]
    deleted_at: datetime | None


PROGRAM_FIELDS = (
    "name",
    "type",
    "currency",
    "stamps_target",
    "stamps_reward_description",
    "stamps_reward_value_cents",
    "points_per_euro",
    "points_expiration_days",
    "welcome_bonus_points",
    "minimum_redemption_points",
    "minimum_purchase_cents",
    "cooldown_minutes",
    "max_daily_stamps",
    "require_staff_pin",
    "pin_max_attempts",
    "pin_lockout_minutes",
    "point_value_cents",
    "card_name",
    "background_color",
    "foreground_color",
    "label_color",
    "logo_url",
    "hero_image_url",
    "terms_url",
    "privacy_url",
    "is_active",
)


async def get_program(
    session: AsyncSession, me: Principal, program_id: int
) -> ProgramDetail | None:
    """A program this admin may see, with its catalog, else ``None``."""
    row = (
        await session.execute(
            select(LoyaltyProgram, Merchant.code)
            .join(Merchant, Merchant.id == LoyaltyProgram.merchant_id)
            .where(LoyaltyProgram.id == program_id)
            .execution_options(**ALL)
        )
    ).first()
    if row is None or not me.sees(row[0].merchant_id):
        return None
    program: LoyaltyProgram = row[0]
    settings = {key: getattr(program, key) for key in PROGRAM_FIELDS}
    settings["type"] = program.type.value
    rewards = (
        await session.scalars(
            select(Reward).where(Reward.program_id == program_id).order_by(Reward.id)
        )
    ).all()
    return ProgramDetail(
        program.id,
        program.merchant_id,
        row[1],
        settings,
        [
            {
                "id": r.code,
                "name": r.name,
                "points_required": r.points_required,
                "description": r.description,
                "is_active": r.is_active,
                "saved": True,
            }
            for r in rewards
        ],
        program.deleted_at,
    )


async def live_program_id(session: AsyncSession, merchant_id: int) -> int | None:
    """The merchant's live program, if it has one."""
    return await session.scalar(
        select(LoyaltyProgram.id).where(LoyaltyProgram.merchant_id == merchant_id)
    )


async def create_program(
    session: AsyncSession, me: Principal, merchant_id: int, program_type: ProgramType, name: str
) -> int:
    """A merchant's program with default settings; returns its id. The caller commits."""
    await _live(session, Merchant, merchant_id, me.sees(merchant_id))
    if await live_program_id(session, merchant_id) is not None:
        raise DomainRefusal("this merchant already has a program (one live program per merchant)")
    # A program made here asks for a staff PIN until the merchant decides otherwise: a
    # terminal that anyone at the counter can use records purchases nobody vouched for.
    program = LoyaltyProgram(
        merchant_id=merchant_id, type=program_type, name=name, require_staff_pin=True
    )
    session.add(program)
    await session.flush()
    return program.id


async def update_program(
    session: AsyncSession,
    me: Principal,
    program_id: int,
    settings: dict[str, Any],
    rewards: Sequence[dict[str, Any]],
) -> None:
    """Save validated settings and the catalog: rewards absent from it are deactivated,
    never deleted (ledger entries name them). The caller commits."""
    program = await session.get(LoyaltyProgram, program_id)
    if program is None or not me.sees(program.merchant_id):
        raise DomainRefusal("this program does not exist or is deleted")
    for key in PROGRAM_FIELDS:
        if key in settings:
            value = settings[key]
            if key == "type":
                value = ProgramType(value)
            if key == "point_value_cents" and value is not None:
                value = Decimal(str(value))
            setattr(program, key, value)
    existing = {
        r.code: r
        for r in (await session.scalars(select(Reward).where(Reward.program_id == program_id)))
    }
    wanted = {r["id"]: r for r in rewards}
    for code, spec in wanted.items():
        reward = existing.get(code)
        if reward is None:
            reward = Reward(program_id=program_id, code=code)
            session.add(reward)
        reward.name = spec["name"]
        reward.points_required = spec["points_required"]
        reward.description = spec.get("description")
        reward.is_active = bool(spec.get("is_active", True))
    for code, reward in existing.items():
        if code not in wanted:
            reward.is_active = False
    await session.flush()


# --- customers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CustomerRow:
    """A customer as lists and forms show it."""

    id: int
    merchant_id: int
    merchant_code: str
    email: str | None
    customer_ref: str | None
    first_name: str | None
    last_name: str | None
    phone: str | None
    locale: str
    cards: int
    deleted_at: datetime | None

    @property
    def display_name(self) -> str:
        """First and last name, or the email, or the merchant's reference."""
        name = " ".join(p for p in (self.first_name, self.last_name) if p)
        return name or self.email or self.customer_ref or f"#{self.id}"


def _card_count() -> Any:
    return (
        select(func.count(LoyaltyCard.id))
        .where(LoyaltyCard.customer_id == Customer.id, LoyaltyCard.deleted_at.is_(None))
        .correlate(Customer)
        .scalar_subquery()
    )


def _customer_row(c: Customer, merchant_code: str, cards: int) -> CustomerRow:
    return CustomerRow(
        c.id,
        c.merchant_id,
        merchant_code,
        c.email,
        c.customer_ref,
        c.first_name,
        c.last_name,
        c.phone,
        c.locale,
        cards,
        c.deleted_at,
    )


async def list_customers(
    session: AsyncSession, me: Principal, request: PageRequest
) -> Rows[CustomerRow]:
    """Customers matching the search (email, names, reference or merchant code)."""
    query = (
        select(Customer, Merchant.code, _card_count())
        .join(Merchant, Merchant.id == Customer.merchant_id)
        .where(_mode(Customer.deleted_at, request.mode))
    )
    query = _scoped(query, Customer.merchant_id, me)
    if request.search:
        pattern = _like(request.search)
        query = query.where(
            or_(
                Customer.email.ilike(pattern),
                Customer.first_name.ilike(pattern),
                Customer.last_name.ilike(pattern),
                Customer.customer_ref.ilike(pattern),
                Merchant.code.ilike(pattern),
            )
        )
    rows, total = await _page(session, query, request, Customer.id.desc())
    return Rows([_customer_row(c, code, n) for c, code, n in rows], total)


async def get_customer(
    session: AsyncSession, me: Principal, customer_id: int
) -> CustomerRow | None:
    """A customer this admin may see (deleted ones too), else ``None``."""
    row = (
        await session.execute(
            select(Customer, Merchant.code, _card_count())
            .join(Merchant, Merchant.id == Customer.merchant_id)
            .where(Customer.id == customer_id)
            .execution_options(**ALL)
        )
    ).first()
    if row is None or not me.sees(row[0].merchant_id):
        return None
    return _customer_row(row[0], row[1], row[2])


def clean_email(value: str | None) -> str | None:
    """An email as stored (lower case), ``None`` when blank; ``DomainRefusal`` when invalid."""
    if value is None or not value.strip():
        return None
    try:
        return _email.validate_python(value)
    except ValidationError:
        raise DomainRefusal(f"{value.strip()!r} is not an email address") from None


async def update_customer(
    session: AsyncSession, me: Principal, customer_id: int, data: dict[str, Any]
) -> None:
    """Change a live customer's contact details. The caller commits."""
    customer = await session.get(Customer, customer_id)
    if customer is None or not me.sees(customer.merchant_id):
        raise DomainRefusal("this customer does not exist or is deleted")
    email = clean_email(data.get("email"))
    ref = (data.get("customer_ref") or "").strip() or None
    if email is None and ref is None:
        raise DomainRefusal("a customer needs an email or a customer reference")
    for column, value, what in (
        (Customer.email, email, "email"),
        (Customer.customer_ref, ref, "reference"),
    ):
        if value is None:
            continue
        other = await session.scalar(
            select(Customer.id).where(
                Customer.merchant_id == customer.merchant_id,
                column == value,
                Customer.id != customer_id,
            )
        )
        if other is not None:
            raise DomainRefusal(f"another customer of this merchant has the {what} {value!r}")
    customer.email = email
    customer.customer_ref = ref
    for key in ("first_name", "last_name", "phone"):
        setattr(customer, key, (data.get(key) or "").strip() or None)
    customer.locale = data.get("locale") or "en"
    await session.flush()


# --- cards ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CardRow:
    """A card as lists show it."""

    id: int
    card_number: str
    merchant_id: int
    merchant_code: str
    customer_id: int
    customer: str
    stamp_count: int
    points_balance: int
    is_active: bool
    deleted_at: datetime | None


async def list_cards(
    session: AsyncSession,
    me: Principal,
    request: PageRequest,
    *,
    customer_id: int | None = None,
) -> Rows[CardRow]:
    """Cards matching the search (card number, QR text, customer email or merchant code)."""
    query = (
        select(LoyaltyCard, Merchant.code, Customer.email, Customer.customer_ref)
        .join(Merchant, Merchant.id == LoyaltyCard.merchant_id)
        .join(Customer, Customer.id == LoyaltyCard.customer_id)
        .where(_mode(LoyaltyCard.deleted_at, request.mode))
    )
    query = _scoped(query, LoyaltyCard.merchant_id, me)
    if customer_id is not None:
        query = query.where(LoyaltyCard.customer_id == customer_id)
    if request.search:
        pattern = _like(request.search)
        digits = "".join(ch for ch in request.search if ch.isalnum())
        conditions = [
            LoyaltyCard.card_number.ilike(pattern),
            LoyaltyCard.qr_token == request.search,
            Customer.email.ilike(pattern),
            Customer.customer_ref.ilike(pattern),
            Merchant.code.ilike(pattern),
        ]
        if digits:
            conditions.append(func.replace(LoyaltyCard.card_number, "-", "").ilike(_like(digits)))
        query = query.where(or_(*conditions))
    rows, total = await _page(session, query, request, LoyaltyCard.id.desc())
    return Rows(
        [
            CardRow(
                c.id,
                c.card_number,
                c.merchant_id,
                code,
                c.customer_id,
                email or ref or f"#{c.customer_id}",
                c.stamp_count,
                c.points_balance,
                c.is_active,
                c.deleted_at,
            )
            for c, code, email, ref in rows
        ],
        total,
    )


@dataclass(frozen=True)
class CardDetail:
    """A card with its program's terms, its customer and its merchant."""

    id: int
    card_number: str
    qr_token: str
    link_token: str
    merchant_id: int
    merchant_code: str
    program_id: int
    program_type: ProgramType
    stamps_target: int
    currency: str
    customer_id: int
    customer: str
    store_code: str | None
    stamp_count: int
    points_balance: int
    lifetime_stamps: int
    lifetime_points_earned: int
    points_redeemed: int
    rewards_redeemed: int
    is_active: bool
    version: int
    last_activity_at: datetime | None
    created_at: datetime
    deleted_at: datetime | None


async def get_card(session: AsyncSession, me: Principal, card_id: int) -> CardDetail | None:
    """A card this admin may see (deleted ones too), else ``None``."""
    row = (
        await session.execute(
            select(LoyaltyCard, Merchant.code, LoyaltyProgram, Customer, Store.code)
            .join(Merchant, Merchant.id == LoyaltyCard.merchant_id)
            .join(LoyaltyProgram, LoyaltyProgram.id == LoyaltyCard.program_id)
            .join(Customer, Customer.id == LoyaltyCard.customer_id)
            .outerjoin(Store, Store.id == LoyaltyCard.store_id)
            .where(LoyaltyCard.id == card_id)
            .execution_options(**ALL)
        )
    ).first()
    if row is None or not me.sees(row[0].merchant_id):
        return None
    c: LoyaltyCard = row[0]
    program: LoyaltyProgram = row[2]
    customer: Customer = row[3]
    name = " ".join(p for p in (customer.first_name, customer.last_name) if p)
    who = ", ".join(p for p in (name, customer.email or customer.customer_ref or "") if p)
    return CardDetail(
        id=c.id,
        card_number=c.card_number,
        qr_token=c.qr_token,
        link_token=c.link_token,
        merchant_id=c.merchant_id,
        merchant_code=row[1],
        program_id=program.id,
        program_type=program.type,
        stamps_target=program.stamps_target,
        currency=program.currency,
        customer_id=customer.id,
        customer=who or f"#{customer.id}",
        store_code=row[4],
        stamp_count=c.stamp_count,
        points_balance=c.points_balance,
        lifetime_stamps=c.lifetime_stamps,
        lifetime_points_earned=c.lifetime_points_earned,
        points_redeemed=c.points_redeemed,
        rewards_redeemed=c.rewards_redeemed,
        is_active=c.is_active,
        version=c.version,
        last_activity_at=c.last_activity_at,
        created_at=c.created_at,
        deleted_at=c.deleted_at,
    )


@dataclass(frozen=True)
class LedgerLine:
    """One ledger entry of a card."""

    id: int
    occurred_at: datetime
    entry_type: str
    stamps_delta: int
    points_delta: int
    stamp_count_after: int
    points_balance_after: int
    store_code: str | None
    detail: str


async def card_ledger(
    session: AsyncSession, card_id: int, request: PageRequest
) -> Rows[LedgerLine]:
    """A card's ledger, newest first (the caller has checked the card is visible)."""
    query = (
        select(LedgerEntry, Store.code)
        .outerjoin(Store, Store.id == LedgerEntry.store_id)
        .where(LedgerEntry.card_id == card_id)
    )
    rows, total = await _page(
        session, query, request, LedgerEntry.occurred_at.desc(), LedgerEntry.id.desc()
    )
    lines = []
    for entry, store_code in rows:
        parts = [
            p
            for p in (
                entry.order_reference and f"order {entry.order_reference}",
                entry.reward_description or entry.reward_code,
                entry.notes,
                entry.actor,
                entry.staff_ref and f"staff {entry.staff_ref}",
            )
            if p
        ]
        lines.append(
            LedgerLine(
                entry.id,
                entry.occurred_at,
                entry.entry_type.value,
                entry.stamps_delta,
                entry.points_delta,
                entry.stamp_count_after,
                entry.points_balance_after,
                store_code,
                " · ".join(parts),
            )
        )
    return Rows(lines, total)


@dataclass(frozen=True)
class WalletLine:
    """How far a wallet has caught up with a card."""

    wallet: str
    synced_version: int
    synced_at: datetime | None
    attempts: int
    last_error: str | None
    last_error_at: datetime | None


async def wallet_sync(session: AsyncSession, card_id: int) -> list[WalletLine]:
    """The card's wallet sync rows (none until a wallet consumer has seen the card)."""
    rows = (
        await session.scalars(
            select(WalletSyncState)
            .where(WalletSyncState.card_id == card_id)
            .order_by(WalletSyncState.wallet)
        )
    ).all()
    return [
        WalletLine(
            r.wallet, r.synced_version, r.synced_at, r.attempts, r.last_error, r.last_error_at
        )
        for r in rows
    ]


# --- soft delete and restore ----------------------------------------------------------------


KINDS: dict[str, type[SoftDeleteMixin]] = {
    "merchant": Merchant,
    "store": Store,
    "program": LoyaltyProgram,
    "customer": Customer,
    "card": LoyaltyCard,
}


async def delete(session: AsyncSession, me: Principal, kind: str, row_id: int) -> None:
    """Soft-delete a live row and what belongs to it. The caller commits."""
    model = KINDS[kind]
    row: Any = await session.get(model, row_id)
    if row is None:
        raise DomainRefusal(f"this {kind} does not exist or is already deleted")
    merchant_id = row.id if kind == "merchant" else row.merchant_id
    if not me.sees(merchant_id):
        raise DomainRefusal(f"this {kind} does not exist or is already deleted")
    if kind == "merchant" and not me.is_platform:
        raise DomainRefusal("only a platform admin deletes a merchant")
    await soft_delete.soft_delete(session, model, [row_id], by=me.actor)


_PARENTS: dict[str, tuple[tuple[str, str], ...]] = {
    "store": (("merchant", "merchant_id"),),
    "program": (("merchant", "merchant_id"),),
    "customer": (("merchant", "merchant_id"),),
    "card": (("merchant", "merchant_id"), ("program", "program_id"), ("customer", "customer_id")),
}

_CONFLICTS: tuple[tuple[str, str], ...] = (
    (
        "SELECT 'the merchant code ' || quote_literal(d.code) || ' is now used by another live"
        " merchant' FROM merchants d JOIN merchants l ON l.code = d.code AND l.deleted_at IS NULL"
        " WHERE d.deletion_id = :deletion_id",
        "merchant",
    ),
    (
        "SELECT 'the store code ' || quote_literal(d.code) || ' is now used by another live store'"
        " FROM stores d JOIN stores l ON l.code = d.code AND l.deleted_at IS NULL"
        " WHERE d.deletion_id = :deletion_id",
        "store",
    ),
    (
        "SELECT 'merchant ' || quote_literal(m.code) || ' has another live program now (one live"
        " program per merchant)' FROM loyalty_programs d JOIN loyalty_programs l"
        " ON l.merchant_id = d.merchant_id AND l.deleted_at IS NULL"
        " JOIN merchants m ON m.id = d.merchant_id WHERE d.deletion_id = :deletion_id",
        "program",
    ),
    (
        "SELECT 'another live customer has the email ' || quote_literal(d.email) FROM customers d"
        " JOIN customers l ON l.merchant_id = d.merchant_id AND l.email = d.email"
        " AND l.deleted_at IS NULL WHERE d.deletion_id = :deletion_id",
        "customer",
    ),
    (
        "SELECT 'another live customer has the reference ' || quote_literal(d.customer_ref)"
        " FROM customers d JOIN customers l ON l.merchant_id = d.merchant_id"
        " AND l.customer_ref = d.customer_ref AND l.deleted_at IS NULL"
        " WHERE d.deletion_id = :deletion_id",
        "customer",
    ),
)


async def restore(session: AsyncSession, me: Principal, kind: str, row_id: int) -> int:
    """Bring back a deleted row with exactly what its deletion hid; returns how many rows.

    Refused, with the reason in words, when the row was deleted along with a parent (restore
    the parent) or when a code, email or program slot it held was taken meanwhile.
    The caller commits.
    """
    model = KINDS[kind]
    row: Any = await session.get(model, row_id, execution_options=ALL)
    merchant_id = (
        row.id if row is not None and kind == "merchant" else getattr(row, "merchant_id", None)
    )
    if row is None or not me.sees(merchant_id):
        raise DomainRefusal(f"this {kind} does not exist")
    if row.deleted_at is None:
        raise DomainRefusal(f"this {kind} is not deleted")
    if kind == "merchant" and not me.is_platform:
        raise DomainRefusal("only a platform admin restores a merchant")
    for parent_kind, column in _PARENTS.get(kind, ()):
        parent: Any = await session.get(
            KINDS[parent_kind], getattr(row, column), execution_options=ALL
        )
        if parent is not None and parent.deleted_at is not None:
            raise DomainRefusal(
                f"this {kind} was deleted with its {parent_kind}, or after it: restore the "
                f"{parent_kind} first"
            )
    conflicts: list[str] = []
    for sql, _ in _CONFLICTS:
        conflicts.extend(
            (await session.execute(text(sql), {"deletion_id": row.deletion_id})).scalars().all()
        )
    if conflicts:
        raise DomainRefusal(f"cannot restore this {kind}: " + "; ".join(sorted(set(conflicts))))
    try:
        async with session.begin_nested():
            return await soft_delete.restore(session, model, [row_id])
    except IntegrityError as exc:
        # A race with a concurrent edit, which the checks above could not see yet.
        raise DomainRefusal(
            f"cannot restore this {kind}: a code or email it holds is in use again ({_index(exc)})"
        ) from None


def _index(exc: IntegrityError) -> str:
    message = str(exc.orig)
    for name in (
        "merchants_code",
        "stores_code",
        "customers_merchant_email",
        "customers_merchant_ref",
        "loyalty_programs_merchant",
    ):
        if name in message:
            return name.replace("_", " ")
    return "unique key"


async def _live(session: AsyncSession, model: type[T], row_id: int, allowed: bool) -> T:
    row = await session.get(model, row_id)
    if row is None or not allowed:
        raise DomainRefusal(f"this {model.__name__.lower()} does not exist or is deleted")
    return row


def new_action_id() -> uuid.UUID:
    """An idempotency key for a form, made when the form is shown."""
    return uuid.uuid4()
