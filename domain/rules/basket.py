"""Earning on a basket: line items, non-earning categories and campaigns (CONTRACT.md 7.1).

Every amount is kept exact in integers: a line's value is ``amount_cents * points_per_euro *
multiplier_milli`` in units of 1/100,000 point, and only sums are floored, as the contract
says ("the purchase's points are the floor of that sum"). What each line and each bonus
earned is returned as ``Earnings``, recorded with the purchase, so a later return voids
exactly that (``void_lines``) whatever the rules say by then.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import msgspec
from msgspec.structs import replace

from core.commands import Line, ReturnedLine
from domain.rules.campaigns import MILLI, CampaignTerms
from domain.rules.values import ProgramTerms, Reason

_SCALE = 100 * MILLI  # cents -> euros, and the multiplier's thousandths


class CampaignUse(msgspec.Struct, frozen=True, gc=False):
    """What a campaign may still award: points left in its budget (None: no budget) and
    how many purchases of this card it rewarded already."""

    budget_left: int | None = None
    card_awards: int = 0


class LineEarning(msgspec.Struct, frozen=True, gc=False):
    """One line of a purchase as recorded: what it was and what it earned."""

    sku: str
    quantity: int
    amount_cents: int
    points: int
    category: str | None = None
    earning: bool = True
    """False for a line of a non-earning category: it counts in no basket."""
    returned: int = 0
    """Units returned so far."""
    voided: int = 0
    """Points voided so far for those units (shortfalls included)."""


class BonusEarning(msgspec.Struct, frozen=True, gc=False):
    """A campaign's bonus on a purchase as recorded."""

    campaign: str
    points: int
    min_basket_cents: int
    voided: bool = False


class Earnings(msgspec.Struct, frozen=True, gc=False):
    """What a purchase's lines, its uncovered rest and its campaigns' bonuses earned."""

    lines: tuple[LineEarning, ...] = ()
    rest_cents: int = 0
    rest_points: int = 0
    bonuses: tuple[BonusEarning, ...] = ()
    tier_milli: int = MILLI
    """The card's tier multiplier when earned (CONTRACT.md 7.4): a return voids with it."""

    def as_json(self) -> dict[str, Any]:
        """The record as stored with the purchase (``purchases.earnings``)."""
        record = self._record()
        if self.tier_milli != MILLI:  # records without tiers stay as they were
            record["tier_milli"] = self.tier_milli
        return record

    def _record(self) -> dict[str, Any]:
        return {
            "lines": [
                {
                    "sku": ln.sku,
                    "category": ln.category,
                    "earning": ln.earning,
                    "quantity": ln.quantity,
                    "amount_cents": ln.amount_cents,
                    "points": ln.points,
                    "returned": ln.returned,
                    "voided": ln.voided,
                }
                for ln in self.lines
            ],
            "rest_cents": self.rest_cents,
            "rest_points": self.rest_points,
            "bonuses": [
                {
                    "campaign": b.campaign,
                    "points": b.points,
                    "min_basket_cents": b.min_basket_cents,
                    "voided": b.voided,
                }
                for b in self.bonuses
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Earnings:
        """The record as ``as_json`` stored it."""
        return cls(
            lines=tuple(
                LineEarning(
                    sku=ln["sku"],
                    quantity=ln["quantity"],
                    amount_cents=ln["amount_cents"],
                    points=ln["points"],
                    category=ln.get("category"),
                    earning=ln.get("earning", True),
                    returned=ln.get("returned", 0),
                    voided=ln.get("voided", 0),
                )
                for ln in data.get("lines", ())
            ),
            rest_cents=data.get("rest_cents", 0),
            rest_points=data.get("rest_points", 0),
            bonuses=tuple(
                BonusEarning(b["campaign"], b["points"], b["min_basket_cents"], b["voided"])
                for b in data.get("bonuses", ())
            ),
            tier_milli=data.get("tier_milli", MILLI),
        )


class BasketPoints(msgspec.Struct, frozen=True, gc=False):
    """What a basket earns: points in all, each campaign's share, and the record to keep."""

    points: int
    earning_cents: int
    """The earning lines' total and the uncovered rest: what minimums are judged on."""
    awards: tuple[tuple[CampaignTerms, int], ...] = ()
    """Each campaign that changed the points, with what it added (negative below x1)."""
    earnings: Earnings | None = None
    """None for a basket without lines where no campaign applied: voided in proportion."""


def earning_cents(terms: ProgramTerms, amount_cents: int, lines: Sequence[Line]) -> int:
    """The part of the amount that earns: all of it but the non-earning categories' lines."""
    excluded = terms.non_earning_categories
    if not excluded:
        return amount_cents
    return amount_cents - sum(ln.amount_cents for ln in lines if ln.category in excluded)


def basket_points(
    terms: ProgramTerms,
    amount_cents: int,
    lines: Sequence[Line],
    at: datetime,
    uses: Mapping[int, CampaignUse],
) -> BasketPoints:
    """The points of a purchase (CONTRACT.md 7.1), before any tier multiplier.

    Each earning line (and the uncovered rest) earns at the highest multiplier among the
    campaigns that apply to it; the sum is floored; every matching campaign adds its bonus. A
    campaign whose budget would be exceeded adds what remains of it (its bonus first, then
    its multiplier's extra, taken back from the lines it won, last line first).
    """
    basket = earning_cents(terms, amount_cents, lines)
    if not lines and not terms.campaigns:
        return BasketPoints(amount_cents * terms.points_per_euro // 100, basket)
    live = _live(terms, at, basket, uses)
    excluded = terms.non_earning_categories
    rest = amount_cents - sum(ln.amount_cents for ln in lines)
    # (sku, category, quantity, amount, earns?) for every line, then the rest.
    items: list[tuple[str | None, str | None, int, int, bool]] = [
        (ln.sku, ln.category, ln.quantity, ln.amount_cents, ln.category not in excluded)
        for ln in lines
    ]
    items.append((None, None, 0, rest, True))
    ppe = terms.points_per_euro
    exact: list[int] = []
    winners: list[CampaignTerms | None] = []
    for sku, category, _, amount, earns in items:
        best: CampaignTerms | None = None
        if earns:
            for c in live:
                if c.covers(sku, category) and (
                    best is None or c.multiplier_milli > best.multiplier_milli
                ):
                    best = c
        winners.append(best)
        milli = best.multiplier_milli if best is not None else MILLI
        exact.append(amount * ppe * milli if earns else 0)
    points = _shares(exact)
    base = sum(amount * ppe * MILLI for _, _, _, amount, earns in items if earns) // _SCALE
    extra = {c.campaign_id: 0 for c in live}
    for value, (_, _, _, amount, _), winner in zip(exact, items, winners, strict=True):
        if winner is not None:
            extra[winner.campaign_id] += value - amount * ppe * MILLI
    extras = _split(sum(points) - base, [extra[c.campaign_id] for c in live])
    bonuses: list[BonusEarning] = []
    awards: list[tuple[CampaignTerms, int]] = []
    for c, added in zip(live, extras, strict=True):
        matched = any(
            earns and (amount > 0 or sku is not None) and c.covers(sku, category)
            for sku, category, _, amount, earns in items
        )
        bonus = c.bonus_points if matched else 0
        left = uses.get(c.campaign_id, CampaignUse()).budget_left
        if left is not None and added + bonus > left:
            over = added + bonus - left
            cut = min(bonus, over)
            bonus -= cut
            added -= over - cut
            _take_back(points, winners, c, over - cut)
        if bonus:
            bonuses.append(BonusEarning(c.code, bonus, c.min_basket_cents))
        if added or bonus:
            awards.append((c, added + bonus))
    records = tuple(
        LineEarning(ln.sku, ln.quantity, ln.amount_cents, p, ln.category, earns)
        for ln, p, (_, _, _, _, earns) in zip(lines, points, items, strict=False)
    )
    earnings = Earnings(records, rest, points[-1], tuple(bonuses))
    total = sum(points) + sum(b.points for b in bonuses)
    if not lines and not awards:
        return BasketPoints(total, basket)
    return BasketPoints(total, basket, tuple(awards), earnings)


def _live(
    terms: ProgramTerms, at: datetime, basket: int, uses: Mapping[int, CampaignUse]
) -> list[CampaignTerms]:
    if not terms.campaigns:
        return []
    local = at.astimezone(terms.timezone)
    live = []
    for c in terms.campaigns:
        use = uses.get(c.campaign_id, CampaignUse())
        if use.budget_left is not None and use.budget_left <= 0:
            continue
        if c.max_awards_per_card is not None and use.card_awards >= c.max_awards_per_card:
            continue
        if basket < c.min_basket_cents or not c.runs_at(at, local):
            continue
        live.append(c)
    return live


def _shares(exact: Sequence[int]) -> list[int]:
    """Whole points per item summing to the floor of the exact total (largest remainders)."""
    total = sum(exact) // _SCALE
    points = [v // _SCALE for v in exact]
    short = total - sum(points)
    if short:
        by_remainder = sorted(range(len(exact)), key=lambda i: -(exact[i] % _SCALE))
        for i in by_remainder[:short]:
            points[i] += 1
    return points


def _split(total: int, exact: Sequence[int]) -> list[int]:
    """``total`` whole points shared in proportion to ``exact`` (1/100,000 point units)."""
    if not exact:
        return []
    shares = [v // _SCALE for v in exact]
    short = total - sum(shares)
    order = sorted(range(len(exact)), key=lambda i: -(exact[i] % _SCALE))
    for i in order[: max(0, short)]:
        shares[i] += 1
    return shares


def _take_back(
    points: list[int], winners: Sequence[CampaignTerms | None], c: CampaignTerms, cut: int
) -> None:
    for i in reversed(range(len(points))):
        if cut <= 0:
            return
        w = winners[i]
        if w is not None and w.campaign_id == c.campaign_id:
            taken = min(cut, points[i])
            points[i] -= taken
            cut -= taken


class LineVoid(msgspec.Struct, frozen=True, gc=False):
    """What a return with lines voids: points due, the record afterwards, and why any units
    were not counted."""

    points_due: int
    earnings: Earnings
    reasons: tuple[Reason, ...] = ()


def void_lines(earnings: Earnings, returned: Sequence[ReturnedLine]) -> LineVoid:
    """Void what the returned units earned: each line's recorded points times its returned
    share of units (floored, over every return so far), and the bonus of a campaign whose
    basket falls under its minimum (or is returned whole). Units beyond those bought are not
    counted and reported as ``refund_exceeds_purchase``.
    """
    lines = list(earnings.lines)
    exceeded = False
    for item in returned:
        wanted = item.quantity
        for i, ln in enumerate(lines):
            if ln.sku != item.sku or wanted <= 0:
                continue
            take = min(wanted, ln.quantity - ln.returned)
            if take > 0:
                lines[i] = replace(ln, returned=ln.returned + take)
                wanted -= take
        exceeded = exceeded or wanted > 0
    due = 0
    for i, ln in enumerate(lines):
        target = ln.points * ln.returned // ln.quantity if ln.quantity else 0
        if target > ln.voided:
            due += target - ln.voided
            lines[i] = replace(ln, voided=target)
    # The basket left, valued like the rules valued it: earning lines pro rata, and the rest.
    left = earnings.rest_cents + sum(
        ln.amount_cents * (ln.quantity - ln.returned) // ln.quantity for ln in lines if ln.earning
    )
    nothing_left = earnings.rest_cents == 0 and all(
        ln.returned == ln.quantity for ln in lines if ln.earning
    )
    bonuses = []
    for b in earnings.bonuses:
        if not b.voided and (left < b.min_basket_cents or nothing_left):
            due += b.points
            b = replace(b, voided=True)
        bonuses.append(b)
    after = replace(earnings, lines=tuple(lines), bonuses=tuple(bonuses))
    reasons = (Reason.REFUND_EXCEEDS_PURCHASE,) if exceeded else ()
    # Earned with a tier's multiplier: voided with the same (the caller caps at what is left).
    due = due * earnings.tier_milli // MILLI if earnings.tier_milli != MILLI else due
    return LineVoid(due, after, reasons)
