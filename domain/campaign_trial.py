"""A dry run of campaigns on a merchant's recorded purchases (``loyalty campaign simulate``,
CONTRACT.md 7.1; the admin panel's "Try on past traffic").

The purchases of the period are read in time order, in a read-only transaction, and each is
earned twice by the engine's own rule (``rules.basket.basket_points``): with the program's
active campaigns, and with the campaigns tried added (or replacing those of the same id).
Budgets and awards per card are counted from zero for the campaigns tried, as if they had
started with the period. Nothing is written or published. What a purchase was is what was
recorded: its amount, its lines (``purchases.earnings``), its time and card.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import orjson

from core.commands import Line
from domain.catalog import FieldError, InvalidFields, campaign_values
from domain.engine.state import campaign_terms
from domain.rules.basket import BasketPoints, CampaignUse, Earnings, basket_points, earning_cents
from domain.rules.campaigns import CampaignTerms
from domain.rules.values import ProgramTerms

Progress = Callable[[int, int], None]
"""Called with (purchases done, purchases in all) as the run goes."""

_PROGRAM_SQL = """
SELECT p.id, p.merchant_id, p.type, p.currency, p.points_per_euro, p.minimum_purchase_cents,
       p.non_earning_categories, p.point_value_cents, m.timezone
FROM merchants m JOIN loyalty_programs p ON p.merchant_id = m.id AND p.deleted_at IS NULL
WHERE m.code = $1 AND m.deleted_at IS NULL
"""

_ACTIVE_SQL = """
SELECT id, program_id, code, multiplier, bonus_points, min_basket_cents, starts_at, ends_at,
       days, hours, skus, categories, budget_points, max_awards_per_card, points_awarded
FROM campaigns
WHERE program_id = $1 AND status = 'active' AND deleted_at IS NULL
ORDER BY id
"""

_COUNT_SQL = """
SELECT count(*) FROM purchases
WHERE merchant_id = $1 AND occurred_at >= $2 AND occurred_at < $3
"""

_PURCHASES_SQL = """
SELECT card_id, occurred_at, amount_cents, currency, earnings
FROM purchases
WHERE merchant_id = $1 AND occurred_at >= $2 AND occurred_at < $3
ORDER BY occurred_at, id
"""


class TrialError(Exception):
    """The trial cannot run (no such merchant, no program); the message says why."""


@dataclass
class CampaignFigures:
    """What one tried campaign would have done over the period."""

    id: str
    purchases_matched: int = 0
    points_awarded: int = 0
    cost_cents: Decimal = Decimal(0)
    budget_ran_out_at: datetime | None = None
    cards: set[int] = field(default_factory=set)

    def as_dict(self) -> dict[str, Any]:
        """The figures as ``--json`` prints them."""
        return {
            "id": self.id,
            "purchases_matched": self.purchases_matched,
            "cards_reached": len(self.cards),
            "points_awarded": self.points_awarded,
            "cost_cents": str(self.cost_cents),
            "budget_ran_out_at": self.budget_ran_out_at.isoformat()
            if self.budget_ran_out_at
            else None,
        }


@dataclass
class TrialReport:
    """Totals with and without the campaigns tried, each campaign's figures, and points per
    local day (for a chart)."""

    merchant_code: str
    start: datetime
    end: datetime
    purchases: int = 0
    points_without: int = 0
    points_with: int = 0
    point_value_cents: Decimal = Decimal(1)
    campaigns: list[CampaignFigures] = field(default_factory=list)
    per_day: dict[date, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))

    def as_dict(self) -> dict[str, Any]:
        """The report as ``--json`` prints it."""
        return {
            "merchant": self.merchant_code,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "purchases": self.purchases,
            "without": {
                "points": self.points_without,
                "cost_cents": str(self.points_without * self.point_value_cents),
            },
            "with": {
                "points": self.points_with,
                "cost_cents": str(self.points_with * self.point_value_cents),
            },
            "campaigns": [c.as_dict() for c in self.campaigns],
            "per_day": [
                {"day": day.isoformat(), "without": w[0], "with": w[1]}
                for day, w in sorted(self.per_day.items())
            ],
        }


class _Scenario:
    """One set of campaigns and what each may still award, moved purchase by purchase."""

    def __init__(self, terms: ProgramTerms, awarded: Mapping[int, int]) -> None:
        self.terms = terms
        self.awarded = dict(awarded)
        self.card_awards: dict[tuple[int, int], int] = {}

    def earn(self, card_id: int, amount: int, lines: Sequence[Line], at: datetime) -> BasketPoints:
        uses = {
            c.campaign_id: CampaignUse(
                None
                if c.budget_points is None
                else c.budget_points - self.awarded.get(c.campaign_id, 0),
                self.card_awards.get((c.campaign_id, card_id), 0),
            )
            for c in self.terms.campaigns
        }
        result = basket_points(self.terms, amount, lines, at, uses)
        for c, points in result.awards:
            if points > 0:
                self.awarded[c.campaign_id] = self.awarded.get(c.campaign_id, 0) + points
                key = (c.campaign_id, card_id)
                self.card_awards[key] = self.card_awards.get(key, 0) + 1
        return result


def tried_terms(rows: Sequence[Mapping[str, Any]]) -> list[CampaignTerms]:
    """Campaigns to try, as rows shaped like ``campaigns``'s (ids are made up, negative)."""
    return [campaign_terms({**row, "id": -(i + 1)}) for i, row in enumerate(rows)]


async def try_campaigns(
    conn: asyncpg.Connection,
    merchant_code: str,
    tried: Sequence[CampaignTerms],
    start: datetime,
    end: datetime,
    progress: Progress | None = None,
) -> TrialReport:
    """Run the merchant's purchases of [start, end) with and without ``tried``."""
    program = await conn.fetchrow(_PROGRAM_SQL, merchant_code)
    if program is None:
        raise TrialError(f"merchant {merchant_code} does not exist or has no program")
    active = [campaign_terms(r) for r in await conn.fetch(_ACTIVE_SQL, program["id"])]
    names = {c.code for c in tried}
    kept = [c for c in active if c.code not in names]
    base = ProgramTerms(
        program_id=program["id"],
        merchant_id=program["merchant_id"],
        type=program["type"],
        currency=program["currency"],
        points_per_euro=program["points_per_euro"],
        minimum_purchase_cents=program["minimum_purchase_cents"],
        timezone=ZoneInfo(program["timezone"]),
        non_earning_categories=frozenset(program["non_earning_categories"] or ()),
        campaigns=tuple(active),
    )
    # Budgets of the program's own campaigns start from what they awarded before the period
    # would be a guess; both runs start them from zero alike, so they cancel out.
    without = _Scenario(base, {})
    trial = _Scenario(_with(base, (*kept, *tried)), {})
    report = TrialReport(merchant_code, start, end, point_value_cents=program["point_value_cents"])
    figures = {c.campaign_id: CampaignFigures(c.code) for c in tried}
    report.campaigns = list(figures.values())
    if not base.points_enabled:
        return report
    total = await conn.fetchval(_COUNT_SQL, program["merchant_id"], start, end)
    async with conn.transaction(readonly=True):
        cursor = conn.cursor(_PURCHASES_SQL, program["merchant_id"], start, end, prefetch=5000)
        async for row in cursor:
            _one(report, figures, base, without, trial, row)
            if progress is not None and report.purchases % 10_000 == 0:
                progress(report.purchases, total)
    if progress is not None:
        progress(report.purchases, total)
    for f in report.campaigns:
        f.cost_cents = f.points_awarded * report.point_value_cents
    return report


def _one(
    report: TrialReport,
    figures: dict[int, CampaignFigures],
    base: ProgramTerms,
    without: _Scenario,
    trial: _Scenario,
    row: asyncpg.Record,
) -> None:
    report.purchases += 1
    if row["currency"] != base.currency:
        return
    at: datetime = row["occurred_at"]
    amount: int = row["amount_cents"]
    lines = _lines(row["earnings"])
    if earning_cents(base, amount, lines) < base.minimum_purchase_cents:
        return
    card = row["card_id"] or 0
    before = without.earn(card, amount, lines, at).points
    after = trial.earn(card, amount, lines, at)
    report.points_without += before
    report.points_with += after.points
    day = report.per_day[at.astimezone(base.timezone).date()]
    day[0] += before
    day[1] += after.points
    for c, points in after.awards:
        f = figures.get(c.campaign_id)
        if f is None:
            continue
        f.purchases_matched += 1
        f.points_awarded += points
        f.cards.add(card)
        spent = c.budget_points is not None and f.points_awarded >= c.budget_points
        if spent and f.budget_ran_out_at is None:
            f.budget_ran_out_at = at


def _lines(earnings: Any) -> tuple[Line, ...]:
    if not earnings:
        return ()
    data = earnings if isinstance(earnings, dict) else orjson.loads(earnings)
    return tuple(
        Line(ln.sku, ln.quantity, ln.amount_cents, ln.category)
        for ln in Earnings.from_json(data).lines
    )


def _with(terms: ProgramTerms, campaigns: Sequence[CampaignTerms]) -> ProgramTerms:
    return replace(terms, campaigns=tuple(campaigns))


def campaigns_of_file(data: Any, merchant_code: str) -> list[CampaignTerms]:
    """The campaigns a trial file holds: ``campaigns: [...]`` at its top, or a provisioning
    file's ``program.campaigns`` of the merchant. ``InvalidFields`` names each problem by
    its path in the file, with the provisioning file's sentences."""
    prefix, listed = "campaigns", None
    if isinstance(data, dict) and isinstance(data.get("merchants"), list):
        for i, merchant in enumerate(data["merchants"]):
            if isinstance(merchant, dict) and merchant.get("code") == merchant_code:
                program = merchant.get("program") or {}
                prefix = f"merchants[{i}].program.campaigns"
                listed = program.get("campaigns") if isinstance(program, dict) else None
    elif isinstance(data, dict):
        listed = data.get("campaigns")
    if not isinstance(listed, list) or not listed:
        raise InvalidFields([FieldError(prefix, "must be a list of one or more campaigns")])
    rows: list[dict[str, Any]] = []
    errors: list[FieldError] = []
    for i, item in enumerate(listed):
        try:
            rows.append(campaign_values(item if isinstance(item, dict) else {}))
        except InvalidFields as exc:
            errors += [FieldError(f"{prefix}[{i}].{e.path}", e.message) for e in exc.errors]
    codes = [r["code"] for r in rows]
    errors += [
        FieldError(f"{prefix}[{i}].id", "is used by another campaign of the file")
        for i, code in enumerate(codes)
        if code in codes[:i]
    ]
    if errors:
        raise InvalidFields(errors)
    return tried_terms(rows)
