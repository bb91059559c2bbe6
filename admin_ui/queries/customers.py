"""Customers: the list, one customer, editing their contact details, and who may be erased
once the admin typed what confirms it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from admin_ui.problems import DomainRefusal
from admin_ui.queries.admins import Principal
from admin_ui.queries.common import (
    ALL,
    AnySelect,
    CsvExport,
    PageRequest,
    Rows,
    csv_time,
    deleted_filter,
    export,
    like,
    ordering,
    page,
    scoped,
)
from domain.identifiers import normalize_card_number
from domain.models import Customer, LoyaltyCard, Merchant
from streams.fields import Email

_email = TypeAdapter(Email)


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
    erased_at: datetime | None = None
    """When the personal data was erased (``domain.customers``); ``None`` before."""
    merchant_name: str = ""
    timezone: str = "UTC"
    """The merchant's time zone: the clock the customer's times are shown on."""
    created_at: datetime | None = None
    deleted_by: str | None = None
    hidden_with_merchant: bool = False
    """Deleted along with its merchant (restored with it, not on its own)."""

    @property
    def display_name(self) -> str:
        """First and last name, or the email, or the merchant's reference."""
        if self.erased_at is not None:
            # The pseudonym means nothing to a person: say what happened instead.
            return f"Erased customer #{self.id}"
        name = " ".join(p for p in (self.first_name, self.last_name) if p)
        return name or self.email or self.customer_ref or f"#{self.id}"


def _card_count() -> Any:
    return (
        select(func.count(LoyaltyCard.id))
        .where(LoyaltyCard.customer_id == Customer.id, LoyaltyCard.deleted_at.is_(None))
        .correlate(Customer)
        .scalar_subquery()
    )


def _customer_row(c: Customer, m: Merchant, cards: int) -> CustomerRow:
    return CustomerRow(
        c.id,
        c.merchant_id,
        m.code,
        c.email,
        c.customer_ref,
        c.first_name,
        c.last_name,
        c.phone,
        c.locale,
        cards,
        c.deleted_at,
        c.erased_at,
        m.name,
        m.timezone,
        c.created_at,
        c.deleted_by,
        c.deletion_id is not None and c.deletion_id == m.deletion_id,
    )


def _customer_query(me: Principal, request: PageRequest, *columns: Any) -> AnySelect:
    """The customers the list shows: ``columns`` selected (the list's, by default), with the
    admin's scope, the search and the filters."""
    query = (
        select(*(columns or (Customer, Merchant, _card_count())))
        .select_from(Customer)
        .join(Merchant, Merchant.id == Customer.merchant_id)
        .where(deleted_filter(Customer.deleted_at, request.mode))
    )
    query = scoped(query, Customer.merchant_id, me)
    chosen = request.filter_id("merchant")
    if chosen is not None:
        query = query.where(Customer.merchant_id == chosen)
    if request.search:
        pattern = like(request.search)
        query = query.where(
            or_(
                Customer.email.ilike(pattern),
                Customer.first_name.ilike(pattern),
                Customer.last_name.ilike(pattern),
                (Customer.first_name + " " + Customer.last_name).ilike(pattern),
                Customer.customer_ref.ilike(pattern),
                Merchant.code.ilike(pattern),
            )
        )
    return query


def _customer_order(request: PageRequest) -> list[Any]:
    keys = {
        # As the list names a customer: the full name, else the email, else the reference.
        "name": func.lower(
            func.coalesce(
                func.nullif(
                    func.trim(func.concat(Customer.first_name, " ", Customer.last_name)), ""
                ),
                Customer.email,
                Customer.customer_ref,
            )
        ),
        "email": Customer.email,
        "reference": Customer.customer_ref,
        "merchant": func.lower(Merchant.name),
        # Not by the number of cards: a count per customer to sort a million of them took
        # 6 s on the statistics benchmark's data.
        "joined": Customer.created_at,
    }
    return ordering(request, keys, [Customer.id.desc()], Customer.id)


async def list_customers(
    session: AsyncSession, me: Principal, request: PageRequest
) -> Rows[CustomerRow]:
    """Customers matching the search (email, names, reference or merchant code) and the
    ``merchant`` filter, newest first or sorted by ``name``, ``email``, ``reference``,
    ``merchant``, ``cards`` or ``joined``."""
    query = _customer_query(me, request)
    rows, total = await page(session, query, request, *_customer_order(request))
    return Rows([_customer_row(c, m, n) for c, m, n in rows], total)


CUSTOMER_CSV = (
    "email",
    "customer reference",
    "first name",
    "last name",
    "phone",
    "language",
    "merchant code",
    "merchant",
    "live cards",
    "joined",
    "erased",
    "deleted",
)


async def export_customers(session: AsyncSession, me: Principal, request: PageRequest) -> CsvExport:
    """The customers the list shows (every page of them), as CSV; an erased customer's
    pseudonyms are left out, as the page leaves them out."""

    # Plain columns, not customers as objects: a long file is made in a fraction of the time.
    columns = (
        Customer.erased_at,
        Customer.email,
        Customer.customer_ref,
        Customer.first_name,
        Customer.last_name,
        Customer.phone,
        Customer.locale,
        Merchant.code,
        Merchant.name,
        _card_count(),
        Customer.created_at,
        Customer.deleted_at,
        Merchant.timezone,
    )

    def cells(row: Any) -> list[Any]:
        erased, email, ref, first, last, phone, *rest = row
        locale, code, name, cards, created, deleted, zone = rest
        personal = [None] * 5 if erased else [email, ref, first, last, phone]
        return [
            *personal,
            locale,
            code,
            name,
            cards,
            csv_time(created, zone),
            csv_time(erased, zone),
            csv_time(deleted, zone),
        ]

    return await export(
        session,
        _customer_query(me, request, *columns),
        _customer_order(request),
        CUSTOMER_CSV,
        cells,
        "customers.csv",
    )


async def get_customer(
    session: AsyncSession, me: Principal, customer_id: int
) -> CustomerRow | None:
    """A customer this admin may see (deleted ones too), else ``None``."""
    row = (
        await session.execute(
            select(Customer, Merchant, _card_count())
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
    if customer.erased_at is not None:
        raise DomainRefusal("this customer was erased: their contact details cannot come back")
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


async def erasure_target(
    session: AsyncSession, me: Principal, customer_id: int, typed: str
) -> CustomerRow:
    """The customer (live or deleted) this admin may erase, once ``typed`` is the customer's
    email (case aside) or one of their card numbers (dashes and spaces aside): what the admin
    types to confirm an erasure, checked here, on the server. ``DomainRefusal`` otherwise.

    A customer erased already is given back whatever was typed (its email is a pseudonym by
    then): the erasure then answers that it is done already.
    """
    customer = await get_customer(session, me, customer_id)
    if customer is None:
        raise DomainRefusal("this customer does not exist")
    if customer.erased_at is not None:
        return customer
    text_ = typed.strip()
    numbers = set(
        (
            await session.scalars(
                select(LoyaltyCard.card_number)
                .where(LoyaltyCard.customer_id == customer_id)
                .execution_options(**ALL)
            )
        ).all()
    )
    by_email = customer.email is not None and text_.lower() == customer.email
    if not text_ or not (by_email or normalize_card_number(text_) in numbers):
        raise DomainRefusal(
            "to erase this customer, type their email or one of their card numbers exactly"
        )
    return customer
