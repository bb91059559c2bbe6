"""Everything held about a customer, as JSON values (CONTRACT.md 7.6: ``loyalty customer
export`` and the customer page's download).

The customer, their cards (deleted ones too, saying so) with each card's ledger, purchases,
point lots, tier history and the devices registered for its pass, and the held returns whose
message named them. Secrets that would open the card page or the pass (link and QR tokens,
the pass's authentication token) are named by their existence only, push tokens masked. Who
acted on a card (staff, admins) is the staff's data, not the customer's: left out.
"""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeAlias, TypeVar

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.customers.finding import ALL, ERASED_PREFIX, CustomerNotFound
from domain.identifiers import mask
from domain.models import (
    AppleDeviceRegistration,
    Customer,
    HeldReturn,
    LedgerEntry,
    LoyaltyCard,
    LoyaltyProgram,
    Merchant,
    PointLot,
    Purchase,
    Store,
    TierChange,
)

EXPORT_FORMAT = "loyalty.customer-export.v1"
"""The ``format`` of an export: what a reader of the JSON can rely on."""

AnySelect: TypeAlias = "Select[*tuple[Any, ...]]"
S = TypeVar("S", bound=AnySelect)


def _plain(value: Any) -> Any:
    """A column's value as JSON has it."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, enum.Enum):  # the enums, as stored
        return value.value
    return value


def _row(obj: Any, columns: Sequence[str]) -> dict[str, Any]:
    return {name: _plain(getattr(obj, name)) for name in columns}


_CUSTOMER_FIELDS = (
    "id",
    "email",
    "customer_ref",
    "first_name",
    "last_name",
    "phone",
    "locale",
    "created_at",
    "updated_at",
    "deleted_at",
    "erased_at",
)
_CARD_FIELDS = (
    "card_number",
    "is_active",
    "stamp_count",
    "lifetime_stamps",
    "rewards_redeemed",
    "points_balance",
    "points_pending",
    "lifetime_points_earned",
    "points_redeemed",
    "points_voided",
    "points_expired",
    "tier",
    "qualifying_points",
    "last_stamp_at",
    "last_points_at",
    "last_redemption_at",
    "last_activity_at",
    "version",
    "created_at",
    "updated_at",
    "deleted_at",
)
# Who acted (``actor``, ``staff_ref``, ``staff_pin_id``) is the staff's data, not the
# customer's: left out. The notes are what was written about the customer: kept.
_LEDGER_FIELDS = (
    "entry_type",
    "stamps_delta",
    "points_delta",
    "pending_delta",
    "stamp_count_after",
    "points_balance_after",
    "purchase_amount_cents",
    "order_reference",
    "reward_code",
    "reward_description",
    "notes",
    "occurred_at",
    "recorded_at",
    "source_event_id",
)
_PURCHASE_FIELDS = (
    "order_reference",
    "amount_cents",
    "currency",
    "points_earned",
    "stamps_earned",
    "refunded_cents",
    "points_voided",
    "stamps_voided",
    "tier",
    "tier_points",
    "occurred_at",
    "source_event_id",
)
_LOT_FIELDS = (
    "lot_no",
    "points",
    "remaining",
    "earned_at",
    "releases_at",
    "expires_at",
    "pending",
    "source_event_id",
)
_TIER_FIELDS = ("from_tier", "to_tier", "qualifying_points", "occurred_at", "source_event_id")


async def export_customer(session: AsyncSession, customer_id: int) -> dict[str, Any]:
    """Everything held about the customer, as JSON values (``to_json`` writes them).

    ``{"format", "merchant": {code, name}, "customer": {...}, "cards": [{..., "store",
    "program", "card_page_link": bool, "google_wallet_object": bool, "ledger": [...],
    "purchases": [...], "point_lots": [...], "tier_history": [...],
    "wallet_registrations": [{device_library_id, pass_type_id, push_token (masked),
    registered_at}]}], "held_returns": [...]}``. Deleted rows are included and say so.
    Raises ``CustomerNotFound``.
    """
    found = (
        await session.execute(
            select(Customer, Merchant.code, Merchant.name)
            .join(Merchant, Merchant.id == Customer.merchant_id)
            .where(Customer.id == customer_id)
            # As the database has them now, not as the session may remember them.
            .execution_options(populate_existing=True, **ALL)
        )
    ).first()
    if found is None:
        raise CustomerNotFound(customer_id)
    customer, merchant_code, merchant_name = found
    stores = dict(
        (
            await session.execute(
                select(Store.id, Store.code)
                .where(Store.merchant_id == customer.merchant_id)
                .execution_options(**ALL)
            )
        ).all()
    )
    cards = (
        (
            await session.execute(
                owned(select(LoyaltyCard), customer_id)
                .order_by(LoyaltyCard.id)
                .execution_options(populate_existing=True)
            )
        )
        .scalars()
        .all()
    )
    card_ids = [c.id for c in cards]
    programs = dict(
        (
            await session.execute(
                select(LoyaltyProgram.id, LoyaltyProgram.name)
                .where(LoyaltyProgram.id.in_(sorted({c.program_id for c in cards})))
                .execution_options(**ALL)
            )
        ).all()
    )
    ledger = await _by_card(
        session, select(LedgerEntry), LedgerEntry.card_id, card_ids, LedgerEntry.id
    )
    purchases = await _by_card(session, select(Purchase), Purchase.card_id, card_ids, Purchase.id)
    lots = await _by_card(session, select(PointLot), PointLot.card_id, card_ids, PointLot.lot_no)
    tiers = await _by_card(session, select(TierChange), TierChange.card_id, card_ids, TierChange.id)
    devices = await _by_card(
        session,
        select(AppleDeviceRegistration),
        AppleDeviceRegistration.card_id,
        card_ids,
        AppleDeviceRegistration.id,
    )
    exported_cards = []
    for card in cards:
        entry = _row(card, _CARD_FIELDS)
        entry["store"] = stores.get(card.store_id) if card.store_id is not None else None
        entry["program"] = programs.get(card.program_id)
        # The secrets themselves would open the card page or the pass: their existence only.
        entry["card_page_link"] = bool(card.link_token)
        entry["google_wallet_object"] = card.google_object_id is not None
        entry["ledger"] = [
            {**_row(e, _LEDGER_FIELDS), "store": stores.get(e.store_id)}
            for e in ledger.get(card.id, [])
        ]
        entry["purchases"] = [
            {**_row(p, _PURCHASE_FIELDS), "store": stores.get(p.store_id)}
            for p in purchases.get(card.id, [])
        ]
        entry["point_lots"] = [_row(lot, _LOT_FIELDS) for lot in lots.get(card.id, [])]
        entry["tier_history"] = [_row(t, _TIER_FIELDS) for t in tiers.get(card.id, [])]
        entry["wallet_registrations"] = [
            {
                "device_library_id": d.device_library_id,
                "pass_type_id": d.pass_type_id,
                "push_token": _masked_token(d.push_token),
                "registered_at": _plain(d.created_at),
            }
            for d in devices.get(card.id, [])
        ]
        exported_cards.append(entry)
    held = await _held_returns(session, customer, [c.card_number for c in cards])
    return {
        "format": EXPORT_FORMAT,
        "merchant": {"code": merchant_code, "name": merchant_name},
        "customer": _row(customer, _CUSTOMER_FIELDS),
        "cards": exported_cards,
        "held_returns": [
            {
                "order_reference": h.order_reference,
                "store": stores.get(h.store_id),
                "refund_amount_cents": h.payload.get("refund_amount_cents"),
                "received_at": _plain(h.received_at),
                "applied_at": _plain(h.applied_at),
            }
            for h in held
        ],
    }


def to_json(export: Mapping[str, Any]) -> str:
    """An export as the file a person is given: indented UTF-8 JSON."""
    return json.dumps(export, indent=2, ensure_ascii=False) + "\n"


def _masked_token(token: str) -> str:
    return "erased" if token.startswith(ERASED_PREFIX) else mask(token)


def owned(query: S, customer_id: int) -> S:
    """``query`` narrowed to the customer's cards, deleted ones too."""
    return query.where(LoyaltyCard.customer_id == customer_id).execution_options(**ALL)


async def _by_card(
    session: AsyncSession, query: Select[Any], column: Any, card_ids: list[int], order: Any
) -> dict[int, list[Any]]:
    if not card_ids:
        return {}
    rows = (await session.execute(query.where(column.in_(card_ids)).order_by(order))).scalars()
    grouped: dict[int, list[Any]] = {}
    for row in rows:
        grouped.setdefault(row.card_id, []).append(row)
    return grouped


async def _held_returns(
    session: AsyncSession, customer: Customer, card_numbers: list[str]
) -> Sequence[HeldReturn]:
    """The merchant's held returns whose message named this customer's card."""
    card = HeldReturn.payload["card"]
    named = [card["card_number"].astext.in_(card_numbers)] if card_numbers else []
    if customer.email is not None:
        named.append(func.lower(card["email"].astext) == customer.email)
    if customer.customer_ref is not None:
        named.append(card["customer_ref"].astext == customer.customer_ref)
    if not named:
        return []
    return (
        (
            await session.execute(
                select(HeldReturn)
                .where(HeldReturn.merchant_id == customer.merchant_id, or_(*named))
                .order_by(HeldReturn.id)
            )
        )
        .scalars()
        .all()
    )
