"""Statistics: the platform, a merchant (with a line per store) and a program, with charts of
stamps and points issued and redeemed per day and of the outstanding liability over 30 or 90
days; for a merchant and a program also the points pending, the points expiring in the next
90 days per week or month, the breakage of the last twelve months and, when the program has
tiers, the members per tier over 90 days and the points each tier's multiplier added
(``domain.stats``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from fastapi.responses import RedirectResponse
from nicegui import ui
from starlette.responses import Response

from admin_ui import domain_api, texts
from admin_ui.domain_api import (
    Activity,
    Balances,
    BreakageMonth,
    CardCounts,
    DayPoint,
    ExpiryOutlook,
    TierStats,
)
from admin_ui.frame import frame, not_found
from admin_ui.guard import admin_page
from admin_ui.pages.common import parse_id, section
from admin_ui.queries.admins import Principal
from admin_ui.queries.merchants import merchant_ids
from admin_ui.queries.programs import live_program_id
from admin_ui.runtime import Runtime
from admin_ui.widgets import tag

PERIODS = {30: "30 days", 90: "90 days"}
EXPIRY_PERIODS = {"week": "Per week", "month": "Per month"}


@dataclass(frozen=True)
class SeriesPoint:
    """One day of a chart (a merchant's, or the platform's sum)."""

    day: date
    stamps_issued: int
    stamps_redeemed: int
    points_issued: int
    points_redeemed: int
    liability_cents: int


def _points(series: Sequence[DayPoint]) -> list[SeriesPoint]:
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


def _summed(all_series: Sequence[Sequence[DayPoint]]) -> list[SeriesPoint]:
    days: dict[date, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for series in all_series:
        for p in series:
            totals = days[p.day]
            for i, value in enumerate(
                (
                    p.stamps_issued,
                    p.stamps_redeemed,
                    p.points_issued,
                    p.points_redeemed,
                    p.balances.liability_cents,
                )
            ):
                totals[i] += value
    return [SeriesPoint(day, *days[day]) for day in sorted(days)]


def register(rt: Runtime) -> None:
    """The statistics pages."""

    @admin_page(rt, "/stats")
    async def platform_page(me: Principal) -> Response | None:
        if not me.is_platform:
            return RedirectResponse(f"/stats/merchants/{me.merchant_id}")
        async with rt.session() as session:
            figures = await domain_api.platform_stats(session)
        with frame(me, "Platform statistics", active="stats"):
            _summary(figures.cards, figures.activity, figures.balances)
            ui.label(f"{figures.merchants} merchants · {figures.stores} stores").classes(
                "text-slate-600"
            ).mark("stats-platform-counts")
            with section("Merchants"):
                _table(
                    ["Merchant", "Cards", "Stamps issued", "Points issued", "Liability"],
                    [
                        [
                            (line.merchant_code, f"/stats/merchants/{line.merchant_id}"),
                            str(line.cards.total),
                            str(line.activity.stamps_issued),
                            str(line.activity.points_issued),
                            texts.cents(line.balances.liability_cents),
                        ]
                        for line in figures.by_merchant
                    ],
                    "stats-merchants",
                )

            async def load(days: int) -> list[SeriesPoint]:
                async with rt.session() as session:
                    ids = await merchant_ids(session)
                    return _summed([await domain_api.daily_series(session, m, days) for m in ids])

            await _charts(load)
        return None

    @admin_page(rt, "/stats/merchants/{merchant_id}")
    async def merchant_page(me: Principal, merchant_id: str) -> Response | None:
        wanted = parse_id(merchant_id)
        if wanted is None or not me.sees(wanted):
            not_found(me)
            return None
        async with rt.session() as session:
            try:
                figures = await domain_api.merchant_stats(session, wanted)
                outlook = await domain_api.expiry_outlook(session, wanted)
                breakage = await domain_api.breakage_by_month(session, wanted)
                tiers = await domain_api.tier_stats(session, wanted)
            except domain_api.StatsNotFound:
                figures = None
            program_id = await live_program_id(session, wanted)
        if figures is None:
            not_found(me)
            return None
        with frame(
            me, f"Statistics of {figures.merchant_name} ({figures.merchant_code})", active="stats"
        ):
            with ui.row().classes("gap-4"):
                ui.link("Merchant", f"/merchants/{wanted}")
                if program_id is not None:
                    ui.link("Program statistics", f"/stats/programs/{program_id}")
            _summary(figures.cards, figures.activity, figures.balances)
            with section("Stores"):
                _table(
                    [
                        "Store",
                        "Cards issued",
                        "Active last 30 days",
                        "Stamps issued",
                        "Stamps redeemed",
                        "Points issued",
                        "Points redeemed",
                    ],
                    [
                        [
                            (s.code or "(no store: admin, expiry)")
                            + (" (deleted)" if s.deleted else ""),
                            str(s.cards.total),
                            str(s.cards.active_last_30_days),
                            str(s.activity.stamps_issued),
                            str(s.activity.stamps_redeemed),
                            str(s.activity.points_issued),
                            str(s.activity.points_redeemed),
                        ]
                        for s in figures.stores
                    ],
                    "stats-stores",
                )

            _expiry(outlook, breakage)
            _tiers(tiers)

            async def load(days: int) -> list[SeriesPoint]:
                async with rt.session() as session:
                    return _points(await domain_api.daily_series(session, wanted, days))

            await _charts(load)
        return None

    @admin_page(rt, "/stats/programs/{program_id}")
    async def program_page(me: Principal, program_id: str) -> Response | None:
        wanted = parse_id(program_id)
        figures = None
        if wanted is not None:
            async with rt.session() as session:
                try:
                    figures = await domain_api.program_stats(session, wanted)
                    outlook = await domain_api.expiry_outlook(
                        session, figures.merchant_id, program_id=wanted
                    )
                    breakage = await domain_api.breakage_by_month(
                        session, figures.merchant_id, program_id=wanted
                    )
                    tiers = await domain_api.tier_stats(
                        session, figures.merchant_id, program_id=wanted
                    )
                except domain_api.StatsNotFound:
                    figures = None
        if figures is None or not me.sees(figures.merchant_id):
            not_found(me)
            return None
        merchant_id = figures.merchant_id
        with frame(me, "Program statistics", active="stats"):
            with ui.row().classes("gap-4"):
                ui.link("Program settings", f"/programs/{wanted}")
                ui.link("Merchant statistics", f"/stats/merchants/{merchant_id}")
            _summary(figures.cards, figures.activity, figures.balances)
            ui.label(
                f"Per card: {figures.averages.stamps_per_card:.1f} stamps and "
                f"{figures.averages.points_per_card:.1f} points held"
            ).classes("text-slate-600")
            _expiry(outlook, breakage)
            _tiers(tiers)

            async def load(days: int) -> list[SeriesPoint]:
                async with rt.session() as session:
                    return _points(
                        await domain_api.daily_series(session, merchant_id, days, program_id=wanted)
                    )

            await _charts(load)
        return None


def _figure(label: str, value: str, marker: str) -> None:
    with ui.card().classes("min-w-40 items-start gap-0 p-3"):
        ui.label(label).classes("text-xs uppercase text-slate-500")
        tag(ui.label(value).classes("text-2xl font-semibold text-slate-800"), marker)


def _summary(cards: CardCounts, activity: Activity, balances: Balances) -> None:
    with ui.row().classes("gap-4 flex-wrap"):
        _figure("Cards", str(cards.total), "stats-cards")
        _figure("Active last 30 days", str(cards.active_last_30_days), "stats-active")
        _figure("New this month", str(cards.new_this_month), "stats-new")
        _figure("Stamps issued", str(activity.stamps_issued), "stats-stamps-issued")
        _figure("Stamps redeemed", str(activity.stamps_redeemed), "stats-stamps-redeemed")
        _figure("Points issued", str(activity.points_issued), "stats-points-issued")
        _figure("Points redeemed", str(activity.points_redeemed), "stats-points-redeemed")
        _figure("Outstanding liability", texts.cents(balances.liability_cents), "stats-liability")


def _expiry(outlook: ExpiryOutlook, breakage: Sequence[BreakageMonth]) -> None:
    """Points pending and expiring (CONTRACT.md 7.2, 7.3), and the breakage per month; nothing
    when no program in scope gives points."""
    if not outlook.points:
        return
    with section("Points pending and expiring"):
        with ui.row().classes("gap-4 flex-wrap"):
            _figure("Points pending", str(outlook.points_pending), "stats-points-pending")
            _figure("Expiring in 30 days", str(outlook.expiring_30_days), "stats-expiring-30")
            _figure("Expiring in 90 days", str(outlook.expiring_90_days), "stats-expiring-90")
        period = tag(ui.toggle(EXPIRY_PERIODS, value="week"), "expiry-period")
        box = ui.column().classes("w-full")

        def draw() -> None:
            box.clear()
            with box:
                chart = _expiry_chart(outlook, str(period.value))
                tag(ui.echart(chart).classes("w-full h-64"), "chart-expiry")

        period.on_value_change(draw)
        draw()
    with section("Breakage: points expired / points issued"):
        _table(
            ["Month", "Points issued", "Points expired", "Breakage"],
            [
                [
                    m.month.strftime("%Y-%m"),
                    str(m.points_issued),
                    str(m.points_expired),
                    "—" if m.breakage is None else f"{m.breakage:.1%}",
                ]
                for m in reversed(breakage)
            ],
            "stats-breakage",
        )


def _tiers(figures: TierStats) -> None:
    """Members per tier and what each tier's multiplier added (CONTRACT.md 7.4); nothing when
    the program has no tiers."""
    if not figures.tiers:
        return
    with section("Tiers"):
        _table(
            ["Tier", "Members today", "Points added, last 90 days", "Points added in all"],
            [
                [t.name, str(t.members), str(t.points_added_period), str(t.points_added)]
                for t in figures.tiers
            ],
            "stats-tiers",
        )
        tag(ui.echart(_tier_chart(figures)).classes("w-full h-64"), "chart-tiers")


def _tier_chart(figures: TierStats) -> dict[str, Any]:
    """Members of each tier at the end of each day, stacked: the whole is the live cards."""
    return {
        "title": {
            "text": f"Members per tier (end of day, last {len(figures.days)} days)",
            "textStyle": {"fontSize": 14},
        },
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 0, "right": 0},
        "grid": {"left": 50, "right": 20, "top": 40, "bottom": 30},
        "xAxis": {"type": "category", "data": [d.day.isoformat() for d in figures.days]},
        "yAxis": {"type": "value", "minInterval": 1},
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


def _expiry_chart(outlook: ExpiryOutlook, per: str) -> dict[str, Any]:
    if per == "month":
        periods, title = outlook.months, "Points expiring per month (next 90 days)"
        labels = [p.start.strftime("%Y-%m") for p in periods]
    else:
        periods, title = outlook.weeks, "Points expiring per week from Monday (next 90 days)"
        labels = [p.start.isoformat() for p in periods]
    return _bar_chart(title, labels, {"expiring": [p.points for p in periods]})


def _table(headers: list[str], rows: list[list[Any]], marker: str) -> None:
    if not rows:
        ui.label("No data yet.").classes("text-slate-500 italic")
        return
    with tag(ui.element("q-markup-table").props("flat bordered dense").classes("w-full"), marker):
        with ui.element("thead"), ui.element("tr"):
            for h in headers:
                with ui.element("th").classes("text-left"):
                    ui.label(h)
        with ui.element("tbody"):
            for row in rows:
                with ui.element("tr"):
                    for cell in row:
                        with ui.element("td"):
                            if isinstance(cell, tuple):
                                ui.link(cell[0], cell[1])
                            else:
                                ui.label(cell)


def _bar_chart(title: str, days: list[str], series: dict[str, list[int]]) -> dict[str, Any]:
    return {
        "title": {"text": title, "textStyle": {"fontSize": 14}},
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 0, "right": 0},
        "grid": {"left": 50, "right": 20, "top": 40, "bottom": 30},
        "xAxis": {"type": "category", "data": days},
        "yAxis": {"type": "value", "minInterval": 1},
        "series": [{"name": name, "type": "bar", "data": data} for name, data in series.items()],
    }


async def _charts(load: Callable[[int], Awaitable[list[SeriesPoint]]]) -> None:
    with section("Over time"):
        period = tag(ui.toggle(PERIODS, value=30), "stats-period")
        box = ui.column().classes("w-full")

    async def draw() -> None:
        points = await load(int(period.value))
        days = [p.day.isoformat() for p in points]
        box.clear()
        with box:
            with ui.row().classes("w-full no-wrap gap-4"):
                tag(
                    ui.echart(
                        _bar_chart(
                            "Stamps per day",
                            days,
                            {
                                "issued": [p.stamps_issued for p in points],
                                "redeemed": [p.stamps_redeemed for p in points],
                            },
                        )
                    ).classes("w-1/2 h-64"),
                    "chart-stamps",
                )
                tag(
                    ui.echart(
                        _bar_chart(
                            "Points per day",
                            days,
                            {
                                "issued": [p.points_issued for p in points],
                                "redeemed": [p.points_redeemed for p in points],
                            },
                        )
                    ).classes("w-1/2 h-64"),
                    "chart-points",
                )
            tag(
                ui.echart(
                    {
                        "title": {
                            "text": "Outstanding liability (EUR, end of day)",
                            "textStyle": {"fontSize": 14},
                        },
                        "tooltip": {"trigger": "axis"},
                        "grid": {"left": 60, "right": 20, "top": 40, "bottom": 30},
                        "xAxis": {"type": "category", "data": days},
                        "yAxis": {"type": "value"},
                        "series": [
                            {
                                "name": "liability",
                                "type": "line",
                                "areaStyle": {},
                                "data": [float(Decimal(p.liability_cents) / 100) for p in points],
                            }
                        ],
                    }
                ).classes("w-full h-64"),
                "chart-liability",
            )

    period.on_value_change(draw)
    await draw()
