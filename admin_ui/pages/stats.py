"""Statistics: the platform, a merchant (with a line per store) and a program, with charts of
stamps and points issued and redeemed per day and of the outstanding liability over 30 or 90
days; for a merchant and a program also the points pending, the points expiring in the next
90 days per week or month, the breakage of the last twelve months and, when the program has
tiers, the members per tier over 90 days and the points each tier's multiplier added
(``domain.stats``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
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
    ExpiryOutlook,
    MerchantStats,
    PlatformStats,
    ProgramStats,
    TierStats,
)
from admin_ui.formatting import money, number, percent
from admin_ui.frame import frame, not_found
from admin_ui.guard import admin_page
from admin_ui.loading import deferred, skeleton_block, skeleton_cards
from admin_ui.pages.common import parse_id, section
from admin_ui.pages.stats_charts import (
    DEFAULT_PERIOD,
    STACKED_CSS,
    SeriesPoint,
    chart,
    charts,
    day_points,
    expiry_chart,
    summed,
    tier_chart,
)
from admin_ui.queries.admins import Principal
from admin_ui.queries.merchants import get_merchant, merchant_currencies, merchant_ids
from admin_ui.queries.programs import get_program, live_program_id
from admin_ui.runtime import Runtime
from admin_ui.widgets import stacked_on_phones, tag

EXPIRY_PERIODS = {"week": "Per week", "month": "Per month"}


@dataclass(frozen=True)
class _Figures:
    """What a statistics page draws, read after the page was sent: the figures, the expiry
    outlook, the breakage and the tiers (a merchant's or a program's), and the first period's
    days for the charts."""

    figures: Any  # the page's own: PlatformStats, MerchantStats or ProgramStats
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
            currencies: dict[int, str] = {}

            async def series(days: int) -> list[SeriesPoint]:
                async with rt.session() as session:
                    ids = await merchant_ids(session)
                    currencies.update(await merchant_currencies(session))
                    main = main_currency(currencies)
                    return summed(
                        [await domain_api.daily_series(session, m, days) for m in ids],
                        [currencies.get(m, "EUR") == main for m in ids],
                    )

            async def load() -> _Figures:
                async with rt.session() as session:
                    figures = await domain_api.platform_stats(session)
                return _Figures(figures, await series(DEFAULT_PERIOD))

            def draw(found: _Figures) -> None:
                figures: PlatformStats = found.figures
                main = main_currency(currencies)
                totals = liability_by_currency(figures.by_merchant, currencies)
                ui.label(
                    (
                        f"Liability in {main}."
                        if len(totals) <= 1
                        else "Liability in each merchant's currency, added up per currency; "
                        f"the liability chart counts the merchants in {main}."
                    )
                    + " The charts add up each merchant's days on its own clock."
                ).classes("text-sm text-slate-600")
                _summary(
                    figures.cards,
                    figures.activity,
                    figures.balances,
                    main,
                    liability=" · ".join(money(v, c) for c, v in totals.items()) or None,
                )
                counts = f"{number(figures.merchants)} merchants · {number(figures.stores)} stores"
                tag(ui.label(counts).classes("text-slate-600"), "stats-platform-counts")
                with section("Merchants"):
                    _table(
                        ["Merchant", "Cards", "Stamps issued", "Points issued", "Liability"],
                        [
                            [
                                (
                                    f"{line.merchant_name} ({line.merchant_code})",
                                    f"/stats/merchants/{line.merchant_id}",
                                ),
                                number(line.cards.total),
                                number(line.activity.stamps_issued),
                                number(line.activity.points_issued),
                                money(
                                    line.balances.liability_cents,
                                    currencies.get(line.merchant_id, "EUR"),
                                ),
                            ]
                            for line in figures.by_merchant
                        ],
                        "stats-merchants",
                        stacked=True,
                    )
                charts(series, found.series, main)

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
                    return day_points(await domain_api.daily_series(session, shown, days))

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
                charts(series, found.series, currency)

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
                    return day_points(
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
                charts(series, found.series, currency)

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


def main_currency(currencies: dict[int, str]) -> str:
    """The currency most merchants use (EUR first among equals, then by code)."""
    counts = Counter(currencies.values())
    return min(counts, key=lambda c: (-counts[c], c != "EUR", c)) if counts else "EUR"


def liability_by_currency(lines: Sequence[Any], currencies: dict[int, str]) -> dict[str, int]:
    """The merchants' liabilities (cents) added up per currency, the main currency first."""
    totals: dict[str, int] = {}
    for line in lines:
        currency = currencies.get(line.merchant_id, "EUR")
        totals[currency] = totals.get(currency, 0) + line.balances.liability_cents
    main = main_currency(currencies)
    return dict(sorted(totals.items(), key=lambda item: (item[0] != main, item[0])))


def _summary(
    cards: CardCounts,
    activity: Activity,
    balances: Balances,
    currency: str,
    *,
    liability: str | None = None,
) -> None:
    with _figures():
        _figure("Cards", number(cards.total), "stats-cards")
        _figure("Active last 30 days", number(cards.active_last_30_days), "stats-active")
        _figure("New this month", number(cards.new_this_month), "stats-new")
        _figure("Stamps issued", number(activity.stamps_issued), "stats-stamps-issued")
        _figure("Stamps redeemed", number(activity.stamps_redeemed), "stats-stamps-redeemed")
        _figure("Points issued", number(activity.points_issued), "stats-points-issued")
        _figure("Points redeemed", number(activity.points_redeemed), "stats-points-redeemed")
        _figure(
            "Outstanding liability",
            liability or money(balances.liability_cents, currency),
            "stats-liability",
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
                title, options = expiry_chart(outlook, str(period.value))
                chart(title, options, "chart-expiry")

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
        chart(title, tier_chart(figures), "chart-tiers")


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
        ui.add_css(STACKED_CSS)
        stacked_on_phones(table).classes("stats-stacked")
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
