"""Words for what the engine says in codes, and the panel's formats for times and money."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal

from admin_ui.formatting import local_when, money

__all__ = ["local_when"]  # kept here for the pages that format through texts

REASONS: dict[str, str] = {
    "store_not_found": "This store is unknown or has been deleted.",
    "program_not_found": "The merchant has no loyalty program.",
    "program_inactive": "The loyalty program is switched off.",
    "card_not_found": "No card was found.",
    "card_inactive": "This card is deactivated.",
    "card_not_valid_at_store": "This card is only valid at the store that issued it.",
    "unsupported_currency": "The purchase's currency is not the program's.",
    "below_minimum_purchase": "The purchase is below the minimum amount to earn anything.",
    "stamps_not_enabled": "This program does not give stamps.",
    "points_not_enabled": "This program does not give points.",
    "stamp_cooldown": "A stamp was given too recently (cooldown): no stamp this time.",
    "daily_stamp_limit": "The card reached today's stamp limit.",
    "duplicate_order": "This order was already recorded.",
    "purchase_not_seen_yet": "The purchase has not been seen yet: the return is held.",
    "refund_exceeds_purchase": "The refund exceeds the purchase.",
    "points_shortfall": "The card has fewer points than the refund takes back.",
    "stamps_shortfall": "The card has fewer stamps than the refund takes back.",
    "insufficient_stamps": "The card does not have enough stamps for the reward yet.",
    "insufficient_points": "The card does not have enough points for this reward.",
    "unknown_reward": "This reward is not in the program's catalog.",
    "below_minimum_redemption": "The card is below the minimum balance to redeem points.",
    "self_enrollment_disabled": "Self-enrolment is switched off for this merchant.",
    "already_enrolled": "This customer already has a card: here it is.",
}

# A program's expiry policies (CONTRACT.md 7.3), as the program form offers them.
EXPIRY_POLICIES: dict[str, str] = {
    "inactivity": "After inactivity",
    "rolling": "Rolling (each purchase's points)",
    "calendar_year": "End of the following calendar year",
}

EXPIRY_POLICY_NOTE = (
    "A change applies to points earned from now on; points already earned keep their expiry."
)


def expiry_policy(code: str) -> str:
    """An expiry policy in words (the code itself when it is new to this table)."""
    return EXPIRY_POLICIES.get(code, code.replace("_", " "))


def expiry_policy_change(saved: str, chosen: str) -> str | None:
    """What saving a new expiry policy does, or ``None`` when the policy stays."""
    if chosen == saved or chosen not in EXPIRY_POLICIES:
        return None
    return (
        f"Changing from “{expiry_policy(saved)}” to “{expiry_policy(chosen)}”: only points "
        "earned after saving follow the new policy; points already earned keep their expiry."
    )


# How far back a program's qualifying points count (CONTRACT.md 7.4), as the form offers it.
TIER_WINDOWS: dict[str, str] = {
    "rolling_12_months": "Rolling 12 months",
    "calendar_year": "Calendar year",
}

TIERS_NOTE = (
    "A card moves up as soon as its qualifying points (points earned in the window, net of "
    "returns; welcome bonus and adjustments excluded) reach a tier, and down only at the daily "
    "run after the grace days."
)


STATUSES: dict[str, str] = {
    "applied": "Done",
    "rejected": "Refused",
    "held": "Held",
    "duplicate": "Already recorded (this action was sent before)",
}


def reason(code: str) -> str:
    """A reason code in words (the code itself when it is new to this table)."""
    return REASONS.get(code, code.replace("_", " "))


def reasons(codes: Iterable[str]) -> list[str]:
    """Every reason code in words."""
    return [reason(c) for c in codes]


def status(code: str) -> str:
    """An outcome's status in words."""
    return STATUSES.get(code, code)


def when(at: datetime | None) -> str:
    """A time as the panel shows it: UTC, to the minute."""
    if at is None:
        return "—"
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def cents(amount: int | Decimal | None, currency: str = "EUR") -> str:
    """An amount of cents as money: ``1234`` -> ``12.34 EUR``."""
    return money(amount, currency)


def yes_no(flag: bool) -> str:
    """``yes`` or ``no``."""
    return "yes" if flag else "no"


# --- webhooks (issue 16) ----------------------------------------------------------------------

# What each output type an endpoint may be sent is about (CONTRACT.md, outputs and 7.5).
WEBHOOK_EVENT_TYPES: dict[str, str] = {
    "event.processed": "the outcome of every input event",
    "card.balance_changed": "a card's balance changed",
    "points.expiring": "points of a card expire soon",
    "reward.available": "a card can now afford a reward",
    "tier.changed": "a card moved to another tier",
}

DELIVERY_STATUSES: dict[str, str] = {
    "pending": "Pending",
    "parked": "Parked",
    "delivered": "Delivered",
}


def webhook_event_type(code: str) -> str:
    """An output type with what it is about: ``card.balance_changed — a card's balance…``."""
    about = WEBHOOK_EVENT_TYPES.get(code)
    return f"{code} — {about}" if about else code


def delivery_status(code: str) -> str:
    """A delivery's status in words."""
    return DELIVERY_STATUSES.get(code, code)


def printable(text_: str | None, limit: int = 300) -> str:
    """Text from elsewhere (an endpoint's error reply) safe to show: control and layout
    characters written as escapes (``\\n``, ``\\x1b``, ``\\u202e``), cut after ``limit``."""
    if not text_:
        return ""
    # Python's "printable" leaves out controls, formats (a direction override would turn the
    # rest of the line around) and separators but the space; repr escapes them.
    shown = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text_)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"
