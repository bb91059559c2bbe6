"""Points expiry after inactivity."""

from __future__ import annotations

from datetime import datetime, timedelta

from core.enums import LedgerType
from domain.rules.values import CardBalance, Change, Decision, ProgramTerms


def expiry_cutoff(terms: ProgramTerms, as_of: datetime) -> datetime | None:
    """Cards whose last activity is older than this lose their points; None: never."""
    if terms.points_expiration_days is None or not terms.points_enabled:
        return None
    return as_of - timedelta(days=terms.points_expiration_days)


def decide_expiry(terms: ProgramTerms, card: CardBalance, as_of: datetime) -> Decision:
    """The whole balance goes when the last earn, redeem, void or adjustment is too old.

    The engine runs the same rule set-based in SQL for whole merchants; this is the one-card
    form, the reference the SQL is tested against.
    """
    cutoff = expiry_cutoff(terms, as_of)
    if cutoff is None or card.points_balance <= 0 or card.last_activity_at is None:
        return Decision()
    if card.last_activity_at >= cutoff:
        return Decision()
    return Decision((Change(LedgerType.POINTS_EXPIRED, points_delta=-card.points_balance),))
