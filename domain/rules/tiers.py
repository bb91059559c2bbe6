"""Tiers (CONTRACT.md 7.4): which tier a card's qualifying points give, the window they are
counted in, and when a card moves down.

Qualifying points are the points a card's purchases earned in the window, net of what their
returns voided (welcome bonuses and adjustments do not count). A card moves up as soon as
they reach a tier's threshold; it moves down only at the daily run, once it has been below its
tier's threshold for ``tier_grace_days``. Multipliers apply to what a card earns once in a tier.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec

MILLI = 1000


class TierWindow:
    """How far back qualifying points count."""

    ROLLING_12_MONTHS = "rolling_12_months"
    CALENDAR_YEAR = "calendar_year"
    ALL = (ROLLING_12_MONTHS, CALENDAR_YEAR)


class TierTerms(msgspec.Struct, frozen=True, gc=False):
    """One tier of a program: thresholds ascend, the first is 0."""

    code: str
    name: str
    threshold_points: int
    multiplier_milli: int = MILLI


class TierPlan(msgspec.Struct, frozen=True, gc=False):
    """A program's tiers with their window and grace days (no tiers: none of this applies)."""

    tiers: tuple[TierTerms, ...] = ()
    window: str = TierWindow.ROLLING_12_MONTHS
    grace_days: int = 0

    def tier(self, code: str | None) -> TierTerms | None:
        """The tier with this id (None: unknown or no tiers)."""
        for t in self.tiers:
            if t.code == code:
                return t
        return None


NO_TIERS = TierPlan()
"""A program without tiers."""


def tier_for(plan: TierPlan, qualifying: int) -> TierTerms | None:
    """The highest tier whose threshold ``qualifying`` points reach."""
    found: TierTerms | None = None
    for t in plan.tiers:
        if qualifying >= t.threshold_points:
            found = t
    return found


def held_tier(plan: TierPlan, code: str | None, qualifying: int) -> str | None:
    """The tier a card is shown in: its own, or, when it holds none the program knows (a card
    from before the program had tiers, a tier since removed), the one its points give."""
    if plan.tier(code) is not None:
        return code
    due = tier_for(plan, qualifying)
    return due.code if due is not None else None


def rank(plan: TierPlan, code: str | None) -> int:
    """A tier's place in the program (-1: none)."""
    for i, t in enumerate(plan.tiers):
        if t.code == code:
            return i
    return -1


def points_to_next(plan: TierPlan, code: str | None, qualifying: int) -> int | None:
    """Qualifying points still missing for the tier above ``code`` (None at the top)."""
    above = rank(plan, code) + 1
    if not plan.tiers or above >= len(plan.tiers):
        return None
    return max(0, plan.tiers[above].threshold_points - qualifying)


def window_start(plan: TierPlan, at: datetime, zone: ZoneInfo) -> datetime:
    """The start of the window qualifying points are counted in, for an event at ``at``:
    the same moment a year before (merchant's clock; 29 Feb counts from 28 Feb), or 1
    January of the event's year."""
    local = at.astimezone(zone)
    if plan.window == TierWindow.CALENDAR_YEAR:
        return datetime(local.year, 1, 1, tzinfo=zone)
    day = 28 if (local.month, local.day) == (2, 29) else local.day
    return local.replace(year=local.year - 1, day=day)


def with_multiplier(points: int, multiplier_milli: int) -> int:
    """Points times a tier's multiplier, floored (CONTRACT.md 7.1: "times the card's tier
    multiplier, floored")."""
    return points * multiplier_milli // MILLI


def move_up(plan: TierPlan, current: str | None, qualifying: int) -> TierTerms | None:
    """The tier a card moves up to at an event (None: it stays where it is)."""
    reached = tier_for(plan, qualifying)
    if reached is not None and rank(plan, reached.code) > rank(plan, current):
        return reached
    return None


class DailyTier(msgspec.Struct, frozen=True, gc=False):
    """The daily run's verdict on a card's tier."""

    tier: str | None
    below_since: datetime | None
    changed: bool = False


def judge_daily(
    plan: TierPlan,
    current: str | None,
    qualifying: int,
    below_since: datetime | None,
    at: datetime,
) -> DailyTier:
    """At the daily run: up to the tier the points give at once; down to it only when the
    card has been below its tier since ``tier_grace_days`` or more (counted from the first
    run that found it below)."""
    due = tier_for(plan, qualifying)
    due_code = due.code if due is not None else None
    if rank(plan, due_code) >= rank(plan, current):
        return DailyTier(due_code, None, due_code != current)
    since = below_since or at
    if at - since >= timedelta(days=plan.grace_days):
        return DailyTier(due_code, None, True)
    return DailyTier(current, since, False)


def qualifying_in_window(
    purchases: Sequence[tuple[datetime, int]], start: datetime, end: datetime
) -> int:
    """Net points of the purchases made in [start, end] (the one-card form of the daily
    run's SQL)."""
    return sum(points for at, points in purchases if start <= at <= end)


def tier_plan(
    tiers: Sequence[dict[str, object]] | None, window: str | None, grace_days: int | None
) -> TierPlan:
    """A program's tier columns (``loyalty_programs.tiers``, JSON: ``[{id, name,
    threshold_points, multiplier}]``) as the rules read them."""
    return TierPlan(
        tiers=tuple(
            TierTerms(
                code=str(t["id"]),
                name=str(t.get("name") or t["id"]),
                threshold_points=int(str(t["threshold_points"])),
                multiplier_milli=round(float(str(t.get("multiplier", 1))) * MILLI),
            )
            for t in tiers or ()
        ),
        window=window or TierWindow.ROLLING_12_MONTHS,
        grace_days=grace_days or 0,
    )
