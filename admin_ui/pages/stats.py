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
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from admin_ui import domain_api
from admin_ui.domain_api import (
    Activity,
    Balances,
    BreakageMonth,
    CardCounts,
    DayPoint,
    ExpiryOutlook,
    TierStats,
)
from admin_ui.formatting import money, number, percent
from admin_ui.frame import frame, not_found
from admin_ui.guard import admin_page
from admin_ui.loading import deferred, skeleton_block, skeleton_cards
from admin_ui.pages.common import parse_id, section
from admin_ui.queries.admins import Principal
from admin_ui.queries.merchants import get_merchant, merchant_ids
from admin_ui.queries.programs import get_program, live_program_id
from admin_ui.runtime import Runtime
from admin_ui.texts import chart_number
from admin_ui.widgets import tag

# ``domain_api`` names no type for these three (``domain.stats``'s): the pages may not import it.
PlatformStats = Any
MerchantStats = Any
ProgramStats = Any

PERIODS = {30: "30 days", 90: "90 days"}
DEFAULT_PERIOD = 30
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


SeriesLoader = Callable[[int], Awaitable[list[SeriesPoint]]]


@dataclass(frozen=True)
class _Figures:
    """What a statistics page draws, read after the page was sent: the figures, the expiry
    outlook, the breakage and the tiers (a merchant's or a program's), and the first period's
    days for the charts."""

    figures: Any
    series: list[SeriesPoint]
    outlook: ExpiryOutlook | None = None
    breakage: Sequence[BreakageMonth] = ()
    tiers: TierStats | None = None


def register(rt: Runtime) -> None:
    """The statistics pages."""

    @admin_page(rt, "/stats")
    async def platform_page(me: Principal) -> Response | None:
        if not me.is_platform:
            return RedirectResponse(f"/stats/merchants/{me.merchant_id}")
        with frame(me, "Platform statistics", active="stats"):
            ui.label(
                "Liability in EUR. The charts add up each merchant's days on its own clock."
            ).classes("text-sm text-slate-600")

            async def series(days: int) -> list[SeriesPoint]:
                async with rt.session() as session:
                    ids = await merchant_ids(session)
                    return _summed([await domain_api.daily_series(session, m, days) for m in ids])

            async def load() -> _Figures:
                async with rt.session() as session:
                    figures = await domain_api.platform_stats(session)
                return _Figures(figures, await series(DEFAULT_PERIOD))

            def draw(found: _Figures) -> None:
                figures: PlatformStats = found.figures
                _summary(figures.cards, figures.activity, figures.balances, "EUR")
                counts = f"{number(figures.merchants)} merchants · {number(figures.stores)} stores"
                tag(ui.label(counts).classes("text-slate-600"), "stats-platform-counts")
                with section("Merchants"):
                    _table(
                        ["Merchant", "Cards", "Stamps issued", "Points issued", "Liability"],
                        [
                            [
                                (line.merchant_code, f"/stats/merchants/{line.merchant_id}"),
                                number(line.cards.total),
                                number(line.activity.stamps_issued),
                                number(line.activity.points_issued),
                                money(line.balances.liability_cents),
                            ]
                            for line in figures.by_merchant
                        ],
                        "stats-merchants",
                        stacked=True,
                    )
                _charts(series, found.series, "EUR")

            _later(load, draw)
        return None

    @admin_page(rt, "/stats/merchants/{merchant_id}")
    async def merchant_page(me: Principal, merchant_id: str) -> Response | None:
        wanted = parse_id(merchant_id)
        merchant = None
        if wanted is not None:
            async with rt.session() as session:
                merchant = await get_merchant(session, me, wanted)
                program_id = await live_program_id(session, wanted)
                currency = await _currency(session, me, program_id)
        if wanted is None or merchant is None or merchant.deleted_at is not None:
            not_found(me)
            return None
        shown = wanted
        with frame(me, f"Statistics of {merchant.name} ({merchant.code})", active="stats"):
            with ui.row().classes("gap-4"):
                ui.link("Merchant", f"/merchants/{shown}")
                if program_id is not None:
                    ui.link("Program statistics", f"/stats/programs/{program_id}")

            async def series(days: int) -> list[SeriesPoint]:
                async with rt.session() as session:
                    return _points(await domain_api.daily_series(session, shown, days))

            async def load() -> _Figures:
                async with rt.session() as session:
                    return _Figures(
                        await domain_api.merchant_stats(session, shown),
                        await series(DEFAULT_PERIOD),
                        await domain_api.expiry_outlook(session, shown),
                        await domain_api.breakage_by_month(session, shown),
                        await domain_api.tier_stats(session, shown),
                    )

            def draw(found: _Figures) -> None:
                figures: MerchantStats = found.figures
                _summary(figures.cards, figures.activity, figures.balances, currency)
                with section("Stores"):
                    _stores(figures)
                _expiry(found.outlook, found.breakage)
                _tiers(found.tiers)
                _charts(series, found.series, currency)

            _later(load, draw)
        return None

    @admin_page(rt, "/stats/programs/{program_id}")
    async def program_page(me: Principal, program_id: str) -> Response | None:
        wanted = parse_id(program_id)
        program = None
        if wanted is not None:
            async with rt.session() as session:
                program = await get_program(session, me, wanted)
        if wanted is None or program is None or program.deleted_at is not None:
            not_found(me)
            return None
        shown, merchant_id = wanted, program.merchant_id
        currency = str(program.settings.get("currency") or "EUR")
        with frame(me, "Program statistics", active="stats"):
            with ui.row().classes("gap-4"):
                ui.link("Program settings", f"/programs/{shown}")
                ui.link("Merchant statistics", f"/stats/merchants/{merchant_id}")

            async def series(days: int) -> list[SeriesPoint]:
                async with rt.session() as session:
                    return _points(
                        await domain_api.daily_series(session, merchant_id, days, program_id=shown)
                    )

            async def load() -> _Figures:
                async with rt.session() as session:
                    return _Figures(
                        await domain_api.program_stats(session, shown),
                        await series(DEFAULT_PERIOD),
                        await domain_api.expiry_outlook(session, merchant_id, program_id=shown),
                        await domain_api.breakage_by_month(session, merchant_id, program_id=shown),
                        await domain_api.tier_stats(session, merchant_id, program_id=shown),
                    )

            def draw(found: _Figures) -> None:
                figures: ProgramStats = found.figures
                _summary(figures.cards, figures.activity, figures.balances, currency)
                ui.label(
                    f"Per card: {number(figures.averages.stamps_per_card, digits=1)} stamps and "
                    f"{number(figures.averages.points_per_card, digits=1)} points held"
                ).classes("text-slate-600")
                _expiry(found.outlook, found.breakage)
                _tiers(found.tiers)
                _charts(series, found.series, currency)

            _later(load, draw)
        return None


async def _currency(session: AsyncSession, me: Principal, program_id: int | None) -> str:
    """The currency of the merchant's program (its liability's), EUR without one."""
    program = await get_program(session, me, program_id) if program_id is not None else None
    return str(program.settings.get("currency") or "EUR") if program else "EUR"


def _later(load: Callable[[], Awaitable[_Figures]], draw: Callable[[_Figures], None]) -> None:
    """The figures, read after the page was sent: grey cards and a chart's box meanwhile."""

    def skeleton() -> None:
        skeleton_cards(8, "w-full grid grid-cols-2 md:grid-cols-4 gap-3")
        skeleton_block()

    deferred("stats-content", load, draw, skeleton=skeleton, classes="w-full flex flex-col gap-4")


def _figure(label: str, value: str, marker: str) -> None:
    with ui.card().classes("w-full items-start gap-0 p-3 min-w-0"):
        ui.label(label).classes("text-xs uppercase text-slate-500")
        value_label = ui.label(value).classes("text-xl sm:text-2xl font-semibold text-slate-800")
        tag(value_label.classes("break-words max-w-full"), marker)


def _figures() -> ui.element:
    """Cards of one width: two a row on a phone, four on a laptop."""
    return ui.element("div").classes("w-full grid grid-cols-2 md:grid-cols-4 gap-3")


def _summary(cards: CardCounts, activity: Activity, balances: Balances, currency: str) -> None:
    with _figures():
        _figure("Cards", number(cards.total), "stats-cards")
        _figure("Active last 30 days", number(cards.active_last_30_days), "stats-active")
        _figure("New this month", number(cards.new_this_month), "stats-new")
        _figure("Stamps issued", number(activity.stamps_issued), "stats-stamps-issued")
        _figure("Stamps redeemed", number(activity.stamps_redeemed), "stats-stamps-redeemed")
        _figure("Points issued", number(activity.points_issued), "stats-points-issued")
        _figure("Points redeemed", number(activity.points_redeemed), "stats-points-redeemed")
        _figure(
            "Outstanding liability", money(balances.liability_cents, currency), "stats-liability"
        )


def _stores(figures: MerchantStats) -> None:
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
                (s.code or "No store (panel adjustments, expiry)")
                + (" (deleted)" if s.deleted else ""),
                number(s.cards.total),
                number(s.cards.active_last_30_days),
                number(s.activity.stamps_issued),
                number(s.activity.stamps_redeemed),
                number(s.activity.points_issued),
                number(s.activity.points_redeemed),
            ]
            for s in figures.stores
        ],
        "stats-stores",
        stacked=True,
    )


def _expiry(outlook: ExpiryOutlook | None, breakage: Sequence[BreakageMonth]) -> None:
    """Points pending and expiring (CONTRACT.md 7.2, 7.3), and the breakage per month; nothing
    when no program in scope gives points."""
    if outlook is None or not outlook.points:
        return
    with section("Points pending and expiring"):
        with ui.element("div").classes("w-full grid grid-cols-2 md:grid-cols-3 gap-3"):
            _figure("Points pending", number(outlook.points_pending), "stats-points-pending")
            _figure("Expiring in 30 days", number(outlook.expiring_30_days), "stats-expiring-30")
            _figure("Expiring in 90 days", number(outlook.expiring_90_days), "stats-expiring-90")
        period = tag(ui.toggle(EXPIRY_PERIODS, value="week"), "expiry-period")
        box = ui.column().classes("w-full min-w-0")

        def draw() -> None:
            box.clear()
            with box:
                title, options = _expiry_chart(outlook, str(period.value))
                _chart(title, options, "chart-expiry")

        period.on_value_change(draw)
        draw()
    with section("Breakage: points expired / points issued"):
        _table(
            ["Month", "Points issued", "Points expired", "Breakage"],
            [
                [
                    m.month.strftime("%Y-%m"),
                    number(m.points_issued),
                    number(m.points_expired),
                    percent(m.breakage),
                ]
                for m in reversed(breakage)
            ],
            "stats-breakage",
        )


def _tiers(figures: TierStats | None) -> None:
    """Members per tier and what each tier's multiplier added (CONTRACT.md 7.4); nothing when
    the program has no tiers."""
    if figures is None or not figures.tiers:
        return
    with section("Tiers"):
        _table(
            ["Tier", "Members today", "Points added, last 90 days", "Points added in all"],
            [
                [
                    t.name,
                    number(t.members),
                    number(t.points_added_period),
                    number(t.points_added),
                ]
                for t in figures.tiers
            ],
            "stats-tiers",
        )
        title = f"Members per tier (end of day, last {len(figures.days)} days)"
        _chart(title, _tier_chart(figures), "chart-tiers")


def _value_axis(digits: int = 0, suffix: str = "") -> dict[str, Any]:
    """A value axis whose labels are numbers in the admin's language."""
    return {"type": "value", "axisLabel": {":formatter": chart_number(digits, suffix)}}


def _tooltip(digits: int = 0, suffix: str = "") -> dict[str, Any]:
    """An axis tooltip whose values are numbers in the admin's language."""
    return {"trigger": "axis", ":valueFormatter": chart_number(digits, suffix)}


def _tier_chart(figures: TierStats) -> dict[str, Any]:
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


def _expiry_chart(outlook: ExpiryOutlook, per: str) -> tuple[str, dict[str, Any]]:
    if per == "month":
        periods, title = outlook.months, "Points expiring per month (next 90 days)"
        labels = [p.start.strftime("%Y-%m") for p in periods]
    else:
        periods, title = outlook.weeks, "Points expiring per week from Monday (next 90 days)"
        labels = [p.start.isoformat() for p in periods]
    return title, _bar_chart(labels, {"expiring": [p.points for p in periods]})


# On a phone a table of many columns turns into a card per row, each figure beside its
# heading's name (its cell's ``data-label``): the page never scrolls sideways.
_STACKED_CSS = """
@media (max-width: 640px) {
  .stats-stacked thead { display: none !important; }
  .stats-stacked table, .stats-stacked tbody, .stats-stacked tr {
    display: block !important; width: 100% !important; height: auto !important;
  }
  .stats-stacked tbody tr { border-bottom: 1px solid #e2e8f0; padding: 6px 0; }
  .stats-stacked tbody tr:last-child { border-bottom: none; }
  .stats-stacked tbody td {
    display: flex !important; justify-content: space-between; align-items: baseline;
    gap: 12px; width: 100% !important; height: auto !important; min-height: 26px;
    padding: 2px 12px !important; border: none !important; white-space: normal !important;
    text-align: right;
  }
  .stats-stacked tbody td:first-child { font-weight: 600; text-align: left; }
  /* Quasar lays a row's hover shade over each cell with an absolute ::before: here it is the
     cell's name instead, in the flow. */
  .stats-stacked tbody td::before {
    content: attr(data-label); position: static !important; background: none !important;
    color: #64748b; font-size: 0.75rem; font-weight: 400; text-align: left; flex: none;
  }
  .stats-stacked tbody td:first-child::before { content: none; }
  .stats-stacked tbody td::after { display: none !important; }
  .stats-stacked tbody td > * { min-width: 0; overflow-wrap: anywhere; }
}
"""


def _table(
    headers: list[str], rows: list[list[Any]], marker: str, *, stacked: bool = False
) -> None:
    """A table of figures, numbers to the right. On a phone it scrolls inside its own box,
    or, ``stacked``, turns into a card per row."""
    if not rows:
        ui.label("No data yet.").classes("text-slate-500 italic")
        return
    table = ui.element("q-markup-table").props("flat bordered dense")
    table.classes("w-full max-w-full")
    if stacked:
        ui.add_css(_STACKED_CSS)
        table.classes("stats-stacked")
    with tag(table, marker):
        with ui.element("thead"), ui.element("tr"):
            for i, h in enumerate(headers):
                # Headings may wrap: a phone has room for the figures, not for long names.
                align = "text-left" if i == 0 else "text-right"
                with ui.element("th").classes(f"{align} whitespace-normal align-bottom"):
                    ui.label(h)
        with ui.element("tbody"):
            for row in rows:
                with ui.element("tr"):
                    for i, (heading, cell) in enumerate(zip(headers, row, strict=True)):
                        align = "text-left" if i == 0 else "text-right"
                        td = ui.element("td").classes(f"{align} whitespace-nowrap")
                        with td.props(f'data-label="{heading}"'):
                            if isinstance(cell, tuple):
                                ui.link(cell[0], cell[1])
                            else:
                                ui.label(cell)


def _chart(title: str, options: dict[str, Any], marker: str) -> None:
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


def _charts(load: SeriesLoader, first: list[SeriesPoint], currency: str) -> None:
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
                _chart("Stamps per day", _bar_chart(days, stamps), "chart-stamps")
                points_ = {
                    "issued": [p.points_issued for p in points],
                    "redeemed": [p.points_redeemed for p in points],
                }
                _chart("Points per day", _bar_chart(days, points_), "chart-points")
            title = f"Outstanding liability ({currency}, end of day)"
            _chart(title, _liability_chart(days, points, currency), "chart-liability")

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
