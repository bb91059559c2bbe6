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
from admin_ui.queries.common import ALL, PageRequest, Rows, deleted_filter, like, page, scoped
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
        c.erased_at,
    )


async def list_customers(
    session: AsyncSession, me: Principal, request: PageRequest
) -> Rows[CustomerRow]:
    """Customers matching the search (email, names, reference or merchant code)."""
    query = (
        select(Customer, Merchant.code, _card_count())
        .join(Merchant, Merchant.id == Customer.merchant_id)
        .where(deleted_filter(Customer.deleted_at, request.mode))
    )
    query = scoped(query, Customer.merchant_id, me)
    if request.search:
        pattern = like(request.search)
        query = query.where(
            or_(
                Customer.email.ilike(pattern),
                Customer.first_name.ilike(pattern),
                Customer.last_name.ilike(pattern),
                Customer.customer_ref.ilike(pattern),
                Merchant.code.ilike(pattern),
            )
        )
    rows, total = await page(session, query, request, Customer.id.desc())
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
