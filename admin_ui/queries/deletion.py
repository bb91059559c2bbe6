"""Soft delete and restore of merchants, stores, programs, customers and cards, with the
admin's scope, what each takes along (counted before asking, and said after), and the reasons
a restore is refused, in words."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from admin_ui.problems import DomainRefusal
from admin_ui.queries.admins import Principal
from admin_ui.queries.common import ALL
from domain import soft_delete
from domain.models import Customer, LoyaltyCard, LoyaltyProgram, Merchant, SoftDeleteMixin, Store

KINDS: dict[str, type[SoftDeleteMixin]] = {
    "merchant": Merchant,
    "store": Store,
    "program": LoyaltyProgram,
    "customer": Customer,
    "card": LoyaltyCard,
}


@dataclass(frozen=True)
class Cascade:
    """The row a deletion hides (or a restore brings back), by name, and how many rows of
    each kind go (or come back) with it."""

    name: str
    stores: int = 0
    programs: int = 0
    customers: int = 0
    cards: int = 0

    @property
    def counts(self) -> tuple[tuple[int, str, str], ...]:
        """``(count, singular, plural)`` of each kind, stores first, cards last."""
        return (
            (self.stores, "store", "stores"),
            (self.programs, "program", "programs"),
            (self.customers, "customer", "customers"),
            (self.cards, "card", "cards"),
        )

    @property
    def total(self) -> int:
        """How many rows go (or come back) along with the row itself."""
        return self.stores + self.programs + self.customers + self.cards


# The rows a deletion of each kind hides along (``domain.soft_delete``'s cascade): the
# Cascade field, the model and its column naming the deleted row.
_ALONG: dict[str, tuple[tuple[str, type[SoftDeleteMixin], str], ...]] = {
    "merchant": (
        ("stores", Store, "merchant_id"),
        ("programs", LoyaltyProgram, "merchant_id"),
        ("customers", Customer, "merchant_id"),
        ("cards", LoyaltyCard, "merchant_id"),
    ),
    "program": (("cards", LoyaltyCard, "program_id"),),
    "customer": (("cards", LoyaltyCard, "customer_id"),),
}


def _name(kind: str, row: Any) -> str:
    """How a sentence names the row: a merchant by its name, the others with their kind."""
    if kind == "merchant":
        return str(row.name)
    if kind == "store":
        return f"store {row.name}"
    if kind == "program":
        return f"the program {row.name}"
    if kind == "card":
        return f"card {row.card_number}"
    if row.erased_at is not None:
        return f"erased customer #{row.id}"
    name = " ".join(p for p in (row.first_name, row.last_name) if p)
    return f"customer {name or row.email or row.customer_ref or '#' + str(row.id)}"


async def _visible(session: AsyncSession, me: Principal, kind: str, row_id: int) -> Any:
    """The live row of ``kind`` this admin may delete; ``DomainRefusal`` otherwise."""
    row: Any = await session.get(KINDS[kind], row_id)
    if row is None:
        raise DomainRefusal(f"this {kind} does not exist or is already deleted")
    merchant_id = row.id if kind == "merchant" else row.merchant_id
    if not me.sees(merchant_id):
        raise DomainRefusal(f"this {kind} does not exist or is already deleted")
    if kind == "merchant" and not me.is_platform:
        raise DomainRefusal("only a platform admin deletes a merchant")
    return row


async def cascade_of(session: AsyncSession, me: Principal, kind: str, row_id: int) -> Cascade:
    """What deleting the live row would hide along with it, counted now (to ask first):
    ``DomainRefusal`` when the admin may not delete it."""
    row = await _visible(session, me, kind, row_id)
    counts: dict[str, int] = {}
    for field, model, column in _ALONG.get(kind, ()):
        table: Any = model
        counts[field] = int(
            await session.scalar(
                select(func.count())
                .select_from(table)
                .where(getattr(table, column) == row_id, table.deleted_at.is_(None))
                .execution_options(**ALL)
            )
            or 0
        )
    return Cascade(_name(kind, row), **counts)


async def delete(session: AsyncSession, me: Principal, kind: str, row_id: int) -> Cascade:
    """Soft-delete a live row and what belongs to it; returns what was hidden along with it.
    The caller commits."""
    # Counted in the deletion's transaction, just before it: what the update then hides.
    hidden = await cascade_of(session, me, kind, row_id)
    await soft_delete.soft_delete(session, KINDS[kind], [row_id], by=me.actor)
    return hidden


async def _coming_back(
    session: AsyncSession, kind: str, row: Any, deletion_id: uuid.UUID | None
) -> Cascade:
    """What a restore of ``row`` brings back with it: the rows of its deletion (of the kinds
    below it, so never the row itself)."""
    counts: dict[str, int] = {}
    if deletion_id is None:
        # No deletion to follow (only soft_delete hides rows, and it always names one):
        # ``deletion_id == None`` would count every live row of the tables below.
        return Cascade(_name(kind, row))
    for field, model, _ in _ALONG.get(kind, ()):
        table: Any = model
        counts[field] = int(
            await session.scalar(
                select(func.count())
                .select_from(table)
                .where(table.deletion_id == deletion_id)
                .execution_options(**ALL)
            )
            or 0
        )
    return Cascade(_name(kind, row), **counts)


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


async def restore(session: AsyncSession, me: Principal, kind: str, row_id: int) -> Cascade:
    """Bring back a deleted row with exactly what its deletion hid; returns what came back
    along with it.

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
    back = await _coming_back(session, kind, row, row.deletion_id)
    try:
        async with session.begin_nested():
            await soft_delete.restore(session, model, [row_id])
            return back
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
