"""Whether an event can act at all: its store, its program, its card, its order, its
customer. The engine looks the facts up; these decide, so every reason code of the contract
is decided by a plain function over plain values."""

from __future__ import annotations

from dataclasses import dataclass

from domain.rules.enrol import card_valid_at_store
from domain.rules.values import Reason


@dataclass(frozen=True, slots=True)
class StoreFacts:
    """What is known of an event's store: whether it exists, and its merchant's program."""

    found: bool
    has_program: bool = False
    program_active: bool = False


def store_refusal(store: StoreFacts, *, needs_active_program: bool = True) -> Reason | None:
    """Why an event cannot act at this store, or ``None``.

    A return still applies when the program was switched off since the purchase: it only
    takes back what was given (``needs_active_program=False``).
    """
    if not store.found:
        return Reason.STORE_NOT_FOUND
    if not store.has_program:
        return Reason.PROGRAM_NOT_FOUND
    if needs_active_program and not store.program_active:
        return Reason.PROGRAM_INACTIVE
    return None


@dataclass(frozen=True, slots=True)
class CardFacts:
    """What is known of the card a reference names, as seen from the event's store."""

    found: bool
    same_merchant: bool = False
    cross_location: bool = True
    card_store_id: int | None = None
    store_id: int = 0
    is_active: bool = False


def card_refusal(card: CardFacts) -> Reason | None:
    """Why the card cannot be used here, or ``None``. A card of another merchant is never
    found; one that exists but is refused still gets named in the result."""
    if not card.found or not card.same_merchant:
        return Reason.CARD_NOT_FOUND
    if not card_valid_at_store(card.cross_location, card.card_store_id, card.store_id):
        return Reason.CARD_NOT_VALID_AT_STORE
    if not card.is_active:
        return Reason.CARD_INACTIVE
    return None


def order_refusal(already_recorded: bool) -> Reason | None:
    """A second purchase with an order reference of the merchant is refused."""
    return Reason.DUPLICATE_ORDER if already_recorded else None


def return_waits(purchase_seen: bool) -> Reason | None:
    """A return whose purchase has not arrived yet is held until it does."""
    return None if purchase_seen else Reason.PURCHASE_NOT_SEEN_YET


def enrolment_finds(existing_card: bool) -> Reason | None:
    """Enrolling again returns the card the customer has (one per merchant, or per store
    with cross-location off), reported as ``already_enrolled``."""
    return Reason.ALREADY_ENROLLED if existing_card else None
