"""The statistics pages' charts (ECharts options): stamps and points per day, the
outstanding liability, points expiring per week or month, members per tier; and the day series
they are drawn from, summed across merchants for the platform."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from nicegui import ui

from admin_ui.domain_api import (
    DayPoint,
    ExpiryOutlook,
    TierStats,
)
from admin_ui.pages.common import section
from admin_ui.texts import chart_number
from admin_ui.widgets import tag

PERIODS = {30: "30 days", 90: "90 days"}
DEFAULT_PERIOD = 30


@dataclass(frozen=True)
class SeriesPoint:
    """One day of a chart (a merchant's, or the platform's sum)."""

    day: date
    stamps_issued: int
    stamps_redeemed: int
    points_issued: int
    points_redeemed: int
    liability_cents: int


def day_points(series: Sequence[DayPoint]) -> list[SeriesPoint]:
    return [
        SeriesPoint(
            p.day,
            p.stamps_issued,
            p.stamps_redeemed,
            p.points_issued,
            p.points_redeemed,
            p.balances.liability_cents,
        )
        for p in series
    ]


def summed(
    all_series: Sequence[Sequence[DayPoint]], liability: Sequence[bool] | None = None
) -> list[SeriesPoint]:
    """The merchants' day series added up; ``liability`` says whose liability counts (those
    of one currency: amounts of two currencies do not add up)."""
    days: dict[date, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for n, series in enumerate(all_series):
        counts = liability is None or liability[n]
        for p in series:
            totals = days[p.day]
            for i, value in enumerate(
                (
                    p.stamps_issued,
                    p.stamps_redeemed,
                    p.points_issued,
                    p.points_redeemed,
                    p.balances.liability_cents if counts else 0,
                )
            ):
                totals[i] += value
    return [SeriesPoint(day, *days[day]) for day in sorted(days)]


SeriesLoader = Callable[[int], Awaitable[list[SeriesPoint]]]


def _value_axis(digits: int = 0, suffix: str = "") -> dict[str, Any]:
    """A value axis whose labels are numbers in the admin's language."""
    return {"type": "value", "axisLabel": {":formatter": chart_number(digits, suffix)}}


def _tooltip(digits: int = 0, suffix: str = "") -> dict[str, Any]:
    """An axis tooltip whose values are numbers in the admin's language."""
    return {"trigger": "axis", ":valueFormatter": chart_number(digits, suffix)}


def tier_chart(figures: TierStats) -> dict[str, Any]:
    """Members of each tier at the end of each day, stacked: the whole is the live cards."""
    return {
        "tooltip": _tooltip(),
        "legend": {"top": 0, "left": "center"},
        "grid": {"left": 56, "right": 16, "top": 32, "bottom": 30},
        "xAxis": {"type": "category", "data": [d.day.isoformat() for d in figures.days]},
        "yAxis": {**_value_axis(), "minInterval": 1},
        "series": [
            {
                "name": tier.name,
                "type": "line",
                "stack": "members",
                "areaStyle": {},
                "showSymbol": False,
                "data": [d.members[i] for d in figures.days],
            }
            for i, tier in enumerate(figures.tiers)
        ],
    }


def expiry_chart(outlook: ExpiryOutlook, per: str) -> tuple[str, dict[str, Any]]:
    if per == "month":
        periods, title = outlook.months, "Points expiring per month (next 90 days)"
        labels = [p.start.strftime("%Y-%m") for p in periods]
    else:
        periods, title = outlook.weeks, "Points expiring per week from Monday (next 90 days)"
        labels = [p.start.isoformat() for p in periods]
    return title, _bar_chart(labels, {"expiring": [p.points for p in periods]})


# On a phone a statistics table stacks as the lists' tables do (``widgets.stacked_on_phones``);
# its first cell, the row's name, heads its card in bold.
STACKED_CSS = """
@media (max-width: 640px) {
  .stats-stacked tbody td:first-child { font-weight: 600; text-align: left; }
  .stats-stacked tbody td:first-child::before { content: none; }
}
"""


def chart(title: str, options: dict[str, Any], marker: str) -> None:
    """A chart under its title. The title is a label, not the chart's own: on a phone the
    chart's legend would run over it."""
    with ui.column().classes("w-full min-w-0 gap-1"):
        ui.label(title).classes("text-sm font-medium text-slate-700")
        tag(ui.echart(options).classes("w-full h-64"), marker)


def _bar_chart(days: list[str], series: dict[str, list[int]]) -> dict[str, Any]:
    return {
        "tooltip": _tooltip(),
        "legend": {"top": 0, "left": "center"},
        "grid": {"left": 56, "right": 16, "top": 32, "bottom": 30},
        "xAxis": {"type": "category", "data": days},
        "yAxis": {**_value_axis(), "minInterval": 1},
        "series": [{"name": name, "type": "bar", "data": data} for name, data in series.items()],
    }


def charts(load: SeriesLoader, first: list[SeriesPoint], currency: str) -> None:
    """Stamps, points and liability per day: the first period's days as read with the page,
    another period's when it is picked."""
    with section("Over time"):
        period = tag(ui.toggle(PERIODS, value=DEFAULT_PERIOD), "stats-period")
        box = ui.column().classes("w-full min-w-0")

    def draw(points: list[SeriesPoint]) -> None:
        days = [p.day.isoformat() for p in points]
        box.clear()
        with box:
            with ui.element("div").classes("w-full grid grid-cols-1 lg:grid-cols-2 gap-4"):
                stamps = {
                    "issued": [p.stamps_issued for p in points],
                    "redeemed": [p.stamps_redeemed for p in points],
                }
                chart("Stamps per day", _bar_chart(days, stamps), "chart-stamps")
                points_ = {
                    "issued": [p.points_issued for p in points],
                    "redeemed": [p.points_redeemed for p in points],
                }
                chart("Points per day", _bar_chart(days, points_), "chart-points")
            title = f"Outstanding liability ({currency}, end of day)"
            chart(title, _liability_chart(days, points, currency), "chart-liability")

    async def picked() -> None:
        draw(await load(int(period.value)))

    period.on_value_change(picked)
    draw(first)


def _liability_chart(
    days: list[str], points: Sequence[SeriesPoint], currency: str
) -> dict[str, Any]:
    return {
        "tooltip": _tooltip(2, f"\u00a0{currency}"),
        "grid": {"left": 72, "right": 16, "top": 16, "bottom": 30},
        "xAxis": {"type": "category", "data": days},
        "yAxis": _value_axis(),
        "series": [
            {
                "name": "liability",
                "type": "line",
                "areaStyle": {},
                "data": [float(Decimal(p.liability_cents) / 100) for p in points],
            }
        ],
    }
