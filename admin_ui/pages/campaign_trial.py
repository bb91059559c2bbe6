""" "Try on past traffic": one campaign, as its form holds it (saved or not), run over the
merchant's recorded purchases of a period, with the figures and a chart of the points per day
with and without it (``domain_api.try_campaign``, the dry run of ``loyalty campaign
simulate``). It writes nothing: the trial's transaction is read-only and rolled back.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from nicegui import ui

from admin_ui import campaign_texts as words
from admin_ui import domain_api
from admin_ui.formatting import local_when, money, percent
from admin_ui.pages.common import guarded
from admin_ui.queries.campaigns import ProgramScope
from admin_ui.runtime import Runtime
from admin_ui.texts import chart_number
from admin_ui.widgets import tag


async def open_trial(rt: Runtime, scope: ProgramScope, data: Mapping[str, Any]) -> None:
    """Open the dialog for the campaign ``data`` (validated form values) and run it on the
    last 30 days at once; the period can be changed and run again."""
    today = datetime.now(ZoneInfo(scope.timezone)).date()
    first, last = words.default_period(today)
    dialog = ui.dialog()
    with dialog, tag(ui.card().classes("w-full max-w-4xl gap-3"), "trial-dialog"):
        with ui.row().classes("w-full items-start no-wrap"):
            ui.label(f"Try “{data.get('name') or data.get('id')}” on past traffic").classes(
                "text-lg font-medium grow"
            )
            tag(
                ui.button(icon="close", on_click=dialog.close).props("flat round dense"),
                "trial-close",
            )
        ui.label(
            "The purchases recorded in the period, earned with and without this campaign as "
            "the form states it, saved or not. Its budget and per-card limit count from the "
            "period's first day. Nothing is written or sent."
        ).classes("text-sm text-slate-600")
        # Two dates side by side and the button under them on a phone; one line on a screen.
        with ui.element("div").classes("w-full grid grid-cols-2 gap-3 sm:flex sm:items-end"):
            start = tag(ui.date_input("First day", value=first), "trial-from")
            end = tag(ui.date_input("Last day", value=last), "trial-to")
            run = tag(ui.button("Run", icon="play_arrow"), "trial-run").classes("col-span-2")
        start.classes("sm:w-40")
        end.classes("sm:w-40")
        problem = tag(ui.label("").classes("text-red-700"), "trial-problem")
        problem.visible = False
        bar = tag(ui.linear_progress(value=0, show_value=False), "trial-progress")
        bar.visible = False
        results = tag(ui.column().classes("w-full gap-3"), "trial-results")

    async def go() -> None:
        problem.visible = False
        try:
            period = words.read_period(start.value, end.value, scope.timezone)
        except ValueError as exc:
            problem.text = str(exc)[:1].upper() + str(exc)[1:] + "."
            problem.visible = True
            return
        report: list[domain_api.TrialReport] = []

        def moved(done: int, total: int) -> None:
            bar.value = done / total if total else 1

        async def work() -> None:
            async with rt.session() as session:
                report.append(
                    await domain_api.try_campaign(
                        session, scope.merchant_code, data, *period, progress=moved
                    )
                )

        run.disable()
        bar.value, bar.visible = 0, True
        try:
            done = await guarded(work)
        finally:
            run.enable()
            bar.visible = False
        if done and report:
            results.clear()
            with results:
                _results(scope, report[0], data, period)

    run.on_click(go)
    dialog.on("hide", dialog.delete)
    dialog.open()
    if scope.earns_points:
        await go()
    else:
        with results:
            ui.label(
                "This program gives no points: campaigns change points, so there is nothing "
                "to try. Make it a points or hybrid program first."
            ).classes("text-slate-600")
        run.disable()


def _results(
    scope: ProgramScope,
    report: domain_api.TrialReport,
    data: Mapping[str, Any],
    period: tuple[datetime, datetime],
) -> None:
    figures = report.campaigns[0]
    point_cents = report.point_value_cents
    if figures.budget_ran_out_at is not None:
        ran_out = local_when(figures.budget_ran_out_at, scope.timezone)
    else:
        ran_out = "not reached" if data.get("budget_points") else "no budget"
    tiles = (
        ("Purchases in the period", words.points(report.purchases), "purchases"),
        ("Purchases matched", words.points(figures.purchases_matched), "matched"),
        ("Cards reached", words.points(len(figures.cards)), "cards"),
        ("Points awarded", words.points(figures.points_awarded), "points"),
        ("Cost", money(figures.cost_cents, scope.currency), "cost"),
        ("Budget ran out", ran_out, "ran-out"),
    )
    with ui.element("div").classes("grid grid-cols-2 md:grid-cols-3 gap-2 w-full"):
        for label, shown, key in tiles:
            with tag(ui.card().props("flat bordered").classes("p-3 gap-0"), f"trial-{key}"):
                ui.label(label).classes("text-xs uppercase tracking-wide text-slate-500")
                tag(ui.label(shown).classes("text-xl font-semibold"), f"trial-{key}-value")
    change = ""
    if report.points_without:
        ratio = (report.points_with - report.points_without) / report.points_without
        change = f" ({'+' if ratio > 0 else ''}{percent(ratio)})"
    tag(
        ui.label(
            f"Points of the period: {words.points(report.points_without)} without it "
            f"({money(report.points_without * point_cents, scope.currency)}), "
            f"{words.points(report.points_with)} with it "
            f"({money(report.points_with * point_cents, scope.currency)}){change}."
        ).classes("text-sm text-slate-700"),
        "trial-totals",
    )
    # The period's days on the merchant's clock: its end is the midnight after the last one.
    first, last = period[0].date(), period[1].date() - timedelta(days=1)
    days, without, with_ = words.every_day(report.per_day, first, last)
    # The title is a label, not the chart's: on a phone the chart's legend would cover it.
    ui.label("Points per day").classes("text-sm font-medium text-slate-700")
    tag(
        ui.echart(
            {
                "tooltip": {"trigger": "axis", ":valueFormatter": chart_number()},
                "legend": {"top": 0, "left": "center"},
                "grid": {"left": 56, "right": 16, "top": 32, "bottom": 30},
                "xAxis": {"type": "category", "data": days},
                "yAxis": {"type": "value", "axisLabel": {":formatter": chart_number()}},
                "series": [
                    {"name": "without it", "type": "line", "data": without, "color": "#94A3B8"},
                    {
                        "name": "with it",
                        "type": "line",
                        "data": with_,
                        "color": "#2563EB",
                        "areaStyle": {"opacity": 0.12},
                    },
                ],
            }
        ).classes("w-full h-72"),
        "trial-chart",
    )
