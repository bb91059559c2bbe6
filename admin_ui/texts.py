"""Words for what the engine says in codes, and the panel's formats for times and money."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal

from babel.numbers import get_decimal_symbol, get_group_symbol

from admin_ui.formatting import current_locale, local_when, money, number

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
    """A time in UTC, to the minute: for what belongs to no merchant. A merchant's times are
    ``local_when(at, zone)``'s."""
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
    """An output type in words (``card.balance_changed`` -> ``A card's balance changed``);
    the code itself, as a shop system receives it, is for a tooltip."""
    about = WEBHOOK_EVENT_TYPES.get(code)
    return about[:1].upper() + about[1:] if about else words(code)


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


# --- plain words for codes (issue 18) -------------------------------------------------------

_ACRONYMS = {"pin": "PIN", "qr": "QR", "sku": "SKU", "skus": "SKUs", "url": "URL", "id": "id"}


def words(code: str) -> str:
    """A code or a field's name as words: ``points_per_euro`` -> ``points per euro``,
    ``card.balance_changed`` -> ``card balance changed``, ``pin_hash`` -> ``PIN hash``."""
    parts = [p for p in re.split(r"[_.\s]+", code.strip()) if p]
    return " ".join(_ACRONYMS.get(p.lower(), p) for p in parts)


# Fields whose name says how they are stored rather than what they are.
_FIELD_NAMES: dict[str, str] = {
    "password_hash": "password",
    "pin_hash": "PIN",
    "token_hash": "token",
    "pairing_code_hash": "pairing code",
    "is_active": "switched on",
    "deleted_at": "deleted",
    "stamps_reward_value_cents": "stamp reward value (cents)",
    "point_value_cents": "point value (cents)",
    "minimum_purchase_cents": "minimum purchase (cents)",
    "min_basket_cents": "minimum basket (cents)",
    "amount_cents": "amount (cents)",
    "event_types": "sent",
    "customer_ref": "customer reference",
}
_ITEM = re.compile(r"\[(\d+)\]")


def field_name(path: str) -> str:
    """A field's path as words: ``points_per_euro`` -> ``points per euro``,
    ``points_rewards[0].name`` -> ``points rewards 1, name``, ``password_hash`` ->
    ``password``."""
    parts: list[str] = []
    for part in _ITEM.sub(lambda m: f".#{int(m.group(1)) + 1}", path).split("."):
        if not part:
            continue
        if part.startswith("#"):
            parts[-1:] = [f"{parts[-1]} {part[1:]}" if parts else part[1:]]
        else:
            parts.append(_FIELD_NAMES.get(part, words(part)))
    return ", ".join(parts)


AUDIT_ACTIONS: dict[str, str] = {
    "create": "Created",
    "update": "Changed",
    "delete": "Deleted",
    "restore": "Restored",
    "activate": "Switched on",
    "deactivate": "Switched off",
    "adjust": "Balance adjusted",
    "pin_reset": "PIN reset",
    "password_reset": "Password reset",
    "secret_reset": "Secret changed",
    "unlock": "Unlocked",
    "erase": "Erased",
}

ENTITY_NAMES: dict[str, str] = {
    "admin_user": "admin user",
    "card": "card",
    "loyalty_card": "card",
    "program": "program",
    "loyalty_program": "program",
    "staff_pin": "staff PIN",
    "terminal_device": "terminal",
    "webhook_endpoint": "webhook endpoint",
}

_SOURCES = {"panel": "panel", "cli": "command line", "system": "system"}


def audit_action(code: str) -> str:
    """An audit entry's action in words (``pin_reset`` -> ``PIN reset``)."""
    return AUDIT_ACTIONS.get(code, words(code).capitalize())


def entity(code: str) -> str:
    """A kind of row in words (``terminal_device`` -> ``terminal``)."""
    return ENTITY_NAMES.get(code, words(code))


def actor(name: str, source: str) -> str:
    """Who made a change and from where: ``alice (panel)``, ``ops (command line)``; the
    engine's ``admin:``/``cli:`` prefixes are the source, said in words."""
    prefix, colon, person = name.partition(":")
    if colon and prefix in ("admin", "cli"):
        source = "panel" if prefix == "admin" else "cli"
    else:
        person = name
    # Said as the other pages say them (``pages.common.actor_words``).
    if source == "system" and person in ("system", ""):
        return "the system"
    if person == "self":
        return "the customer"
    return f"{person} ({_SOURCES.get(source, words(source))})"


def value(shown: object) -> str:
    """A value of a change as a person reads it: yes/no, lists and objects without JSON's
    brackets and quotes, field names as words, numbers in the admin's language
    (``[{"id": "gold", "threshold_points": 1000}]`` -> ``id gold, threshold points 1,000``)."""
    if shown is None:
        return "—"
    if isinstance(shown, bool):
        return yes_no(shown)
    if isinstance(shown, int | float | Decimal):
        digits = 0 if isinstance(shown, int) else len(str(shown).partition(".")[2])
        return number(shown, digits=digits)
    if isinstance(shown, list):
        return "; ".join(value(v) for v in shown) if shown else "none"
    if isinstance(shown, dict):
        return ", ".join(f"{field_name(str(k))} {value(v)}" for k, v in shown.items()) or "none"
    return str(shown)


def raw(shown: object) -> str:
    """A value as stored, for an engineer's tooltip: text as it is, the rest as JSON."""
    if isinstance(shown, str):
        return shown
    return json.dumps(shown, ensure_ascii=False)


def chart_number(digits: int = 0, suffix: str = "") -> str:
    """A JavaScript function for an echart's axis labels and tooltips: a number with the
    admin's language's separators (what ``formatting.number`` writes), ``digits`` decimals
    and ``suffix`` after it; for ``":formatter"`` and ``":valueFormatter"`` options."""
    locale = current_locale()
    group = json.dumps(str(get_group_symbol(locale)))
    decimal = json.dumps(str(get_decimal_symbol(locale)))
    tail = json.dumps(suffix)
    return (
        "(v) => { if (v === null || v === undefined || v === '-') return '—';"
        f" const [i, f] = Math.abs(Number(v)).toFixed({int(digits)}).split('.');"
        f" return (Number(v) < 0 ? '-' : '') + i.replace(/\\B(?=(\\d{{3}})+(?!\\d))/g, {group})"
        f" + (f ? {decimal} + f : '') + {tail}; }}"
    )
