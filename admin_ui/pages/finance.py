"""The finance report (issue 17, ``docs/finance.md``): a merchant's liability at the start and
the end of a period of its local days, what moved it in between, redemption and breakage
rates, active and new members, the cohort retention as a heat map, and the report as CSV.

The period and the merchant are in the address (``/finance?merchant=1&start=...&end=...``),
so a report can be bookmarked and sent; a merchant admin sees their merchant only.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from nicegui import ui
from starlette.responses import Response

from admin_ui.formatting import money, number, percent
from admin_ui.frame import frame, not_found
from admin_ui.guard import admin_page
from admin_ui.loading import deferred, skeleton_block, skeleton_cards
from admin_ui.pages.common import parse_id, section
from admin_ui.queries import finance
from admin_ui.queries.admins import Principal
from admin_ui.runtime import Runtime
from admin_ui.texts import chart_number
from admin_ui.widgets import tag


def _presets(today: date) -> dict[str, tuple[date, date]]:
    """Periods offered in one click, each ``(first day, last day)``."""
    month = today.replace(day=1)
    last_month_end = month - timedelta(days=1)
    year = today.replace(month=1, day=1)
    return {
        "This month": (month, today),
        "Last month": (last_month_end.replace(day=1), last_month_end),
        "This year": (year, today),
        "Last year": (year.replace(year=year.year - 1), year - timedelta(days=1)),
        "Last 12 months": (_months_back(month, 11), today),
    }


def _months_back(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 - n
    return date(index // 12, index % 12 + 1, 1)


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def register(rt: Runtime) -> None:
    """The finance report page."""

    @admin_page(rt, "/finance")
    async def finance_page(
        me: Principal,
        merchant: str | None = None,
        start: str | None = None,
        end: str | None = None,
    ) -> Response | None:
        async with rt.session() as session:
            choices = await finance.merchants(session, me)
            wanted = parse_id(merchant) if merchant else next(iter(choices), None)
            if merchant and (wanted is None or not me.sees(wanted) or wanted not in choices):
                not_found(me)
                return None
            today = await finance.local_today(session, wanted)
        first = _day(start) or today.replace(month=1, day=1)
        last = _day(end) or today
        problem = None
        if (start and _day(start) is None) or (end and _day(end) is None):
            problem = "Dates are written YYYY-MM-DD."
        elif first > last:
            problem = "The period's first day is after its last day."
        with frame(me, "Finance report", active="finance"):
            # What was typed stays in the fields, wrong or not, to be put right.
            shown = (start or first.isoformat(), end or last.isoformat())
            _controls(me, choices, wanted, shown, today)
            if problem:
                tag(ui.label(problem).classes("text-rose-700"), "finance-problem")
            elif wanted is None:
                ui.label("No merchant yet.").classes("text-slate-500 italic")
            else:
                merchant_id = wanted

                async def load() -> finance.FinanceReport | None:
                    async with rt.session() as session:
                        return await finance.finance_report(session, me, merchant_id, first, last)

                def draw(report: finance.FinanceReport | None) -> None:
                    if report is None:  # deleted meanwhile: it was listed a moment ago
                        ui.label("This merchant is not there any more.").classes("text-rose-700")
                    else:
                        _report(report)

                def skeleton() -> None:
                    skeleton_cards(6, "w-full grid grid-cols-2 sm:grid-cols-3 lg:grid-cols-6 gap-3")
                    skeleton_block()

                classes = "w-full flex flex-col gap-4"
                deferred("finance-report", load, draw, skeleton=skeleton, classes=classes)
        return None


def _controls(
    me: Principal,
    choices: dict[int, str],
    merchant_id: int | None,
    period: tuple[str, str],
    today: date,
) -> None:
    """The merchant (platform admins), the period typed, picked or preset, and Show."""
    with ui.row().classes("w-full gap-3 items-end flex-wrap"):
        chosen: ui.select | None = None
        if me.is_platform:
            chosen = tag(
                ui.select(choices, value=merchant_id, label="Merchant").classes("min-w-56"),
                "finance-merchant",
            )
        start = tag(_date_field("From", period[0]), "finance-start")
        end = tag(_date_field("To", period[1]), "finance-end")

        def show() -> None:
            query = {"start": (start.value or "").strip(), "end": (end.value or "").strip()}
            if chosen is not None and chosen.value is not None:
                query = {"merchant": str(chosen.value), **query}
            ui.navigate.to(f"/finance?{urlencode(query)}")

        tag(ui.button("Show", on_click=show).props("unelevated"), "finance-show")
    with ui.row().classes("gap-1 flex-wrap"):
        for label, (a, b) in _presets(today).items():

            def pick(a: date = a, b: date = b) -> None:
                start.value, end.value = a.isoformat(), b.isoformat()
                show()

            slug = label.lower().replace(" ", "-")
            tag(ui.button(label, on_click=pick).props("flat dense no-caps"), f"finance-{slug}")


def _date_field(label: str, value: str) -> ui.input:
    """A day typed as ``2026-03-31`` or picked from a calendar; its value is the text."""
    field = ui.input(label, value=value, placeholder="YYYY-MM-DD").classes("w-40")
    with field.add_slot("append"):
        icon = ui.icon("event").classes("cursor-pointer")
        with icon, ui.menu() as menu:
            day = ui.date(value=None, mask="YYYY-MM-DD").props("flat minimal")
        day.on_value_change(lambda e: field.set_value(e.value or ""))
        menu.on("before-show", lambda: day.set_value((field.value or "").strip() or None))
    return field


def _report(report: finance.FinanceReport) -> None:
    cur = report.currency
    ui.label(
        f"{report.merchant_name} ({report.merchant_code}), {report.start:%Y-%m-%d} to "
        f"{report.end:%Y-%m-%d}, days of {report.timezone}"
    ).classes("text-slate-600").mark("finance-period")
    # Cards of one width: two a row on a phone, all six on a wide screen.
    with ui.element("div").classes("w-full grid grid-cols-2 sm:grid-cols-3 lg:grid-cols-6 gap-3"):
        _figure("Liability at the start", money(report.opening.cents, cur), "finance-opening")
        _figure("Liability at the end", money(report.closing.cents, cur), "finance-closing")
        _figure("Redemption rate", percent(report.points_redemption_rate), "finance-redemption")
        _figure("Breakage rate", percent(report.points_breakage_rate), "finance-breakage")
        _figure("Active members", number(report.active_members), "finance-active")
        _figure("New members", number(report.new_members), "finance-new")
    with section("Liability and what moved it"):
        _movements(report)
        rates = (
            "Redemption and breakage rates: points redeemed and expired over points issued in "
            f"the period. Stamps redeemed over stamps issued: "
            f"{percent(report.stamps_redemption_rate)}."
        )
        ui.label(rates).classes("text-sm text-slate-600")
        values = "; ".join(
            f"{p.name}{' (deleted)' if p.deleted else ''}: a stamp "
            f"{_cents_each(p.stamp_value_cents, cur)}, "
            f"a point {_cents_each(p.point_value_cents, cur)}"
            for p in report.programs
        )
        if values:
            ui.label(f"Valued at the programs' current values: {values}.").classes(
                "text-sm text-slate-600"
            ).mark("finance-values")

        def download() -> None:
            name = f"finance-{report.merchant_code}-{report.start}-{report.end}.csv"
            ui.download.content(finance.csv_of(report), name, "text/csv")

        with ui.row().classes("items-center gap-x-3 gap-y-1"):
            tag(
                ui.button("Download CSV", icon="download", on_click=download).props("outline"),
                "finance-csv",
            )
            # Grouped figures ("1,234.56") would be text to a spreadsheet, and its decimal
            # mark the reader's: the file holds plain numbers.
            note = (
                "The file holds plain numbers (1234.56, no thousands separator) for spreadsheets."
            )
            tag(ui.label(note).classes("text-xs text-slate-500"), "finance-csv-note")
    with section("Cohort retention"):
        ui.label(
            "Share of each month's new cards active in that month (+0) and in each month "
            "after it; the last month counts its days so far."
        ).classes("text-sm text-slate-600")
        # On a phone the heat map keeps a readable width and scrolls inside its own box.
        with ui.element("div").classes("w-full overflow-x-auto"):
            tag(ui.echart(_heatmap(report)).classes("w-full min-w-[22rem] h-96"), "finance-cohorts")


def _figure(label: str, value: str, marker: str) -> None:
    with ui.card().classes("w-full items-start gap-0 p-3"):
        ui.label(label).classes("text-xs uppercase text-slate-500")
        tag(ui.label(value).classes("text-xl font-semibold text-slate-800"), marker)


def _movements(report: finance.FinanceReport) -> None:
    def money(cents: int) -> str:
        # The currency is in the column's heading: a phone has no room for it on every line.
        return number(Decimal(cents) / 100, digits=2)

    names = {
        "issued": "Issued",
        "redeemed": "Redeemed",
        "expired": "Expired",
        "voided": "Voided (returns)",
        "adjusted": "Adjusted",
        "deleted": "Taken by deleted cards",
    }
    opening, closing = report.opening, report.closing
    rows: list[tuple[str, str, str, str, bool]] = [
        (
            "Liability at the start",
            number(opening.stamps),
            number(opening.points_total),
            money(opening.cents),
            True,
        ),
        ("of which pending", "", number(opening.points_pending), "", False),
        *(
            (names[n], number(m.stamps), number(m.points), money(m.cents), False)
            for n, m in report.movements()
        ),
        (
            "Liability at the end",
            number(closing.stamps),
            number(closing.points_total),
            money(closing.cents),
            True,
        ),
        ("of which pending", "", number(closing.points_pending), "", False),
    ]
    # Quasar's table scrolls inside its box should a screen be narrower still.
    with tag(
        ui.element("q-markup-table").props("flat bordered dense").classes("w-full"),
        "finance-movements",
    ):
        with ui.element("thead"), ui.element("tr"):
            for heading in ("", "Stamps", "Points", f"Value ({report.currency})"):
                # Headings may wrap: on a phone the figures need the room.
                th = ui.element("th").classes("text-right first:text-left whitespace-normal")
                with th.classes("align-bottom"):
                    ui.label(heading)
        with ui.element("tbody"):
            for label, stamps, points, value, strong in rows:
                with ui.element("tr").classes("font-semibold" if strong else ""):
                    # Quasar keeps a table's cells on one line: the names may wrap on a phone.
                    with ui.element("td").classes("text-left whitespace-normal") as name:
                        ui.label(label)
                    if not strong:
                        name.style("padding-left: 1.25rem")  # over the dense table's padding
                    for cell in (stamps, points, value):
                        with ui.element("td").classes("text-right whitespace-nowrap"):
                            ui.label(cell)


def _heatmap(report: finance.FinanceReport) -> dict[str, Any]:
    """The cohorts as an echart heat map: a row per month of new cards (oldest on top), a
    column per month after it, the share of the cohort's cards active, in percent."""
    months = [c.month.strftime("%Y-%m") for c in report.cohorts]
    data = []
    for y, cohort in enumerate(report.cohorts):
        for x, (active, share) in enumerate(zip(cohort.active, cohort.retention, strict=True)):
            if share is not None:
                data.append([x, y, round(share * 100), active, cohort.cards, months[y]])
    base = {
        "tooltip": {":formatter": _cohort_tooltip()},
        "grid": {"left": 62, "right": 8, "top": 28, "bottom": 28},
        "xAxis": {
            "type": "category",
            "position": "top",
            "data": [f"+{i}" for i in range(finance.COHORT_MONTHS)],
            "splitArea": {"show": True},
        },
        "yAxis": {"type": "category", "data": months, "inverse": True, "splitArea": {"show": True}},
        "visualMap": {
            "dimension": 2,  # the share; the other values are for the tooltip
            "min": 0,
            "max": 100,
            "show": False,
            "inRange": {"color": ["#f1f5f9", "#0f766e"]},
        },
        "series": [
            {
                "name": "retention",
                "type": "heatmap",
                "data": data,
                "label": {"show": True, "formatter": "{@[2]}", "fontSize": 10},
                "emphasis": {"itemStyle": {"borderColor": "#1e293b", "borderWidth": 1}},
            }
        ],
        "graphic": [
            {
                "type": "text",
                "left": 4,
                "bottom": 4,
                "style": {"text": "% of the month's new cards", "fontSize": 10, "fill": "#64748b"},
            }
        ],
    }
    # On a phone a cell is too narrow for its number: the colour says it, a tap shows it.
    phone = {
        "grid": {"left": 56, "right": 4},
        "xAxis": {"axisLabel": {"interval": 0, "fontSize": 8}},
        "series": [{"label": {"show": False}}],
    }
    return {"baseOption": base, "media": [{"query": {"maxWidth": 480}, "option": phone}]}


def _cohort_tooltip() -> str:
    """The heat map's tooltip as JavaScript: ``2026-01, +2 months: 40% (4 of 10 cards)``,
    numbers in the admin's language."""
    count = chart_number()
    share = chart_number(0, percent(0, digits=0).removeprefix("0"))
    return (
        f"(p) => {{ const n = {count}; const s = {share}; const v = p.value;"
        " return v[5] + ', +' + v[0] + ' months: ' + s(v[2]) + ' (' + n(v[3]) + ' of '"
        " + n(v[4]) + ' cards)'; }"
    )


def _cents_each(cents: Decimal, currency: str) -> str:
    """A unit's value: whole and fractions of cents as they are (``0.5`` -> ``0.005 EUR``), in
    the admin's language."""
    value = (cents / 100).normalize()
    exponent = value.as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    return f"{number(value, digits=max(2, places))}\u00a0{currency}"
