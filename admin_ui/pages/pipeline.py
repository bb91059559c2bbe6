"""The pipeline (platform admins): the events processed per second of the last minutes (a
sparkline), the outbox backlog with its oldest unsent age and the last processed event first,
as an operator looks; then consumer lag per partition, the dead letters (grouped by kind of
error, with bulk re-drive and discard, then one by one, each opening to its full error and its
payload pretty-printed), and the returns held for their purchase. Lists are lines under
headings on a wide screen and a card per item on a phone, so no value hides off the screen.
Times are UTC and say so: nothing here belongs to one merchant."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from nicegui import ui
from starlette.responses import Response

from admin_ui import formatting, texts
from admin_ui.frame import frame, not_found
from admin_ui.guard import admin_page
from admin_ui.pages.common import guarded, section
from admin_ui.queries import pipeline as pipeline_data
from admin_ui.queries.admins import Principal
from admin_ui.queries.common import PageRequest, Rows
from admin_ui.runtime import Runtime, transaction
from admin_ui.widgets import Listing, confirm, tag

R = TypeVar("R")

_HEAD = "text-xs uppercase tracking-wide text-slate-500"
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
            await _DeadLetters(rt, me).build()
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
                ui.label(f"oldest from {_utc(backlog.oldest)}").classes("text-slate-600")
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
            tag(ui.label(f"{_utc(last.processed_at)} · {last.status}"), "last-event")
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


# --- dead letters ------------------------------------------------------------------------------

_BIG = 10**9  # no cut: the caller has already bounded the text
_LETTERS_STATES = {"waiting": "Waiting", "redriven": "Re-driven", "all": "All"}
# One grid for the list's heading and its lines from a laptop's width on: the box to tick,
# when, where from, then the error and the payload sharing the rest, and the buttons.
_LETTER_GRID = "lg:grid lg:grid-cols-[2rem_9rem_12rem_minmax(0,3fr)_minmax(0,2fr)_5rem]"


class _Number(str):
    """A JSON number as the payload wrote it (``1.10`` stays ``1.10``, not ``1.1``)."""

    __slots__ = ()


class _Object(list[tuple[str, Any]]):
    """A JSON object's members in their order, repeated keys included."""

    __slots__ = ()


def _render(value: Any, depth: int) -> str:
    pad, inner = "  " * depth, "  " * (depth + 1)
    if isinstance(value, _Object):
        if not value:
            return "{}"
        members = [f"{inner}{_string(k)}: {_render(v, depth + 1)}" for k, v in value]
        return "{\n" + ",\n".join(members) + f"\n{pad}}}"
    if isinstance(value, list):
        if not value:
            return "[]"
        items = [f"{inner}{_render(v, depth + 1)}" for v in value]
        return "[\n" + ",\n".join(items) + f"\n{pad}]"
    if isinstance(value, _Number):
        return str(value)
    if isinstance(value, str):
        return _string(value)
    return json.dumps(value)  # true, false, null


def _string(text_: str) -> str:
    # JSON escapes the C0 controls; what it leaves (DEL, C1 controls, direction overrides,
    # line separators) texts.printable escapes line by line afterwards.
    return json.dumps(text_, ensure_ascii=False)


def pretty_payload(payload: str, *, is_base64: bool = False) -> str:
    """A dead letter's payload to read: JSON indented by two spaces (its numbers, key order
    and repeated keys as they were), any other text as it is; every control or layout
    character (``\\x1b``, ``\\u202e``, ``\\r``) written as an escape, so nothing in it can
    move or recolour what is shown."""
    text_ = payload
    if not is_base64:
        try:
            parsed = json.loads(
                payload,
                parse_int=_Number,
                parse_float=_Number,
                parse_constant=_Number,
                object_pairs_hook=_Object,
            )
            text_ = _render(parsed, 0)
        except (ValueError, RecursionError):
            text_ = payload  # not JSON (or cut short): shown as the text it is
    return "\n".join(texts.printable(line, _BIG) for line in text_.split("\n"))


def one_line(text_: str, limit: int = 200) -> str:
    """Text for a single line of a list: runs of white space (new lines too) as one space,
    control and layout characters escaped, cut after ``limit``."""
    return texts.printable(" ".join(text_.split()), limit)


def _letters(count: int) -> str:
    return f"{formatting.number(count)} dead letter{'' if count == 1 else 's'}"


def _utc(at: datetime | None) -> str:
    # Dead letters belong to no merchant: the platform's page says UTC, and says so.
    return formatting.local_when(at, "UTC")


class _DeadLetters:
    """The dead-letters section: the waiting letters grouped by kind of error with their bulk
    actions, then the letters themselves, a page at a time, each opening to its full error
    and payload."""

    def __init__(self, rt: Runtime, me: Principal) -> None:
        self.rt = rt
        self.me = me
        self.state: pipeline_data.LetterState = "waiting"
        self.group: pipeline_data.DeadLetterGroup | None = None
        self.boxes: dict[int, ui.checkbox] = {}
        self.busy = False
        self.bulk: list[ui.button] = []
        self.chosen_label: ui.label | None = None

    async def build(self) -> None:
        """Draw the section and load it."""
        with section("Dead letters"):
            self.counts = tag(ui.label().classes("text-sm text-slate-600"), "dlq-counts")
            ui.label("Waiting, by kind of error").classes("font-medium text-slate-700 mt-2")
            self.groups: Listing[pipeline_data.DeadLetterGroup] = Listing(
                "dlq-groups",
                [],
                self._fetch_groups,
                deleted_switches=False,
                searchable=False,
                page_size=10,
                empty_text="No dead letter is waiting.",
                rows=self._draw_groups,
            )
            ui.label("Letters").classes("font-medium text-slate-700 mt-4")
            with ui.row().classes("w-full items-center gap-x-4 gap-y-2"):
                self.toggle = ui.toggle(_LETTERS_STATES, value=self.state, on_change=self._state)
                tag(self.toggle.props("dense no-caps"), "dlq-state")
                self.only = tag(
                    ui.row().classes("items-center gap-2 min-w-0 flex-nowrap"), "dlq-only"
                )
            self.letters: Listing[pipeline_data.DeadLetterRow] = Listing(
                "dlq",
                [],
                self._fetch_letters,
                deleted_switches=False,
                placeholder="Search error, payload or topic",
                empty_text="No dead letter here.",
                rows=self._draw_letters,
            )
        self._draw_only()
        await self.reload()

    async def reload(self) -> None:
        """Read the counts, the groups and the letters again."""
        async with self.rt.session() as session:
            counts = await pipeline_data.dead_letter_counts(session)
        self.counts.text = (
            f"{formatting.number(counts.waiting)} waiting · "
            f"{formatting.number(counts.redriven)} re-driven"
        )
        await self.groups.load()
        await self.letters.load()

    # --- the groups -------------------------------------------------------------------------

    async def _fetch_groups(self, request: PageRequest) -> Rows[pipeline_data.DeadLetterGroup]:
        async with self.rt.session() as session:
            return await pipeline_data.dead_letter_groups(session, request)

    def _draw_groups(self, groups: Sequence[pipeline_data.DeadLetterGroup]) -> None:
        for group in groups:
            box = ui.element("div").classes(
                "w-full flex flex-col lg:flex-row lg:items-center gap-x-4 gap-y-2 p-3 "
                "bg-white rounded border border-slate-200"
            )
            with tag(box, "dlq-group"):
                with ui.column().classes("gap-0 min-w-0 flex-1"):
                    tag(ui.label(texts.printable(group.kind)), "dlq-group-kind").classes(
                        "font-medium text-red-700 break-words"
                    )
                    ui.label(f"{group.message_type} on {group.source_topic}").classes(
                        "text-xs text-slate-500 break-all"
                    )
                    with ui.row().classes("items-baseline gap-x-3 gap-y-0 text-sm"):
                        tag(ui.label(_letters(group.count)), "dlq-group-count").classes(
                            "font-medium"
                        )
                        ui.label(f"first {_utc(group.first_at)}").classes("text-slate-600")
                        ui.label(f"last {_utc(group.last_at)}").classes("text-slate-600")
                with ui.row().classes("gap-1 items-center"):
                    mark = group.newest_id
                    tag(
                        ui.button("Show", on_click=lambda g=group: self._show_group(g)).props(
                            "flat dense no-caps"
                        ),
                        f"dlq-group-show-{mark}",
                    )
                    tag(
                        ui.button(
                            "Re-drive all",
                            icon="replay",
                            on_click=lambda g=group: self._redrive_group(g),
                        ).props("flat dense no-caps"),
                        f"dlq-group-redrive-{mark}",
                    )
                    tag(
                        ui.button(
                            "Discard all",
                            icon="delete_outline",
                            on_click=lambda g=group: self._discard_group(g),
                        ).props("flat dense no-caps color=negative"),
                        f"dlq-group-discard-{mark}",
                    )

    async def _show_group(self, group: pipeline_data.DeadLetterGroup) -> None:
        self.group = group
        self._draw_only()
        if self.toggle.value != "waiting":
            self.toggle.value = "waiting"  # the toggle's change loads the list
            return
        self.letters.page = 1
        await self.letters.load()

    async def _show_every_kind(self) -> None:
        self.group = None
        self._draw_only()
        self.letters.page = 1
        await self.letters.load()

    def _draw_only(self) -> None:
        self.only.clear()
        self.only.visible = self.group is not None
        if self.group is None:
            return
        with self.only:
            ui.label(f"Only: {texts.printable(self.group.kind, 80)}").classes(
                "text-sm text-slate-700 truncate min-w-0"
            )
            tag(
                ui.button("Every kind", icon="close", on_click=self._show_every_kind).props(
                    "flat dense no-caps"
                ),
                "dlq-only-clear",
            )

    def _forget(self, group: pipeline_data.DeadLetterGroup) -> None:
        """Stop showing only ``group``'s letters once its letters went."""
        shown = self.group
        if shown is not None and (shown.source_topic, shown.kind) == (
            group.source_topic,
            group.kind,
        ):
            self.group = None
            self._draw_only()

    async def _state(self, event: Any) -> None:
        self.state = event.value or "waiting"
        self.letters.page = 1
        await self.letters.load()

    # --- the letters ------------------------------------------------------------------------

    async def _fetch_letters(self, request: PageRequest) -> Rows[pipeline_data.DeadLetterRow]:
        # The page about to be drawn brings its own boxes (none when it is empty).
        self.boxes = {}
        self.bulk = []
        group = self.group
        letters = pipeline_data.LetterFilter(
            self.state,
            group.source_topic if group else None,
            group.kind if group else None,
        )
        async with self.rt.session() as session:
            return await pipeline_data.dead_letters(session, request, letters)

    def _draw_letters(self, rows: Sequence[pipeline_data.DeadLetterRow]) -> None:
        self.boxes = {}
        with ui.row().classes("w-full items-center gap-x-3 gap-y-1"):
            every = tag(ui.checkbox("All on this page"), "dlq-choose-page").props("dense")
            self.chosen_label = tag(ui.label(), "dlq-chosen").classes("text-sm text-slate-600")
            self.bulk = [
                tag(
                    ui.button(
                        "Re-drive chosen", icon="replay", on_click=self._redrive_chosen
                    ).props("flat dense no-caps"),
                    "dlq-redrive-chosen",
                ),
                tag(
                    ui.button(
                        "Discard chosen", icon="delete_outline", on_click=self._discard_chosen
                    ).props("flat dense no-caps color=negative"),
                    "dlq-discard-chosen",
                ),
            ]
        every.on_value_change(lambda e: self._choose_page(bool(e.value)))
        with ui.column().classes(
            "w-full gap-2 lg:gap-0 lg:border lg:border-slate-200 lg:rounded lg:bg-white"
        ):
            heading = (
                f"max-lg:hidden {_LETTER_GRID} w-full gap-x-3 px-3 py-2 border-b border-slate-200"
            )
            with ui.element("div").classes(heading):
                ui.element("div")
                for label in ("When (UTC)", "Source", "Error", "Payload"):
                    ui.label(label).classes(_HEAD)
            for row in rows:
                self._letter(row)
        self._chosen_changed()

    def _letter(self, row: pipeline_data.DeadLetterRow) -> None:
        item = ui.element("div").classes(
            "w-full bg-white rounded border border-slate-200 lg:rounded-none lg:border-0 "
            "lg:border-b lg:last:border-b-0"
        )
        with tag(item, "dlq-row"):
            line = ui.element("div").classes(
                f"flex flex-wrap {_LETTER_GRID} items-start gap-x-3 gap-y-1 p-3"
            )
            with line:
                box = tag(ui.checkbox(), f"dlq-choose-{row.id}").props("dense")
                box.on_value_change(self._chosen_changed)
                self.boxes[row.id] = box
                with ui.column().classes("gap-0 min-w-0 flex-1 lg:flex-none"):
                    ui.label(_utc(row.occurred_at)).classes("text-sm")
                    if row.redriven_at:
                        tag(ui.label(f"re-driven {_utc(row.redriven_at)}"), "dlq-redriven").classes(
                            "text-xs text-emerald-700"
                        )
                with ui.column().classes("gap-0 min-w-0 w-full lg:w-auto order-last lg:order-none"):
                    ui.label(row.source_topic).classes("text-sm truncate")
                    ui.label(
                        f"partition {row.partition} · offset {formatting.number(row.offset)}"
                    ).classes("text-xs text-slate-500 truncate")
                tag(ui.label(one_line(row.error, 400)), "dlq-error").classes(
                    "text-sm text-red-700 w-full lg:w-auto min-w-0 line-clamp-2 lg:line-clamp-none "
                    "lg:truncate break-words order-last lg:order-none"
                )
                tag(ui.label(one_line(row.payload) or "(empty)"), "dlq-preview").classes(
                    "text-xs font-mono text-slate-700 w-full lg:w-auto min-w-0 line-clamp-2 "
                    "lg:line-clamp-none lg:truncate break-all order-last lg:order-none"
                )
                with ui.row().classes("gap-0 no-wrap items-center lg:justify-end"):
                    opener = tag(
                        ui.button(icon="expand_more").props(
                            'flat dense round aria-label="Full error and payload"'
                        ),
                        f"dlq-show-{row.id}",
                    )
                    opener.tooltip("Full error and payload")
                    redrive = tag(
                        ui.button(icon="replay", on_click=lambda r=row: self._redrive_one(r)).props(
                            'flat dense round aria-label="Re-drive"'
                        ),
                        f"dlq-redrive-{row.id}",
                    )
                    redrive.tooltip("Re-drive" + (" again" if row.redriven_at else ""))
            detail = tag(
                ui.column().classes("w-full gap-2 px-3 pb-3 min-w-0"), f"dlq-detail-{row.id}"
            )
            detail.visible = False
            opener.on_click(lambda r=row, d=detail, o=opener: self._toggle(r, d, o))

    async def _toggle(
        self, row: pipeline_data.DeadLetterRow, detail: ui.column, opener: ui.button
    ) -> None:
        if detail.visible:
            detail.visible = False
            opener.props("icon=expand_more")
            return
        async with self.rt.session() as session:
            letter = await pipeline_data.dead_letter(session, row.id)
        detail.clear()
        with detail:
            if letter is None:
                ui.label("This dead letter is gone (discarded meanwhile).").classes(
                    "text-slate-500 italic"
                )
            else:
                self._detail(row, letter)
        detail.visible = True
        opener.props("icon=expand_less")

    def _detail(
        self, row: pipeline_data.DeadLetterRow, letter: pipeline_data.DeadLetterDetail
    ) -> None:
        ui.label(f"Key: {texts.printable(letter.key, 500) if letter.key else '—'}").classes(
            "text-sm break-all"
        )
        ui.label("Error").classes(_HEAD)
        with tag(ui.column().classes("gap-0 min-w-0"), "dlq-full-error"):
            for sentence in letter.error.split("; "):
                ui.label(texts.printable(sentence, 2000)).classes(
                    "text-sm text-red-700 break-words"
                )
        ui.label(
            "Payload" + (" (base64: the bytes were not UTF-8 text)" if letter.is_base64 else "")
        ).classes(_HEAD)
        shown = pretty_payload(letter.payload, is_base64=letter.is_base64) or "(empty)"
        block = ui.element("pre").classes(
            "w-full max-h-96 overflow-auto text-xs font-mono bg-slate-50 border border-slate-200 "
            "rounded p-3 m-0 whitespace-pre-wrap break-all"
        )
        # Long values wrap in the box rather than hide off its edge; indentation stays.
        with tag(block, "dlq-payload"):
            ui.label(shown).classes("whitespace-pre-wrap break-all")
        if letter.payload_chars > len(letter.payload):
            ui.label(
                f"The first {formatting.number(len(letter.payload))} of "
                f"{formatting.number(letter.payload_chars)} characters."
            ).classes("text-xs text-slate-500")
        with ui.row().classes("gap-2"):
            again = " again" if letter.redriven_at else ""
            tag(
                ui.button(
                    f"Re-drive{again}", icon="replay", on_click=lambda: self._redrive_one(row)
                ).props("flat dense no-caps"),
                f"dlq-detail-redrive-{letter.id}",
            )
            tag(
                ui.button(
                    "Discard", icon="delete_outline", on_click=lambda: self._discard_one(letter.id)
                ).props("flat dense no-caps color=negative"),
                f"dlq-discard-{letter.id}",
            )

    def _chosen(self) -> tuple[int, ...]:
        return tuple(i for i, box in self.boxes.items() if box.value)

    def _chosen_changed(self) -> None:
        count = len(self._chosen())
        if self.chosen_label is not None:
            self.chosen_label.text = f"{formatting.number(count)} chosen"
        for button in self.bulk:
            button.set_enabled(count > 0 and not self.busy)

    def _choose_page(self, value: bool) -> None:
        for box in self.boxes.values():
            box.value = value

    # --- the actions ------------------------------------------------------------------------

    async def _redrive_one(self, row: pipeline_data.DeadLetterRow) -> None:
        again = " again" if row.redriven_at else ""
        if not await confirm(
            f"Re-drive this message{again} to {row.source_topic}?",
            "Its original payload is published to the source topic and processed anew.",
            ok="Re-drive",
        ):
            return
        topics: list[str] = []

        async def work() -> None:
            async with transaction(self.rt) as session:
                topics.append(await pipeline_data.redrive(session, self.rt.settings, row.id))

        if await guarded(work):
            ui.notify(f"Re-driven to {topics[0]}.", type="positive")
            await self.reload()

    async def _redrive_group(self, group: pipeline_data.DeadLetterGroup) -> None:
        if not await confirm(
            f"Re-drive {_letters(group.count)} to {group.source_topic}?",
            f"Every waiting letter of “{texts.printable(group.kind, 120)}” is published to its "
            "source topic again and processed anew; letters that arrived after this page was "
            "drawn are left for another look.",
            ok="Re-drive",
        ):
            return
        await self._redrive(pipeline_data.OfKind.of(group), group)

    async def _redrive_chosen(self) -> None:
        chosen = self._chosen()
        if not chosen:
            return
        if not await confirm(
            f"Re-drive {_letters(len(chosen))}?",
            "Each chosen letter that still waits is published to its source topic again; "
            "those re-driven before are left alone (re-drive one of them again with its own "
            "button).",
            ok="Re-drive",
        ):
            return
        await self._redrive(pipeline_data.Chosen(chosen))

    async def _redrive(
        self, which: pipeline_data.Which, group: pipeline_data.DeadLetterGroup | None = None
    ) -> None:
        """Re-drive in batches, a transaction each, until none of ``which`` waits; then stop
        showing only ``group``'s letters."""
        if self.busy:
            return
        self.busy = True
        self._chosen_changed()
        done, topics, error = 0, set[str](), None
        try:
            while True:
                batch = await self._redrive_batch(which)
                if batch is None:  # refused, and said so
                    break
                done += batch.count
                topics.update(batch.topics)
                error = batch.error
                if error is not None or not batch.full:
                    break
        finally:
            self.busy = False
        if done:
            ui.notify(
                f"{_letters(done)} re-driven to {', '.join(sorted(topics))}.", type="positive"
            )
        elif error is None:
            ui.notify("Nothing left to re-drive: these letters were re-driven already.")
        if error is not None:
            ui.notify(f"{error}. The others still wait.", type="negative", multi_line=True)
        if group is not None:
            self._forget(group)
        await self.reload()

    async def _redrive_batch(self, which: pipeline_data.Which) -> pipeline_data.Redriven | None:
        batch: list[pipeline_data.Redriven] = []

        async def work() -> None:
            async with transaction(self.rt) as session:
                batch.append(
                    await pipeline_data.redrive_waiting(session, self.rt.settings, self.me, which)
                )

        return batch[0] if await guarded(work) else None

    async def _discard_group(self, group: pipeline_data.DeadLetterGroup) -> None:
        await self._discard(
            pipeline_data.OfKind.of(group),
            f"Discard {_letters(group.count)}?",
            f"Every waiting letter of “{texts.printable(group.kind, 120)}” on "
            f"{group.source_topic} leaves this list for good.",
            group,
        )

    async def _discard_chosen(self) -> None:
        chosen = self._chosen()
        if chosen:
            await self._discard(
                pipeline_data.Chosen(chosen),
                f"Discard {_letters(len(chosen))}?",
                "The chosen letters leave this list for good.",
            )

    async def _discard_one(self, letter_id: int) -> None:
        await self._discard(
            pipeline_data.Chosen((letter_id,)),
            "Discard this dead letter?",
            "It leaves this list for good.",
        )

    async def _discard(
        self,
        which: pipeline_data.Which,
        question: str,
        detail: str,
        group: pipeline_data.DeadLetterGroup | None = None,
    ) -> None:
        kept = " The engine's copy on the dead-letter topic stays for as long as Kafka keeps it."
        if not await confirm(question, detail + kept, ok="Discard"):
            return
        gone: list[int] = []

        async def work() -> None:
            async with transaction(self.rt) as session:
                gone.append(await pipeline_data.discard(session, self.me, which))

        if await guarded(work):
            if gone[0]:
                ui.notify(f"{_letters(gone[0])} discarded.", type="positive")
            else:
                ui.notify("Nothing left to discard.")
            if group is not None:
                self._forget(group)
            await self.reload()


# Widths from a laptop's width on; the cells without one share the rest.
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
                ui.label(label).classes(f"{_HEAD} {_WIDTHS.get(key, 'flex-1 min-w-0')}")
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
        ui.label(label).classes(f"{_HEAD} lg:hidden")
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
