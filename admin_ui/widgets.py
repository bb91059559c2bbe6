"""Building blocks the pages share: the server-side paginated list (its ``PageRequest`` and
``Rows`` are ``admin_ui.queries.common``'s), the confirmation dialog, and form error display."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from nicegui import ui

from admin_ui.problems import FieldProblem
from admin_ui.queries.common import DeletedMode, PageRequest, Rows

R = TypeVar("R")
E = TypeVar("E", bound=ui.element)


def tag(element: E, name: str) -> E:
    """Name an element for tests: a NiceGUI marker (the ``user`` fixture) and a
    ``data-testid`` attribute (the browser tests)."""
    element.mark(name)
    element.props(f'data-testid="{name}"')
    return element


@dataclass(frozen=True)
class Column(Generic[R]):
    """A column: its heading and the text of its cell for a row (a link when ``href`` says)."""

    label: str
    cell: Callable[[R], str]
    href: Callable[[R], str | None] | None = None


class Listing(Generic[R]):
    """A table whose search, deleted-rows switches and pages are all done by the database.

    ``fetch`` gets a ``PageRequest`` and returns ``Rows``; only one page of rows ever leaves
    the database. ``actions`` adds buttons to each row's last cell. ``rows``, when given,
    draws the page of rows itself instead of the table (a layout that also suits a phone).
    """

    def __init__(
        self,
        name: str,
        columns: Sequence[Column[R]],
        fetch: Callable[[PageRequest], Awaitable[Rows[R]]],
        *,
        is_deleted: Callable[[R], bool] | None = None,
        actions: Callable[[R], None] | None = None,
        page_size: int = 20,
        searchable: bool = True,
        placeholder: str = "Search",
        deleted_switches: bool = True,
        empty_text: str = "Nothing here yet.",
        rows: Callable[[Sequence[R]], None] | None = None,
    ) -> None:
        self.name = name
        self.columns = list(columns)
        self.fetch = fetch
        self.is_deleted = is_deleted
        self.actions = actions
        self.page_size = page_size
        self.empty_text = empty_text
        self.rows = rows
        self.page = 1
        self.total = 0
        with ui.row().classes("w-full items-center gap-x-4 gap-y-1"):
            # The search box keeps its button beside it, also when a phone wraps the bar.
            with ui.row().classes("items-center gap-1 no-wrap") as search_box:
                self.search = ui.input(placeholder=placeholder).props("dense outlined clearable")
                tag(self.search.classes("w-60 sm:w-72"), f"{name}-search")
                self.search.on("keydown.enter", self._search)
                self.search.on("clear", self._search)
                button = ui.button(icon="search", on_click=self._search).props("flat dense")
                tag(button, f"{name}-search-button")
            search_box.visible = searchable
            self.show_deleted = tag(ui.switch("Show deleted"), f"{name}-show-deleted")
            self.only_deleted = tag(ui.switch("Only deleted"), f"{name}-only-deleted")
            self.show_deleted.visible = self.only_deleted.visible = deleted_switches
            self.show_deleted.on_value_change(self._show_changed)
            self.only_deleted.on_value_change(self._only_changed)
        self.body = tag(ui.column().classes("w-full gap-2"), f"{name}-list")
        with ui.row().classes("items-center gap-2"):
            self.prev = ui.button("Previous", on_click=self._previous).props("flat dense")
            tag(self.prev, f"{name}-prev")
            self.pager = tag(ui.label("").classes("text-sm text-slate-600"), f"{name}-pager")
            self.next = ui.button("Next", on_click=self._next).props("flat dense")
            tag(self.next, f"{name}-next")

    @property
    def mode(self) -> DeletedMode:
        """Which rows the switches ask for."""
        if self.only_deleted.value:
            return "deleted"
        return "all" if self.show_deleted.value else "live"

    async def load(self) -> None:
        """Fetch the current page again and redraw it."""
        request = PageRequest(
            search=(self.search.value or "").strip(),
            mode=self.mode,
            offset=(self.page - 1) * self.page_size,
            limit=self.page_size,
        )
        rows = await self.fetch(request)
        self.total = rows.total
        pages = max(1, math.ceil(rows.total / self.page_size))
        if self.page > pages:
            self.page = pages
            await self.load()
            return
        self.body.clear()
        with self.body:
            if not rows.items:
                empty = ui.label(self.empty_text).classes("text-slate-500 italic")
                empty.mark(f"{self.name}-empty")
            elif self.rows is not None:
                self.rows(rows.items)
            else:
                self._table(rows.items)
        self.pager.text = f"Page {self.page} of {pages} · {rows.total} in all"
        self.prev.set_enabled(self.page > 1)
        self.next.set_enabled(self.page < pages)

    def _table(self, items: Sequence[R]) -> None:
        with ui.element("q-markup-table").props("flat bordered dense").classes("w-full"):
            with ui.element("thead"), ui.element("tr"):
                for column in self.columns:
                    with ui.element("th").classes("text-left"):
                        ui.label(column.label)
                if self.actions is not None:
                    ui.element("th")
            with ui.element("tbody"):
                for item in items:
                    deleted = self.is_deleted(item) if self.is_deleted else False
                    row = tag(ui.element("tr"), f"{self.name}-row")
                    if deleted:
                        row.classes("bg-rose-50 text-slate-500")
                        row.mark(f"{self.name}-row", f"{self.name}-deleted-row")
                    with row:
                        for i, column in enumerate(self.columns):
                            with ui.element("td"):
                                text = column.cell(item)
                                href = column.href(item) if column.href else None
                                if href:
                                    ui.link(text, href)
                                else:
                                    ui.label(text)
                                if i == 0 and deleted:
                                    ui.badge("deleted", color="red").props("outline").classes(
                                        "ml-2"
                                    )
                        if self.actions is not None:
                            with ui.element("td"), ui.row().classes("gap-1 justify-end no-wrap"):
                                self.actions(item)

    async def _search(self) -> None:
        self.page = 1
        await self.load()

    async def _show_changed(self) -> None:
        # The two switches exclude each other; switching one on switches the other off, and
        # that second change reloads the list.
        if self.show_deleted.value and self.only_deleted.value:
            self.only_deleted.value = False
            return
        self.page = 1
        await self.load()

    async def _only_changed(self) -> None:
        if self.only_deleted.value and self.show_deleted.value:
            self.show_deleted.value = False
            return
        self.page = 1
        await self.load()

    async def _previous(self) -> None:
        if self.page > 1:
            self.page -= 1
            await self.load()

    async def _next(self) -> None:
        self.page += 1
        await self.load()


async def confirm(question: str, detail: str = "", *, ok: str = "Delete") -> bool:
    """Ask before doing something; ``True`` when confirmed. The dialog exists only meanwhile."""
    dialog = ui.dialog().props("persistent")
    with dialog, tag(ui.card().classes("w-96"), "confirm-dialog"):
        ui.label(question).classes("text-lg font-medium")
        if detail:
            ui.label(detail).classes("text-sm text-slate-600")
        with ui.row().classes("w-full justify-end gap-2"):
            tag(
                ui.button("Cancel", on_click=lambda: dialog.submit(False)).props("flat"),
                "confirm-no",
            )
            color = "negative" if ok in ("Delete", "Remove") else "primary"
            yes = ui.button(ok, on_click=lambda: dialog.submit(True)).props(f"color={color}")
            tag(yes, "confirm-yes")
    result = await dialog
    if not dialog.is_deleted:
        dialog.delete()
    return bool(result)


class ErrorBox:
    """A place on the page where a form's refusal is written (never a traceback)."""

    def __init__(self, marker: str) -> None:
        self.label = ui.label("").classes(
            "text-red-700 bg-red-50 border border-red-200 rounded px-3 py-2 w-full"
        )
        tag(self.label, marker)
        self.label.visible = False

    def show(self, message: str) -> None:
        """Write ``message``."""
        self.label.text = message
        self.label.visible = True

    def clear(self) -> None:
        """Hide the box."""
        self.label.text = ""
        self.label.visible = False


def show_problems(problems: Sequence[FieldProblem], fields: dict[str, Any], box: ErrorBox) -> None:
    """Put each problem under its field (``fields`` maps paths to inputs) and list them all."""
    for element in fields.values():
        if hasattr(element, "error"):
            element.error = None
    lines = []
    for problem in problems:
        element = fields.get(problem.path)
        if element is not None and hasattr(element, "error"):
            element.error = problem.message
        lines.append(f"{problem.path.replace('_', ' ')}: {problem.message}")
    if lines:
        box.show("Please correct: " + "; ".join(lines))
    else:
        box.clear()


def as_int(value: Any) -> Any:
    """A number input's value as an int when it is whole (``None`` stays ``None``); anything
    else is returned unchanged so the validation names it."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def blank_to_none(value: Any) -> Any:
    """An empty text field means "not set"."""
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def time_field(label: str, value: str = "") -> ui.input:
    """A time of day typed as ``14:00`` or picked on a clock; its value is the text."""
    field = ui.input(label, value=value, placeholder="HH:MM")
    with field.add_slot("append"):
        icon = ui.icon("schedule").classes("cursor-pointer")
        with icon, ui.menu() as menu:
            clock = ui.time(value=None).props("format24h")
            clock.on_value_change(lambda e: field.set_value(e.value or ""))
        menu.on("before-show", lambda: clock.set_value(field.value or None))
    return field


def datetime_field(label: str, value: str = "") -> ui.input:
    """A date and time typed as ``2026-03-31 14:00`` or picked from a calendar and a clock;
    its value is the text (read it with ``campaign_texts.read_local``)."""
    field = ui.input(label, value=value, placeholder="YYYY-MM-DD HH:MM")

    def picked() -> None:
        if day.value:
            field.value = f"{day.value} {clock.value or '00:00'}"

    def opened() -> None:
        text = (field.value or "").strip()
        day.set_value(text[:10] or None)
        clock.set_value(text[11:16] or None)

    with field.add_slot("append"):
        icon = ui.icon("event").classes("cursor-pointer")
        with icon, ui.menu() as menu, ui.element("div").classes("flex flex-col sm:flex-row"):
            day = ui.date(value=None, mask="YYYY-MM-DD").props("flat minimal")
            clock = ui.time(value=None).props("flat format24h")
        day.on_value_change(picked)
        clock.on_value_change(picked)
        menu.on("before-show", opened)
    return field
