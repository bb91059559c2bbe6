"""The landing page: a merchant's day and month at a glance (issue 18, item 1).

Alerts first (messages that could not be read, locked staff PINs, campaigns near their
budget), each with the page that fixes it; then today against yesterday and this month so
far against the same days of last month (members, visits, stamps and points issued and
redeemed, liability), a chart of the last 30 days, the rewards redeemed most this month and
the latest activity. Days are the merchant's (``admin_ui.queries.dashboard`` says where each
figure comes from). A merchant admin sees their merchant only; a platform admin picks one
(the first by code unless ``?merchant=`` names another: money of merchants with different
currencies does not add up, and the platform's totals are on the statistics page).

The page is sent at once; each part reads its data afterwards behind a skeleton
(``admin_ui.loading``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from nicegui import ui
from starlette.responses import Response

from admin_ui import card_texts
from admin_ui.formatting import local_when, money, number, percent
from admin_ui.frame import frame, not_found
from admin_ui.guard import admin_page
from admin_ui.loading import deferred, skeleton_block, skeleton_cards, skeleton_lines
from admin_ui.pages.common import parse_id, section
from admin_ui.queries import dashboard as data
from admin_ui.queries import dashboard_alerts as alert_data
from admin_ui.queries.admins import Principal
from admin_ui.runtime import Runtime
from admin_ui.widgets import tag
from core.enums import LedgerType

# Two figures a row on a phone, four on a wide screen.
_GRID = "w-full grid grid-cols-2 lg:grid-cols-4 gap-2 sm:gap-3"


def register(rt: Runtime) -> None:
    """The dashboard at ``/``."""

    @admin_page(rt, "/")
    async def home(me: Principal, merchant: str | None = None) -> Response | None:
        async with rt.session() as session:
            choices = await data.merchants(session, me)
            wanted = parse_id(merchant) if merchant else next(iter(choices), None)
            scope = await data.scope(session, me, wanted) if wanted in choices else None
        if merchant and scope is None:
            # Another merchant's id, a deleted one or not a number: all alike, not found.
            not_found(me)
            return None
        with frame(me, "Dashboard", active="dashboard"):
            if scope is None:
                tag(ui.label("No merchant yet."), "dashboard-no-merchant").classes(
                    "text-slate-500 italic"
                )
                if me.is_platform:
                    ui.link("Create the first merchant", "/merchants")
                return None
            _heading(me, choices, scope)
            _alerts(rt, me, scope)
            if not scope.has_data:
                _empty(scope)
                return None
            _overview(rt, scope)
            with ui.element("div").classes(
                "w-full grid grid-cols-1 lg:grid-cols-2 gap-4 items-start"
            ):
                _top_rewards(rt, scope)
                _recent(rt, scope)
        return None


def _heading(me: Principal, choices: dict[int, str], scope: data.Scope) -> None:
    """Whose dashboard, and on which clock; a platform admin's merchant picker."""
    with ui.row().classes("w-full items-end gap-x-4 gap-y-1 flex-wrap"):
        if me.is_platform:
            picker = ui.select(choices, value=scope.merchant_id, label="Merchant")
            picker.on_value_change(lambda e: ui.navigate.to(f"/?merchant={e.value}"))
            tag(picker.classes("min-w-64 max-w-full"), "dashboard-merchant")
        else:
            tag(
                ui.label(f"{scope.name} ({scope.code})").classes("text-lg text-slate-700"),
                "dashboard-merchant-name",
            )
        today = f"{scope.today:%A} {scope.today.isoformat()}"
        tag(
            ui.label(f"Today is {today}, times in {scope.timezone}").classes(
                "text-sm text-slate-500"
            ),
            "dashboard-today",
        )


# --- alerts -----------------------------------------------------------------------------------


def _alerts(rt: Runtime, me: Principal, scope: data.Scope) -> None:
    async def load() -> alert_data.Alerts:
        async with rt.session() as session:
            return await alert_data.alerts(session, me, scope)

    def draw(found: alert_data.Alerts) -> None:
        if not found.any:
            tag(
                ui.label("No alerts: nothing needs your attention.").classes(
                    "text-sm text-emerald-700"
                ),
                "dashboard-no-alerts",
            )
            return
        with ui.column().classes("w-full gap-2"):
            _dead_letter_alert(me, scope, found.dead_letters)
            for store in found.locked_stores:
                _alert(
                    "alert-pin-lock",
                    "lock",
                    f"The staff PINs of {store.name} are locked until "
                    f"{local_when(store.until, scope.timezone)} after too many wrong tries.",
                    ("Unlock", f"/stores/{store.store_id}"),
                )
            for c in found.campaigns:
                used = (
                    f"has used its whole budget ({number(c.budget)} points): it gives no "
                    "more points"
                    if c.awarded >= c.budget
                    else f"has used {percent(c.used)} of its budget "
                    f"({number(c.awarded)} / {number(c.budget)} points)"
                )
                _alert(
                    "alert-budget",
                    "campaign",
                    f"Campaign {c.name} {used}.",
                    ("Review", f"/campaigns/{c.campaign_id}"),
                )

    deferred("dashboard-alerts", load, draw, skeleton=lambda: skeleton_lines(1))


def _dead_letter_alert(me: Principal, scope: data.Scope, letters: alert_data.DeadLetters) -> None:
    if not letters.count:
        return
    ago = _ago(letters.latest_at, scope.now)
    one = letters.count == 1
    when = ago if one else f"the newest {ago}"
    count = "1 message" if one else f"{number(letters.count)} messages"
    problem = _shown_error(letters.latest_error)
    if me.is_platform:
        text = f"{count} could not be read ({when}): {problem}"
        _alert("alert-dead-letters", "report", text, ("Open the pipeline", "/pipeline"))
    else:
        # The pipeline page is the platform's: a merchant admin reads the error and tells
        # whoever runs their till, the platform's operators send the messages again.
        again = "it" if one else "them"
        text = (
            f"{count} from your tills could not be read ({when}): {problem} The platform's "
            f"operators can send {again} again once the till is fixed."
        )
        _alert("alert-dead-letters", "report", text, None)


def _alert(marker: str, icon: str, message: str, action: tuple[str, str] | None) -> None:
    with tag(
        ui.row().classes(
            "w-full items-center gap-3 no-wrap rounded border border-amber-300 bg-amber-50 "
            "px-3 py-2"
        ),
        marker,
    ):
        ui.icon(icon).classes("text-xl text-amber-700 shrink-0")
        ui.label(message).classes("grow min-w-0 text-sm text-slate-800 break-words")
        if action is not None:
            label, href = action
            ui.link(label, href).classes("shrink-0 text-sm font-medium whitespace-nowrap")


def _shown_error(error: str | None) -> str:
    """The newest error, its control characters escaped and cut to a readable length."""
    if not error:
        return ""
    shown = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in error)
    shown = shown if len(shown) <= 160 else shown[:159] + "…"
    return f"“{shown}”."


def _ago(at: datetime | None, now: datetime) -> str:
    if at is None:
        return "a while ago"
    seconds = max(0, int((now - at).total_seconds()))
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            n = seconds // size
            return f"{number(n)} {unit}{'s' if n != 1 else ''} ago"
    return "just now"


# --- today and this month, and the chart ------------------------------------------------------


def _overview(rt: Runtime, scope: data.Scope) -> None:
    async def load() -> data.Overview:
        return await data.overview(rt.sessionmaker(), scope)

    def skeleton() -> None:
        skeleton_cards(8, _GRID)
        skeleton_block()

    deferred("dashboard-overview", load, lambda o: _draw_overview(scope, o), skeleton=skeleton)


Metric = tuple[str, str, Callable[[data.Figures], int]]


def _metrics(scope: data.Scope) -> list[Metric]:
    metrics: list[Metric] = [
        ("members", "New members", lambda f: f.new_members),
        ("active", "Active cards", lambda f: f.active_cards),
        ("visits", "Visits", lambda f: f.visits),
    ]
    if scope.gives_stamps:
        metrics += [
            ("stamps-issued", "Stamps issued", lambda f: f.stamps_issued),
            ("stamps-redeemed", "Stamps redeemed", lambda f: f.stamps_redeemed),
        ]
    if scope.gives_points:
        metrics += [
            ("points-issued", "Points issued", lambda f: f.points_issued),
            ("points-redeemed", "Points redeemed", lambda f: f.points_redeemed),
        ]
    return metrics


def _draw_overview(scope: data.Scope, found: data.Overview) -> None:
    month, previous = found.month.current, found.month.previous
    tag(
        ui.label(
            f"Today against yesterday; this month so far ({_span(month.first, month.last)}) "
            f"against the same days of {previous.first:%B} "
            f"({_span(previous.first, previous.last)})."
        ).classes("text-sm text-slate-600"),
        "dashboard-periods",
    )
    with ui.element("div").classes(_GRID):
        for key, label, value in _metrics(scope):
            with _card(label):
                _line(
                    f"dash-{key}-today",
                    "Today",
                    value(found.day.current),
                    value(found.day.previous),
                    "yesterday",
                )
                _line(
                    f"dash-{key}-month", "This month", value(month), value(previous), "last month"
                )
        _liability(scope, found)
    ui.label(
        "Visits: purchases with a card that earned stamps or points. Active cards: cards "
        "new, used or changed in the period. Liability: the stamps and points the cards hold, "
        "valued as in the finance report."
    ).classes("text-xs text-slate-500")
    with section("Last 30 days"):
        tag(ui.echart(_chart(scope, found.days)).classes("w-full h-80"), "dashboard-chart")


def _card(label: str) -> ui.card:
    card = ui.card().classes("w-full gap-1 p-2 sm:p-3 min-w-0")
    with card:
        ui.label(label).classes("text-xs uppercase tracking-wide text-slate-500")
    return card


def _line(marker: str, period: str, current: int, previous: int, before: str) -> None:
    with ui.row().classes("w-full items-baseline justify-between gap-2 no-wrap"):
        ui.label(period).classes("text-sm text-slate-600")
        tag(ui.label(number(current)).classes("text-xl font-semibold text-slate-800"), marker)
    arrow, colour = _direction(current, previous)
    if current == previous:
        change = f"same as {before}"
    elif previous:
        change = (
            f"{arrow} {percent(abs(current - previous) / previous)} vs {number(previous)} {before}"
        )
    else:
        change = f"{arrow} {number(abs(current - previous))} vs 0 {before}"
    tag(ui.label(change).classes(f"text-xs {colour} -mt-1"), f"{marker}-change")


def _direction(current: int, previous: int) -> tuple[str, str]:
    if current > previous:
        return "▲", "text-emerald-700"
    if current < previous:
        return "▼", "text-rose-700"
    return "=", "text-slate-500"


def _liability(scope: data.Scope, found: data.Overview) -> None:
    """Now, and how it moved since the end of yesterday and of the same day last month (a
    liability is neither good nor bad going up: no colours)."""
    now = found.day.current.liability_cents
    with _card("Liability"):
        # A large amount goes under "Now" on a phone rather than out of the card.
        with ui.row().classes("w-full items-baseline justify-between gap-x-2 gap-y-0"):
            ui.label("Now").classes("text-sm text-slate-600")
            tag(
                ui.label(money(now, scope.currency)).classes(
                    "text-xl font-semibold text-slate-800 whitespace-nowrap"
                ),
                "dash-liability",
            )
        for marker, before, since in (
            ("dash-liability-today-change", found.day.previous.liability_cents, "yesterday"),
            (
                "dash-liability-month-change",
                found.month.previous.liability_cents,
                f"{found.month.previous.last.isoformat()}",
            ),
        ):
            arrow = _direction(now, before)[0]
            moved = money(abs(now - before), scope.currency)
            text = (
                f"{arrow} {moved} since the end of {since}"
                if now != before
                else (f"same as at the end of {since}")
            )
            tag(ui.label(text).classes("text-xs text-slate-600"), marker)


def _span(first: date, last: date) -> str:
    return first.isoformat() if first == last else f"{first.isoformat()} to {last.isoformat()}"


def _chart(scope: data.Scope, days: tuple[data.DayLine, ...]) -> dict[str, Any]:
    """Visits and new members as bars, stamps and points as lines (points on an axis of
    their own, on the right: they count in hundreds where visits count in tens)."""
    series: list[dict[str, Any]] = [
        _series("Visits", "bar", [d.visits for d in days]),
        _series("New members", "bar", [d.new_members for d in days]),
    ]
    if scope.gives_stamps:
        series += [
            _series("Stamps issued", "line", [d.stamps_issued for d in days]),
            _series("Stamps redeemed", "line", [d.stamps_redeemed for d in days]),
        ]
    if scope.gives_points:
        series += [
            _series("Points issued", "line", [d.points_issued for d in days], axis=1),
            _series("Points redeemed", "line", [d.points_redeemed for d in days], axis=1),
        ]
    axes: list[dict[str, Any]] = [{"type": "value", "minInterval": 1}]
    if scope.gives_points:
        axes.append({"type": "value", "minInterval": 1, "splitLine": {"show": False}})
    base = {
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 0},
        "grid": {"left": 8, "right": 8, "top": 36, "bottom": 8, "containLabel": True},
        "xAxis": {"type": "category", "data": [d.day.isoformat()[5:] for d in days]},
        "yAxis": axes,
        "series": series,
    }
    # A phone's legend takes three lines: the plot starts below them.
    phone = {"legend": {"itemGap": 8}, "grid": {"top": 84}}
    return {"baseOption": base, "media": [{"query": {"maxWidth": 480}, "option": phone}]}


def _series(name: str, kind: str, values: list[int], *, axis: int = 0) -> dict[str, Any]:
    found: dict[str, Any] = {"name": name, "type": kind, "data": values, "yAxisIndex": axis}
    if kind == "line":
        found["showSymbol"] = False
    return found


# --- top rewards and recent activity ---------------------------------------------------------


def _top_rewards(rt: Runtime, scope: data.Scope) -> None:
    async def load() -> list[data.TopReward]:
        async with rt.session() as session:
            return await data.top_rewards(session, scope)

    def draw(rewards: list[data.TopReward]) -> None:
        if not rewards:
            tag(
                ui.label("No reward redeemed this month yet.").classes("text-slate-500 italic"),
                "dashboard-top-rewards-empty",
            )
            return
        most = max(r.redeemed for r in rewards)
        for reward in rewards:
            with tag(ui.column().classes("w-full gap-1"), "dashboard-top-reward"):
                with ui.row().classes("w-full justify-between gap-2 no-wrap"):
                    ui.label(reward.name).classes("min-w-0 truncate")
                    ui.label(f"{number(reward.redeemed)} redeemed").classes(
                        "text-sm text-slate-600 whitespace-nowrap"
                    )
                ui.linear_progress(reward.redeemed / most, show_value=False).props(
                    "rounded color=teal-7 track-color=grey-3"
                )

    with section("Top rewards this month"):
        deferred("dashboard-top-rewards", load, draw)


def _recent(rt: Runtime, scope: data.Scope) -> None:
    async def load() -> list[data.Activity]:
        async with rt.session() as session:
            return await data.recent_activity(session, scope)

    def draw(lines: list[data.Activity]) -> None:
        for line in lines:
            with tag(ui.column().classes("w-full gap-0 pb-1"), "dashboard-activity"):
                ui.label(_what(line)).classes("text-sm font-medium text-slate-800")
                with ui.row().classes("gap-x-2 gap-y-0 text-xs text-slate-500 flex-wrap"):
                    ui.link(line.customer, f"/cards/{line.card_id}").classes("break-all")
                    if line.store:
                        ui.label(f"· {line.store}")
                    ui.label(f"· {local_when(line.occurred_at, scope.timezone)}")
        ui.link("All cards", "/cards").classes("text-sm")

    with section("Recent activity"):
        deferred("dashboard-recent", load, draw)


_PURCHASE = {LedgerType.STAMP_EARNED.value, LedgerType.POINTS_EARNED.value}


def _what(line: data.Activity) -> str:
    """``Purchase: +1 stamp, +120 points``: an event in the words of the card's history (a
    card's creation names its welcome bonus too)."""
    if set(line.kinds) <= _PURCHASE:
        words = "Purchase"
    else:
        first = LedgerType.CARD_CREATED.value if "card_created" in line.kinds else line.kinds[-1]
        try:
            words = card_texts.ENTRY_WORDS["en"][LedgerType(first)]
        except ValueError:
            words = first.replace("_", " ")
    changes = [
        _signed(delta, unit)
        for unit, delta in (("stamp", line.stamps_delta), ("point", line.points_delta))
        if delta
    ]
    if line.pending_delta and LedgerType.POINTS_RELEASED.value not in line.kinds:
        changes.append(_signed(line.pending_delta, "pending point"))
    if line.reward:
        changes.append(line.reward)
    return f"{words}: {', '.join(changes)}" if changes else words


def _signed(delta: int, unit: str) -> str:
    """``+120 points``, ``−1 stamp``."""
    return f"{'+' if delta > 0 else '−'}{number(abs(delta))} {unit}{'' if abs(delta) == 1 else 's'}"


# --- a merchant without activity -------------------------------------------------------------


def _empty(scope: data.Scope) -> None:
    with tag(ui.card().classes("w-full items-start gap-3 p-6"), "dashboard-empty"):
        ui.icon("insights").classes("text-4xl text-slate-400")
        ui.label("No activity yet").classes("text-lg font-medium text-slate-800")
        ui.label(
            "Enrol a customer at a store, or pair a store's till or terminal so purchases "
            "reach the program: the day's figures, a chart and the latest activity then "
            "appear here."
        ).classes("text-slate-600")
        with ui.row().classes("gap-x-6 gap-y-2 flex-wrap"):
            ui.link("Enrol a customer", "/customers")
            ui.link("Stores and their terminals", "/stores")
            ui.link("Program settings", "/programs")
