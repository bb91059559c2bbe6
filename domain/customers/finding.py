"""Which customer a person means, and the refusals of ``domain.customers``.

A reference is read as ``loyalty card show`` reads one (a card number, dashes and spaces
ignored, a QR text, or an email within the merchant), deleted cards and customers included:
a soft-deleted customer can still be exported and erased.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.identifiers import normalize_card_number
from domain.lookup import UnknownMerchant
from domain.models import Customer, LoyaltyCard, Merchant

__all__ = [
    "ALL",
    "ERASED_PREFIX",
    "AmbiguousCustomer",
    "CustomerDataError",
    "CustomerNotFound",
    "ErasureRefused",
    "UnknownMerchant",
    "find_customer",
]

ERASED_PREFIX = "erased-"
"""Every pseudonym starts with it: erased emails, references and push tokens."""
ALL = {"include_deleted": True}
"""The execution options that show deleted rows too (``domain.soft_delete``)."""


class CustomerDataError(Exception):
    """A refusal of this module; ``str()`` is a sentence for a person."""


class CustomerNotFound(CustomerDataError):
    """No customer (live or deleted) has this id."""

    def __init__(self, customer_id: int) -> None:
        self.customer_id = customer_id
        super().__init__(f"no customer with id {customer_id}")


class AmbiguousCustomer(CustomerDataError):
    """An email held by several deleted customers of the merchant, and no live one."""

    def __init__(self, customer_ids: Sequence[int]) -> None:
        self.customer_ids = tuple(customer_ids)
        super().__init__(
            f"this email belongs to {len(customer_ids)} deleted customers: use a card number"
        )


class ErasureRefused(CustomerDataError):
    """An erasure that cannot be done now (its merchant is deleted)."""


async def find_customer(session: AsyncSession, ref: str, merchant_code: str) -> int | None:
    """The id of the merchant's customer that ``ref`` names, as ``loyalty card show`` reads
    it: a card number (dashes and spaces ignored), a QR text or an email; ``None`` when none.

    Deleted cards and customers are found too (a deleted customer can be exported and
    erased); an email held by a live customer and by deleted ones names the live one. Raises
    ``lookup.UnknownMerchant`` for a merchant that is not live, ``AmbiguousCustomer`` for an
    email of several deleted customers only.
    """
    merchant_id = await session.scalar(select(Merchant.id).where(Merchant.code == merchant_code))
    if merchant_id is None:
        raise UnknownMerchant(merchant_code)
    ref = ref.strip()
    if "@" in ref:
        rows = (
            await session.execute(
                select(Customer.id, Customer.deleted_at)
                .where(Customer.merchant_id == merchant_id, Customer.email == ref.lower())
                .order_by(Customer.id)
                .execution_options(**ALL)
            )
        ).all()
        live = [customer_id for customer_id, deleted_at in rows if deleted_at is None]
        if live:
            return int(live[0])
        if len(rows) > 1:
            raise AmbiguousCustomer([r[0] for r in rows])
        return int(rows[0][0]) if rows else None
    for column, value in (
        (LoyaltyCard.card_number, normalize_card_number(ref)),
        (LoyaltyCard.qr_token, ref),
    ):
        found = await session.scalar(
            select(LoyaltyCard.customer_id)
            .where(LoyaltyCard.merchant_id == merchant_id, column == value)
            .execution_options(**ALL)
        )
        if found is not None:
            return int(found)
    return None
