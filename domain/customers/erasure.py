"""Erasing a customer (CONTRACT.md 7.6): their personal data replaced by a pseudonym, what
the merchant's accounts need kept (the ledger's amounts, purchases by order reference), in the
caller's transaction:

- every card still active is deactivated through the engine's admin path
  (``engine.admin_actions.set_card_active``): a ``card_deactivated`` ledger row, ``version``
  bumped and a ``card.balance_changed`` with ``is_active`` false in the outbox, so ``loyalty
  audit`` stays clean, Kafka consumers and webhooks learn it, and the wallet sync voids the
  Apple passes (the served pass of an inactive card is ``voided``) and sets the Google
  objects ``INACTIVE``;
- the card page links and QR tokens are replaced (``card_links.close_public_access``);
- email and customer reference become a pseudonym, names and phone nothing, ``erased_at`` is
  set: a second erasure answers "already erased", and a later enrolment with the same email
  finds no customer and makes a new one;
- held returns and dead letters that carry the email (or the reference) get the pseudonym;
- the Apple push tokens wait for the void pass to be pushed (``push_tokens``).

Soft delete is apart from this: a deleted customer can be erased (its deleted cards are
deactivated too, unseen by anyone else), and restoring an erased customer brings it back
erased. Logs name the customer by id only.
"""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.logs import get_logger
from domain.audit_trail import record_change
from domain.card_links import close_public_access
from domain.customers.export import owned
from domain.customers.finding import (
    ALL,
    ERASED_PREFIX,
    CustomerNotFound,
    ErasureRefused,
)
from domain.customers.push_tokens import release_push_tokens
from domain.db import driver_connection
from domain.engine.admin_actions import set_card_active
from domain.models import Customer, DeadLetter, LoyaltyCard, Merchant, Store

log = get_logger(__name__)

ERASED_EMAIL_DOMAIN = "erased.invalid"
"""``.invalid`` is reserved (RFC 2606): a pseudonymous email can never reach anyone."""
ERASURE_NOTE = "customer erased"
"""The reason of the ``card_deactivated`` ledger rows an erasure writes."""


@dataclass(frozen=True)
class ErasureOutcome:
    """What an erasure did: ``already_erased`` when an earlier one had (nothing done now)."""

    customer_id: int
    merchant_id: int
    already_erased: bool
    erased_at: datetime
    cards: tuple[str, ...]
    """The customer's card numbers (deleted cards too)."""
    deactivated: tuple[str, ...]
    """The cards this erasure deactivated (the others were inactive already)."""


async def erase_customer(
    session: AsyncSession, customer_id: int, *, actor: str, now: datetime
) -> ErasureOutcome:
    """Erase the customer's personal data (see the module's docstring), in the session's
    transaction: the caller commits, and a failure anywhere leaves everything as it was.

    ``actor`` names who erased in the ledger (``admin:alice``, ``cli:root``). Raises
    ``CustomerNotFound``, or ``ErasureRefused`` when the customer's merchant is deleted (its
    cards cannot be deactivated then: restore the merchant first).
    """
    if now.tzinfo is None:
        raise ValueError("an erasure needs an aware datetime")
    # Locked: two erasures of one customer (two admins, a double click) run one after the
    # other, and the second one sees the first one's erased_at.
    customer = (
        await session.execute(
            select(Customer.merchant_id, Customer.email, Customer.customer_ref, Customer.erased_at)
            .where(Customer.id == customer_id)
            .with_for_update()
            .execution_options(**ALL)
        )
    ).first()
    if customer is None:
        raise CustomerNotFound(customer_id)
    cards = (
        await session.execute(
            owned(
                select(
                    LoyaltyCard.id,
                    LoyaltyCard.card_number,
                    LoyaltyCard.is_active,
                    LoyaltyCard.deleted_at,
                ),
                customer_id,
            ).order_by(LoyaltyCard.id)
        )
    ).all()
    numbers = tuple(c.card_number for c in cards)
    if customer.erased_at is not None:
        return ErasureOutcome(
            customer_id, customer.merchant_id, True, customer.erased_at, numbers, ()
        )
    merchant_live = await session.scalar(
        select(Merchant.id).where(Merchant.id == customer.merchant_id)
    )
    if merchant_live is None:
        raise ErasureRefused(
            "the customer's merchant is deleted: restore the merchant first, then erase"
        )
    conn = await driver_connection(session)
    deactivated: list[str] = []
    for card in cards:
        if not card.is_active:
            continue
        if card.deleted_at is not None:
            # The engine's admin path acts on live cards only. The card is made live for
            # this transaction alone (no one else sees it: the transaction has not committed)
            # and hidden again with its deletion as it was, so a restore still brings it back.
            await session.execute(_UNHIDE, {"id": card.id})
        await set_card_active(
            conn,
            action_id=uuid.uuid4(),
            card_id=card.id,
            active=False,
            actor=actor,
            now=now,
            reason=ERASURE_NOTE,
        )
        if card.deleted_at is not None:
            await session.execute(_HIDE, {"id": card.id, "at": card.deleted_at})
        deactivated.append(card.card_number)
    await close_public_access(session, [c.id for c in cards])
    old_email, old_ref = customer.email, customer.customer_ref
    pseudonym = ERASED_PREFIX + secrets.token_hex(16)
    new_email = f"{pseudonym}@{ERASED_EMAIL_DOMAIN}" if old_email is not None else None
    new_ref = pseudonym if old_ref is not None else None
    await session.execute(
        update(Customer)
        .where(Customer.id == customer_id)
        .values(
            email=new_email,
            customer_ref=new_ref,
            first_name=None,
            last_name=None,
            phone=None,
            erased_at=now,
        )
        .execution_options(synchronize_session=False, **ALL)
    )
    await _scrub_held_returns(session, customer.merchant_id, old_email, new_email, "email")
    await _scrub_held_returns(session, customer.merchant_id, old_ref, new_ref, "customer_ref")
    if old_email is not None and new_email is not None:
        await _scrub_dead_letters(session, customer.merchant_id, old_email, new_email)
    # Cards that were inactive already get no new push (their passes were voided when they
    # were deactivated), and deleted ones are never pushed: their tokens can go now. The
    # others wait for the wallet sync's push of the deactivation.
    inactive = [c.id for c in cards if not c.is_active]
    if inactive:
        await release_push_tokens(session, card_ids=inactive, wait_for_push=False)
    await release_push_tokens(session, customer_id=customer_id)
    await record_change(
        session,
        action="erase",
        entity="customer",
        entity_id=customer_id,
        merchant_id=customer.merchant_id,
        # No personal data: the trail must not keep what the erasure removed.
        before={"erased_at": None, "cards": list(numbers)},
        after={"erased_at": now.isoformat(), "cards_deactivated": deactivated},
    )
    log.info(
        "customer_erased",
        customer_id=customer_id,
        merchant_id=customer.merchant_id,
        cards=len(numbers),
        deactivated=len(deactivated),
    )
    return ErasureOutcome(
        customer_id, customer.merchant_id, False, now, numbers, tuple(deactivated)
    )


_UNHIDE = text("UPDATE loyalty_cards SET deleted_at = NULL WHERE id = :id")
_HIDE = text("UPDATE loyalty_cards SET deleted_at = :at WHERE id = :id")


# The card reference of the stored message becomes the pseudonym's; an email is compared as
# the engine compares it (case aside), a customer reference exactly.
_SCRUB_HELD = {
    "email": text(
        "UPDATE held_returns SET payload = jsonb_set(payload, '{card}',"
        " jsonb_build_object('email', CAST(:new AS text)))"
        " WHERE merchant_id = :merchant_id AND lower(payload->'card'->>'email') = :old"
    ),
    "customer_ref": text(
        "UPDATE held_returns SET payload = jsonb_set(payload, '{card}',"
        " jsonb_build_object('customer_ref', CAST(:new AS text)))"
        " WHERE merchant_id = :merchant_id AND payload->'card'->>'customer_ref' = :old"
    ),
}


async def _scrub_held_returns(
    session: AsyncSession, merchant_id: int, old: str | None, new: str | None, kind: str
) -> None:
    """Held returns that named the customer by email (or reference) name the pseudonym
    instead: applied later, they still find the same (erased) customer's card."""
    if old is None or new is None:
        return
    await session.execute(_SCRUB_HELD[kind], {"merchant_id": merchant_id, "old": old, "new": new})


def _literal_like(value: str) -> str:
    """An ``ILIKE`` pattern matching exactly ``value`` (case aside)."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def _scrub_dead_letters(
    session: AsyncSession, merchant_id: int, old_email: str, new_email: str
) -> None:
    """Dead letters (copies of broken inputs) from the merchant's stores that carry the email
    get the pseudonym in their key and payload. A dead letter names no merchant: one that
    names one of the merchant's store codes is taken as the merchant's."""
    pattern = re.compile(re.escape(old_email), re.IGNORECASE)
    mentions = f"%{_literal_like(old_email)}%"
    rows = (
        await session.execute(
            select(DeadLetter.id, DeadLetter.key, DeadLetter.payload)
            .where(
                DeadLetter.payload.ilike(mentions) | DeadLetter.key.ilike(mentions),
                select(Store.id)
                .where(
                    Store.merchant_id == merchant_id,
                    func.strpos(DeadLetter.payload, '"' + Store.code + '"') > 0,
                )
                .exists(),
            )
            # Deleted stores too: their old messages are the merchant's all the same.
            .execution_options(**ALL)
        )
    ).all()
    for dead_id, key, payload in rows:
        await session.execute(
            update(DeadLetter)
            .where(DeadLetter.id == dead_id)
            .values(
                key=pattern.sub(new_email, key) if key is not None else None,
                payload=pattern.sub(new_email, payload),
            )
        )
