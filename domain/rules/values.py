"""The plain values the rules read and return: no database, no Kafka, no clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property, lru_cache
from zoneinfo import ZoneInfo

import msgspec

from core.enums import ExpiryPolicy, LedgerType, ProgramType, ReasonCode
from domain.rules.campaigns import CampaignTerms
from domain.rules.tiers import NO_TIERS, TierPlan

# The rules speak the contract's reason codes (CONTRACT.md section 4), one list for both.
Reason = ReasonCode


@dataclass(frozen=True)
class RewardTerms:
    """One entry of a points program's catalog."""

    code: str
    name: str
    points_required: int
    is_active: bool = True


@dataclass(frozen=True)
class ProgramTerms:
    """What a merchant's program promises, as the rules need it."""

    program_id: int
    merchant_id: int
    type: ProgramType
    currency: str = "EUR"
    stamps_target: int = 10
    stamps_reward_description: str | None = None
    points_per_euro: int = 0
    minimum_purchase_cents: int = 0
    cooldown_minutes: int = 0
    max_daily_stamps: int | None = None
    welcome_bonus_points: int = 0
    minimum_redemption_points: int = 0
    points_expiration_days: int | None = None
    expiry_policy: ExpiryPolicy = ExpiryPolicy.INACTIVITY
    pending_days: int = 0
    expiry_reminder_days: int = 30
    is_active: bool = True
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    rewards: dict[str, RewardTerms] = field(default_factory=dict)
    non_earning_categories: frozenset[str] = frozenset()
    campaigns: tuple[CampaignTerms, ...] = ()
    """The active campaigns, in id order."""
    tiers: TierPlan = NO_TIERS
    """The program's tiers (none: as in v1)."""

    # Read several times per event: computed once per program (a batch loads it once).
    @cached_property
    def stamps_enabled(self) -> bool:
        return self.type in (ProgramType.STAMPS, ProgramType.HYBRID)

    @cached_property
    def points_enabled(self) -> bool:
        return self.type in (ProgramType.POINTS, ProgramType.HYBRID)

    def local_day(self, at: datetime) -> date:
        """The merchant's calendar day of an instant (the daily stamp cap counts per day)."""
        return _local_day(at, self.timezone)


@dataclass
class CardBalance:
    """A card's projection: balances and the times the rules look at.

    Mutable on purpose: the engine applies a batch's events one after the other to the same
    object, so the second event of a card sees what the first one did.
    """

    card_id: int
    stamp_count: int = 0
    points_balance: int = 0
    lifetime_stamps: int = 0
    rewards_redeemed: int = 0
    lifetime_points_earned: int = 0
    points_redeemed: int = 0
    points_voided: int = 0
    points_expired: int = 0
    last_stamp_at: datetime | None = None
    stamp_day: date | None = None
    stamp_day_count: int = 0
    last_points_at: datetime | None = None
    last_redemption_at: datetime | None = None
    last_activity_at: datetime | None = None
    is_active: bool = True
    version: int = 1
    points_pending: int = 0
    """Earned, not yet spendable (``pending_days``); not part of ``points_balance``."""
    lot_count: int = 0
    """Lots the card ever had: the next lot's number is one more."""
    dated_points: int = 0
    """Points in lots with an expiry date of their own (``rolling``, ``calendar_year``)."""
    next_expiry_at: datetime | None = None
    next_expiry_points: int = 0
    """The first expiry date among those lots, and the points due on that local day."""
    tier: str | None = None
    qualifying_points: int = 0
    """Points its purchases earned since ``qualifying_from``, net of voids (CONTRACT.md 7.4)."""
    qualifying_from: datetime | None = None
    tier_below_since: datetime | None = None


@lru_cache(maxsize=1024)
def _local_day(at: datetime, zone: ZoneInfo) -> date:
    # An event's day is asked for by its stamp history and by its projection in turn; the
    # zone conversion is the costly part.
    return at.astimezone(zone).date()


class Change(msgspec.Struct, frozen=True, gc=False):
    """One ledger entry a rule decided on; ``apply_change`` turns it into balances."""

    entry_type: LedgerType
    stamps_delta: int = 0
    points_delta: int = 0
    reward_code: str | None = None
    reward_description: str | None = None
    notes: str | None = None
    pending_delta: int = 0
    """Moves the card's pending points (a pending earn, a release, a void of pending)."""
    from_lot: int | None = None
    """The pending lot a negative ``pending_delta`` is taken from (a return's own purchase)."""
    lots: tuple[tuple[int, int], ...] = ()
    """``(lot_no, points)`` a debit takes, when the rule names them (the expiry run's);
    otherwise the lots that expire first."""


class Decision(msgspec.Struct, frozen=True, gc=False):
    """What a rule decided: the changes to make and the reasons it refused anything."""

    changes: tuple[Change, ...] = ()
    reasons: tuple[Reason, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.changes)


def refused(*reasons: Reason) -> Decision:
    """A decision that changes nothing."""
    return Decision((), tuple(reasons))


class StampHistory(msgspec.Struct, frozen=True, gc=False):
    """What the stamp rules need to know about earlier stamps of a card.

    ``last_stamp_before`` is the latest stamp at or before the purchase's time; ``stamps_on_day``
    the stamps already earned on the purchase's local day.
    """

    last_stamp_before: datetime | None
    stamps_on_day: int
