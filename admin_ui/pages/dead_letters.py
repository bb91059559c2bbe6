"""The pipeline page's dead letters: waiting ones grouped by kind of error with bulk re-drive
and discard, then the letters one by one (ticked ones re-driven or discarded together), each
opening to its full error and its payload pretty-printed. Times are UTC and say so."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nicegui import ui

from admin_ui import formatting, texts
from admin_ui.pages.common import guarded, section
from admin_ui.pages.dead_letter_view import HEAD, letter_body, utc
from admin_ui.payload_text import one_line
from admin_ui.queries import dead_letter_actions
from admin_ui.queries import dead_letters as dead_letter_data
from admin_ui.queries.admins import Principal
from admin_ui.queries.common import PageRequest, Rows
from admin_ui.runtime import Runtime, transaction
from admin_ui.widgets import Listing, confirm, tag

_LETTERS_STATES = {"waiting": "Waiting", "redriven": "Re-driven", "all": "All"}
# One grid for the list's heading and its lines from a laptop's width on: the box to tick,
# when, where from, then the error and the payload sharing the rest, and the buttons.
_LETTER_GRID = "lg:grid lg:grid-cols-[2rem_9rem_12rem_minmax(0,3fr)_minmax(0,2fr)_5rem]"


def _letters(count: int) -> str:
    return f"{formatting.number(count)} dead letter{'' if count == 1 else 's'}"


class DeadLetters:
    """The dead-letters section: the waiting letters grouped by kind of error with their bulk
    actions, then the letters themselves, a page at a time, each opening to its full error
    and payload."""

    def __init__(self, rt: Runtime, me: Principal) -> None:
        self.rt = rt
        self.me = me
        self.state: dead_letter_data.LetterState = "waiting"
        self.group: dead_letter_data.DeadLetterGroup | None = None
        self.boxes: dict[int, ui.checkbox] = {}
        self.busy = False
        self.bulk: list[ui.button] = []
        self.chosen_label: ui.label | None = None

    async def build(self) -> None:
        """Draw the section and load it."""
        with section("Dead letters"):
            self.counts = tag(ui.label().classes("text-sm text-slate-600"), "dlq-counts")
            ui.label("Waiting, by kind of error").classes("font-medium text-slate-700 mt-2")
            self.groups: Listing[dead_letter_data.DeadLetterGroup] = Listing(
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
            self.letters: Listing[dead_letter_data.DeadLetterRow] = Listing(
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
            counts = await dead_letter_data.dead_letter_counts(session)
        self.counts.text = (
            f"{formatting.number(counts.waiting)} waiting · "
            f"{formatting.number(counts.redriven)} re-driven"
        )
        await self.groups.load()
        await self.letters.load()

    # --- the groups -------------------------------------------------------------------------

    async def _fetch_groups(self, request: PageRequest) -> Rows[dead_letter_data.DeadLetterGroup]:
        async with self.rt.session() as session:
            return await dead_letter_data.dead_letter_groups(session, request)

    def _draw_groups(self, groups: Sequence[dead_letter_data.DeadLetterGroup]) -> None:
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
                        ui.label(f"first {utc(group.first_at)}").classes("text-slate-600")
                        ui.label(f"last {utc(group.last_at)}").classes("text-slate-600")
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

    async def _show_group(self, group: dead_letter_data.DeadLetterGroup) -> None:
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

    def _forget(self, group: dead_letter_data.DeadLetterGroup) -> None:
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

    async def _fetch_letters(self, request: PageRequest) -> Rows[dead_letter_data.DeadLetterRow]:
        # The page about to be drawn brings its own boxes (none when it is empty).
        self.boxes = {}
        self.bulk = []
        group = self.group
        letters = dead_letter_data.LetterFilter(
            self.state,
            group.source_topic if group else None,
            group.kind if group else None,
        )
        async with self.rt.session() as session:
            return await dead_letter_data.dead_letters(session, request, letters)

    def _draw_letters(self, rows: Sequence[dead_letter_data.DeadLetterRow]) -> None:
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
                    ui.label(label).classes(HEAD)
            for row in rows:
                self._letter(row)
        self._chosen_changed()

    def _letter(self, row: dead_letter_data.DeadLetterRow) -> None:
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
                    ui.label(utc(row.occurred_at)).classes("text-sm")
                    if row.redriven_at:
                        tag(ui.label(f"re-driven {utc(row.redriven_at)}"), "dlq-redriven").classes(
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
        self, row: dead_letter_data.DeadLetterRow, detail: ui.column, opener: ui.button
    ) -> None:
        if detail.visible:
            detail.visible = False
            opener.props("icon=expand_more")
            return
        async with self.rt.session() as session:
            letter = await dead_letter_data.dead_letter(session, row.id)
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
        self, row: dead_letter_data.DeadLetterRow, letter: dead_letter_data.DeadLetterDetail
    ) -> None:
        letter_body(letter)
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

    async def _redrive_one(self, row: dead_letter_data.DeadLetterRow) -> None:
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
                topics.append(
                    await dead_letter_actions.redrive(session, self.rt.settings, self.me, row.id)
                )

        if await guarded(work):
            ui.notify(f"Re-driven to {topics[0]}.", type="positive")
            await self.reload()

    async def _redrive_group(self, group: dead_letter_data.DeadLetterGroup) -> None:
        if not await confirm(
            f"Re-drive {_letters(group.count)} to {group.source_topic}?",
            f"Every waiting letter of “{texts.printable(group.kind, 120)}” is published to its "
            "source topic again and processed anew; letters that arrived after this page was "
            "drawn are left for another look.",
            ok="Re-drive",
        ):
            return
        await self._redrive(dead_letter_actions.OfKind.of(group), group)

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
        await self._redrive(dead_letter_actions.Chosen(chosen))

    async def _redrive(
        self,
        which: dead_letter_actions.Which,
        group: dead_letter_data.DeadLetterGroup | None = None,
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

    async def _redrive_batch(
        self, which: dead_letter_actions.Which
    ) -> dead_letter_actions.Redriven | None:
        batch: list[dead_letter_actions.Redriven] = []

        async def work() -> None:
            async with transaction(self.rt) as session:
                batch.append(
                    await dead_letter_actions.redrive_waiting(
                        session, self.rt.settings, self.me, which
                    )
                )

        return batch[0] if await guarded(work) else None

    async def _discard_group(self, group: dead_letter_data.DeadLetterGroup) -> None:
        await self._discard(
            dead_letter_actions.OfKind.of(group),
            f"Discard {_letters(group.count)}?",
            f"Every waiting letter of “{texts.printable(group.kind, 120)}” on "
            f"{group.source_topic} leaves this list for good.",
            group,
        )

    async def _discard_chosen(self) -> None:
        chosen = self._chosen()
        if chosen:
            await self._discard(
                dead_letter_actions.Chosen(chosen),
                f"Discard {_letters(len(chosen))}?",
                "The chosen letters leave this list for good.",
            )

    async def _discard_one(self, letter_id: int) -> None:
        await self._discard(
            dead_letter_actions.Chosen((letter_id,)),
            "Discard this dead letter?",
            "It leaves this list for good.",
        )

    async def _discard(
        self,
        which: dead_letter_actions.Which,
        question: str,
        detail: str,
        group: dead_letter_data.DeadLetterGroup | None = None,
    ) -> None:
        kept = " The engine's copy on the dead-letter topic stays for as long as Kafka keeps it."
        if not await confirm(question, detail + kept, ok="Discard"):
            return
        gone: list[int] = []

        async def work() -> None:
            async with transaction(self.rt) as session:
                gone.append(await dead_letter_actions.discard(session, self.me, which))

        if await guarded(work):
            if gone[0]:
                ui.notify(f"{_letters(gone[0])} discarded.", type="positive")
            else:
                ui.notify("Nothing left to discard.")
            if group is not None:
                self._forget(group)
            await self.reload()


# Widths from a laptop's width on; the cells without one share the rest.
