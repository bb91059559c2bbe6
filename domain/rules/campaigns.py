"""A campaign's terms as the rules read them (CONTRACT.md 7.1): when it runs and which lines
it covers. What it earns is ``rules.basket``'s."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# A multiplier in thousandths: 1000 is x1, the most precision the schema keeps (3 decimals).
MILLI = 1000


@dataclass(frozen=True)
class CampaignTerms:
    """A live campaign as the rules read it; times are judged in the merchant's zone."""

    campaign_id: int
    code: str
    multiplier_milli: int = MILLI
    bonus_points: int = 0
    min_basket_cents: int = 0
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    days: frozenset[int] = frozenset()
    """Weekdays it runs on, Monday 0; empty: every day."""
    hours: tuple[int, int] | None = None
    """Minutes after local midnight it runs from (included) and to (excluded)."""
    skus: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    budget_points: int | None = None
    max_awards_per_card: int | None = None

    def runs_at(self, at: datetime, local: datetime) -> bool:
        """Whether it runs at instant ``at`` (``local``: the same instant on the merchant's
        clock)."""
        if self.starts_at is not None and at < self.starts_at:
            return False
        if self.ends_at is not None and at >= self.ends_at:
            return False
        if self.days and local.weekday() not in self.days:
            return False
        if self.hours is not None:
            minute = local.hour * 60 + local.minute
            return self.hours[0] <= minute < self.hours[1]
        return True

    @property
    def filtered(self) -> bool:
        """Whether it names skus or categories (else it covers every earning line)."""
        return bool(self.skus or self.categories)

    def covers(self, sku: str | None, category: str | None) -> bool:
        """Whether a line of this sku and category is one it applies to (the basket's
        uncovered rest has neither)."""
        if not self.filtered:
            return True
        return (sku is not None and sku in self.skus) or (
            category is not None and category in self.categories
        )


def parse_hours(text: str) -> tuple[int, int]:
    """``"14:00-17:30"`` -> (840, 1050); ValueError unless the start is before the end."""
    start, sep, end = text.partition("-")
    if not sep:
        raise ValueError("must be HH:MM-HH:MM")
    first, last = _minute(start), _minute(end)
    if first >= last:
        raise ValueError("must be HH:MM-HH:MM with the start before the end")
    return first, last


def _minute(text: str) -> int:
    hours, sep, minutes = text.strip().partition(":")
    if not (sep and hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise ValueError("must be HH:MM-HH:MM")
    value = int(hours) * 60 + int(minutes)
    if int(minutes) > 59 or value > 24 * 60:
        raise ValueError("must be HH:MM-HH:MM")
    return value


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
