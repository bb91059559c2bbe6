"""Soft delete and restore of merchants, stores, programs, customers and cards, with the
admin's scope and the reasons a restore is refused, in words."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
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
