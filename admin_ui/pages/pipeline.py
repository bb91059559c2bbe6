"""The pipeline (platform admins): the events processed per second of the last minutes (a
sparkline), the outbox backlog with its oldest unsent age and the last processed event first,
as an operator looks; then consumer lag per partition, the dead letters (grouped by kind of
error, with bulk re-drive and discard, then one by one, each opening to its full error and its
payload pretty-printed), and the returns held for their purchase. Lists are lines under
headings on a wide screen and a card per item on a phone, so no value hides off the screen.
Times are UTC and say so: nothing here belongs to one merchant."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from nicegui import ui
from starlette.responses import Response

from admin_ui import formatting, texts
from admin_ui.frame import frame, not_found
from admin_ui.guard import admin_page
from admin_ui.pages.common import section
from admin_ui.pages.dead_letter_view import HEAD, utc
from admin_ui.pages.dead_letters import DeadLetters
from admin_ui.queries import pipeline as pipeline_data
from admin_ui.queries.admins import Principal
from admin_ui.queries.common import PageRequest, Rows
from admin_ui.runtime import Runtime
from admin_ui.widgets import Listing, tag

R = TypeVar("R")

# A relay that keeps up publishes within a second; a minute of waiting means it lags or is
# down, five minutes that someone should look now (docs/operations.md alerts alike).
_AGE_WARN_S = 60.0
_AGE_ALARM_S = 300.0


def register(rt: Runtime) -> None:
    """The pipeline page."""

    @admin_page(rt, "/pipeline")
    async def pipeline_page(me: Principal) -> Response | None:
        if not me.is_platform:
            not_found(me)
            return None
        with frame(me, "Pipeline", active="pipeline"):
            await _activity_section(rt)
            await _lag_section(rt)
            await DeadLetters(rt, me).build()
            await _held_returns(rt)
        return None


async def _lag_section(rt: Runtime) -> None:
    with section("Consumer lag"):
        ui.label(
            f"Group {rt.settings.consumer_group} on {rt.settings.bootstrap}: committed offsets "
            "against the end of each input partition."
        ).classes("text-sm text-slate-600")
        box = ui.column().classes("w-full")

    def waiting() -> None:
        box.clear()
        with box, tag(ui.row().classes("items-center gap-2 text-slate-600"), "lag-loading"):
            ui.spinner(size="sm")
            ui.label("Asking Kafka…")

    async def draw() -> None:
        waiting()
        report = await pipeline_data.consumer_lag(rt.settings)
        box.clear()
        with box:
            if report.error:
                tag(ui.label(report.error).classes("text-red-700"), "lag-error")
            else:
                tag(ui.label(f"Total lag: {formatting.number(report.total)}"), "lag-total").classes(
                    "font-medium"
                )
                _lag_by_topic(report.partitions)
                with tag(
                    ui.expansion("Every partition").classes("w-full").props("dense"),
                    "lag-partitions-toggle",
                ):
                    _lag_by_partition(report.partitions)
            tag(ui.button("Refresh", icon="refresh", on_click=draw).props("flat"), "lag-refresh")

    # Kafka may take seconds to answer (or to time out): the rest of the page does not wait.
    waiting()
    ui.timer(0, draw, once=True)


def _table(
    name: str, headings: Sequence[tuple[str, str]], rows: Sequence[Sequence[tuple[str, str]]]
) -> None:
    """A small table of (text, classes) cells; should a name still not fit, the table
    scrolls in its box, not the page."""
    with (
        ui.element("div").classes("w-full overflow-x-auto"),
        tag(ui.element("q-markup-table").props("flat bordered dense").classes("w-full"), name),
    ):
        with ui.element("thead"), ui.element("tr"):
            for heading, extra in headings:
                with ui.element("th").classes(f"text-left {extra}"):
                    ui.label(heading)
        with ui.element("tbody"):
            for row in rows:
                with ui.element("tr"):
                    for value, extra in row:
                        with ui.element("td").classes(extra):
                            ui.label(value)


def _lag_by_topic(partitions: Sequence[pipeline_data.PartitionLag]) -> None:
    """A line per topic: its lag, and its partition most behind when one is."""
    topics: dict[str, list[pipeline_data.PartitionLag]] = {}
    for p in partitions:
        topics.setdefault(p.topic, []).append(p)
    rows = []
    for topic, parts in topics.items():
        lag = sum(p.lag for p in parts)
        worst = max(parts, key=lambda p: p.lag)
        behind = (
            f"partition {worst.partition}: {formatting.number(worst.lag)}" if worst.lag else "—"
        )
        rows.append(
            [
                (topic, ""),
                (formatting.number(len(parts)), "max-sm:hidden"),
                (formatting.number(lag), "font-medium" if lag else ""),
                (behind, ""),
            ]
        )
    headings = [("Topic", ""), ("Partitions", "max-sm:hidden"), ("Lag", ""), ("Most behind", "")]
    _table("lag-table", headings, rows)


def _lag_by_partition(partitions: Sequence[pipeline_data.PartitionLag]) -> None:
    # The lag beside its partition; the offsets it comes from only where there is room for
    # them (a phone shows topic, partition and lag).
    offsets = "max-sm:hidden"
    headings = [
        ("Topic", ""),
        ("Partition", ""),
        ("Lag", ""),
        ("Committed", offsets),
        ("End", offsets),
    ]
    rows = [
        [
            (p.topic, ""),
            (str(p.partition), ""),
            (formatting.number(p.lag), "font-medium" if p.lag else ""),
            (formatting.number(p.committed), offsets),
            (formatting.number(p.end), offsets),
        ]
        for p in partitions
    ]
    _table("lag-partitions", headings, rows)


async def _activity_section(rt: Runtime) -> None:
    """Events per second, the outbox backlog and the last processed event, side by side (one
    under the other on a phone). The first two are read again every bucket of the sparkline,
    so the page stays a live view without a reload; the last event only with the page, since
    finding it reads the whole inbox (``processed_events`` has no index on its time)."""
    with ui.element("div").classes("w-full grid grid-cols-1 lg:grid-cols-3 gap-4"):
        with section("Events per second"):
            with ui.row().classes("items-baseline gap-x-2"):
                rate = tag(ui.label(), "events-rate").classes("text-2xl font-semibold")
                ui.label("events/s").classes("text-slate-600")
            window = tag(ui.label(), "events-window").classes("text-sm text-slate-600")
            chart = tag(ui.echart(_sparkline([], [])).classes("w-full h-20"), "events-sparkline")
            # A sparkline has no axis: these say where its ends are in time.
            with ui.row().classes("w-full justify-between text-xs text-slate-500"):
                since = ui.label()
                ui.label("now")
        with section("Outbox backlog"):
            with ui.row().classes("items-baseline gap-x-3 gap-y-0"):
                unsent = tag(ui.label(), "outbox-unsent").classes("text-2xl font-semibold")
                age = tag(ui.label(), "outbox-oldest-age")
            details = ui.column().classes("gap-0")
        with section("Last processed event"):
            last_box = ui.column().classes("gap-0 min-w-0 w-full")

    async def fill() -> None:
        async with rt.session() as session:
            events = await pipeline_data.throughput(session)
            backlog = await pipeline_data.outbox_backlog(session)
        rate.text = _rate(events.latest)
        minutes = len(events.per_second) * events.bucket_s // 60
        since.text = f"{minutes} min ago"
        window.text = (
            f"{formatting.number(events.events)} event(s) in the last {minutes} min, "
            f"peak {_rate(events.peak)}/s; {events.bucket_s}-second steps"
        )
        chart.options.update(
            _sparkline(
                [at.strftime("%H:%M:%S UTC") for at in events.starts],
                [round(v, 3) for v in events.per_second],
            )
        )
        chart.update()
        unsent.text = f"{formatting.number(backlog.unsent)} unsent message(s)"
        age.classes(replace=_age_classes(backlog.oldest_age_s))
        age.text = (
            "nothing waiting"
            if backlog.oldest_age_s is None
            else f"oldest waiting {_duration(backlog.oldest_age_s)}"
        )
        details.clear()
        with details:
            if backlog.unsent:
                ui.label(f"oldest from {utc(backlog.oldest)}").classes("text-slate-600")
                for topic, count in sorted(backlog.by_topic.items()):
                    ui.label(f"{topic}: {formatting.number(count)}").classes("text-sm break-all")

    await fill()
    ui.timer(pipeline_data.THROUGHPUT_BUCKET_S, fill)
    async with rt.session() as session:
        last = await pipeline_data.last_processed(session)
    with last_box:
        if last is None:
            tag(ui.label("No event processed yet."), "last-event").classes("text-slate-500 italic")
        else:
            tag(ui.label(f"{utc(last.processed_at)} · {last.status}"), "last-event")
            ui.label(f"{last.topic} · {last.event_id}").classes("text-sm text-slate-600 break-all")


def _sparkline(times: list[str], values: list[float]) -> dict[str, Any]:
    """A small line without axes; the tooltip tells a bucket's start (UTC) and its rate."""
    return {
        "animation": False,
        "grid": {"left": 2, "right": 2, "top": 6, "bottom": 2},
        "tooltip": {"trigger": "axis"},
        "xAxis": {"type": "category", "show": False, "boundaryGap": False, "data": times},
        "yAxis": {"type": "value", "show": False, "min": 0},
        "series": [
            {
                "name": "events/s",
                "type": "line",
                "data": values,
                "showSymbol": False,
                "lineStyle": {"width": 2},
                "areaStyle": {"opacity": 0.15},
            }
        ],
    }


def _rate(per_second: float) -> str:
    """Events per second as people read them: whole numbers when large, two decimals when
    small (a trickle of 0.03/s is not zero)."""
    if per_second >= 100:
        return f"{per_second:,.0f}"
    if per_second >= 10:
        return f"{per_second:.1f}"
    return f"{per_second:.2f}"


def _duration(seconds: float) -> str:
    """An age in its two largest units: 42 s, 3 min 12 s, 2 h 5 min, 3 d 4 h."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def _age_classes(seconds: float | None) -> str:
    if seconds is not None and seconds >= _AGE_ALARM_S:
        return "text-red-700 font-medium"
    if seconds is not None and seconds >= _AGE_WARN_S:
        return "text-amber-700 font-medium"
    return "text-slate-600"


_WIDTHS = {
    "received": "lg:w-40",
    "merchant": "lg:w-40",
    "store": "lg:w-56",
    "refund": "lg:w-28",
}


def _lines(
    items: Sequence[R],
    headings: dict[str, str],
    line: Callable[[R], None],
    name: str,
) -> None:
    """A list's page: on a wide screen a line per item under column headings, on a phone a
    card per item whose values say what they are."""
    with ui.column().classes(
        "w-full gap-2 lg:gap-0 lg:border lg:border-slate-200 lg:rounded lg:bg-white"
    ):
        # A plain element: Quasar's own "hidden" would beat the breakpoint's "flex".
        heading = "flex max-lg:hidden w-full gap-4 px-4 py-2 border-b border-slate-200"
        with ui.element("div").classes(heading):
            for key, label in headings.items():
                ui.label(label).classes(f"{HEAD} {_WIDTHS.get(key, 'flex-1 min-w-0')}")
        for item in items:
            box = ui.element("div").classes(
                "w-full flex flex-col lg:flex-row lg:items-start gap-x-4 gap-y-2 p-3 lg:px-4 "
                "bg-white rounded border border-slate-200 lg:rounded-none lg:border-0 "
                "lg:border-b lg:last:border-b-0"
            )
            with tag(box, name):
                line(item)


def _cell(label: str, key: str, value: str, *, classes: str = "text-sm") -> ui.column:
    with ui.column().classes(f"gap-0 min-w-0 {_WIDTHS.get(key, 'lg:flex-1')}") as cell:
        # On a phone there are no column headings: each value says what it is.
        ui.label(label).classes(f"{HEAD} lg:hidden")
        ui.label(value).classes(f"{classes} break-words")
    return cell


def _refund(row: pipeline_data.HeldRow) -> str:
    # The payload is the producer's: a refund that is not a whole number is shown as it came.
    amount = row.refund_amount_cents
    if amount is None:
        return "—"
    if isinstance(amount, int) and not isinstance(amount, bool):
        return formatting.money(amount, row.currency)
    return texts.printable(str(amount), 40)


def _held_line(row: pipeline_data.HeldRow) -> None:
    _cell("Received", "received", formatting.local_when(row.received_at, row.timezone))
    _cell("Merchant", "merchant", row.merchant_code)
    _cell("Store", "store", row.store_code)
    _cell("Order", "order", row.order_reference)
    _cell("Refund", "refund", _refund(row))


async def _held_returns(rt: Runtime) -> None:
    async def fetch(request: PageRequest) -> Rows[pipeline_data.HeldRow]:
        async with rt.session() as session:
            return await pipeline_data.held_returns(session, request)

    def rows(items: Sequence[pipeline_data.HeldRow]) -> None:
        headings = {
            "received": "Received",
            "merchant": "Merchant",
            "store": "Store",
            "order": "Order",
            "refund": "Refund",
        }
        _lines(items, headings, _held_line, "held-row")

    with section("Held returns"):
        ui.label("Returns whose purchase has not been seen yet; applied when it arrives.").classes(
            "text-sm text-slate-600"
        )
        listing: Listing[pipeline_data.HeldRow] = Listing(
            "held",
            [],
            fetch,
            deleted_switches=False,
            placeholder="Search order reference",
            empty_text="No return is held.",
            rows=rows,
        )
        await listing.load()
