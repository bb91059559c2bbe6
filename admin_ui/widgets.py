"""Building blocks the pages share: the server-side paginated list (sortable headings, filters,
search as you type, CSV export; ``PageRequest`` and ``Rows`` are ``queries.common``'s), the
confirmation dialog; ``tag`` and the ``form_fields`` helpers are imported from here too."""

from __future__ import annotations

import asyncio
import math
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from nicegui import Client, background_tasks, ui

from admin_ui.form_fields import (
    ErrorBox,
    as_int,
    blank_to_none,
    datetime_field,
    show_problems,
    tag,
    time_field,
)
from admin_ui.formatting import number
from admin_ui.problems import DomainRefusal
from admin_ui.queries.common import (
    COUNT_CAP,
    EXPORT_CAP,
    CsvExport,
    DeletedMode,
    PageRequest,
    Rows,
    counted_past,
)

# ``tag`` and the form fields live in ``form_fields``; the pages import them from here too.
__all__ = [
    "Column",
    "ErrorBox",
    "Filter",
    "Listing",
    "as_int",
    "blank_to_none",
    "confirm",
    "datetime_field",
    "show_problems",
    "tag",
    "time_field",
]

R = TypeVar("R")

SEARCH_PAUSE_S = 0.3  # a list searches what its box holds this long after the last key


@dataclass(frozen=True)
class Column(Generic[R]):
    """A column: its heading and the text of its cell for a row (a link when ``href`` says).

    ``sort`` names the key the list's query sorts by when the heading is clicked (one of its
    whitelist; ``None``: not sortable); ``numeric`` aligns the column to the right.
    """

    label: str
    cell: Callable[[R], str]
    href: Callable[[R], str | None] | None = None
    sort: str | None = None
    numeric: bool = False


@dataclass(frozen=True)
class Filter:
    """A choice that narrows a list: its key in ``PageRequest.filters``, its label, and its
    options (value -> label; the value ``""``, "all", is added first)."""

    key: str
    label: str
    options: Mapping[str, str]
    value: str = ""
    all_label: str = "All"


# On a phone a table is a card per row, cells beside their ``data-label``: no sideways scroll.
# Wider, a table too wide for its box scrolls inside it.
_LIST_CSS = """
.listing-box { width: 100%; overflow-x: auto; }
.listing-table th.sortable { cursor: pointer; user-select: none; white-space: nowrap; }
.listing-table th.sortable:hover { color: #0f172a; }
@media (max-width: 640px) {
  .listing-table thead { display: none !important; }
  .listing-table table, .listing-table tbody, .listing-table tr {
    display: block !important; width: 100% !important; height: auto !important;
  }
  .listing-table tbody tr { border-bottom: 1px solid #e2e8f0; padding: 6px 0; }
  .listing-table tbody tr:last-child { border-bottom: none; }
  .listing-table tbody td {
    display: flex !important; justify-content: space-between; align-items: center;
    gap: 12px; width: 100% !important; height: auto !important; min-height: 28px;
    padding: 2px 12px !important; border: none !important; white-space: normal !important;
    text-align: right;
  }
  .listing-table tbody td::before {
    content: attr(data-label); position: static !important; background: none !important;
    color: #64748b; font-size: 0.75rem; text-align: left; flex: none;
  }
  .listing-table tbody td::after { display: none !important; }
  .listing-table tbody td > * { min-width: 0; overflow-wrap: anywhere; justify-content: flex-end; }
}
"""


_STYLED: weakref.WeakSet[Client] = weakref.WeakSet()


def _style_lists() -> None:
    """The lists' style, once per page however many lists it has."""
    client = ui.context.client
    if client not in _STYLED:
        ui.add_css(_LIST_CSS)
        _STYLED.add(client)


def stacked_on_phones(table: ui.element) -> ui.element:
    """A ``q-markup-table`` (cells with ``data-label``) as a card per row on a phone."""
    _style_lists()
    return table.classes("listing-table")


class Listing(Generic[R]):
    """A table whose search, sort, filters, deleted-rows switches and pages are all done by the
    database.

    ``fetch`` gets a ``PageRequest`` and returns ``Rows``; only one page of rows ever leaves
    the database. The search runs as the admin types (300 ms after the last key) and on
    Enter. A column with a ``sort`` key sorts the list when its heading is clicked (again:
    the other way round). ``filters`` add choices to the bar; ``export``, when given, offers
    the rows matching the search and filters as a CSV file. ``actions`` adds buttons to each
    row's last cell. ``rows``, when given, draws the page of rows itself instead of the table
    (a layout that also suits a phone); the table turns into one card per row on a phone.
    ``noun`` (plural, "stores") makes the empty list's words when a search or filter finds
    nothing; ``empty_text`` is said when the list is empty without them.
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
        sort: str = "",
        descending: bool = False,
        filters: Sequence[Filter] = (),
        export: Callable[[PageRequest], Awaitable[CsvExport]] | None = None,
        noun: str = "",
        page_sizes: Sequence[int] = (10, 20, 50, 100),
    ) -> None:
        self.name = name
        self.columns = list(columns)
        self.fetch = fetch
        self.is_deleted = is_deleted
        self.actions = actions
        self.page_size = page_size
        self.empty_text = empty_text
        self.rows = rows
        self.noun = noun
        self.sort = sort
        self.descending = descending
        self.export = export
        self.page = 1
        self.total = 0
        self._searched: str | None = None
        self._generation = 0
        self._pause: asyncio.Task[None] | None = None
        _style_lists()
        with ui.row().classes("w-full items-center gap-x-4 gap-y-1"):
            # The search box keeps its button beside it, also when a phone wraps the bar.
            with ui.row().classes("items-center gap-1 no-wrap") as search_box:
                # Every key reaches the server at once, and the search waits there (Quasar's
                # debounce sent the text late: the box could end up emptied after Enter).
                self.search = ui.input(placeholder=placeholder).props("dense outlined clearable")
                tag(self.search.classes("w-60 sm:w-72"), f"{name}-search")
                self.search.on_value_change(self._typed)
                self.search.on("keydown.enter", self._entered)
                button = ui.button(icon="search", on_click=self._search)
                tag(button.props('flat dense aria-label="Search"'), f"{name}-search-button")
            search_box.visible = searchable
            self.filters: dict[str, ui.select] = {}
            for choice in filters:
                options = {"": choice.all_label, **choice.options}
                select = ui.select(
                    options,
                    label=choice.label,
                    value=choice.value if choice.value in options else "",
                    with_input=len(options) > 8,
                ).props("dense outlined options-dense")
                tag(select.classes("w-48"), f"{name}-filter-{choice.key}")
                select.on_value_change(self._search)
                self.filters[choice.key] = select
            self.show_deleted = tag(ui.switch("Show deleted"), f"{name}-show-deleted")
            self.only_deleted = tag(ui.switch("Only deleted"), f"{name}-only-deleted")
            self.show_deleted.visible = self.only_deleted.visible = deleted_switches
            self.show_deleted.on_value_change(self._show_changed)
            self.only_deleted.on_value_change(self._only_changed)
            sortable = [c for c in self.columns if c.sort is not None]
            # A phone shows no headings (one card per row): the sort is chosen here instead.
            orders = {
                "": "Default order",
                **{f"{c.sort}:asc": f"{c.label} ↑" for c in sortable},
                **{f"{c.sort}:desc": f"{c.label} ↓" for c in sortable},
            }
            orders.setdefault(self._sort_value(), "As the page chose")
            self.sort_choice = ui.select(orders, label="Sort by", value=self._sort_value())
            self.sort_choice.props("dense outlined options-dense")
            tag(self.sort_choice.classes("w-48 sm:hidden"), f"{name}-sort")
            self.sort_choice.visible = bool(sortable) and rows is None
            self.sort_choice.on_value_change(self._sort_chosen)
            if export is not None:
                download = ui.button("CSV", icon="download", on_click=self._export)
                download.props("flat dense no-caps").classes("ml-auto")
                download.tooltip(
                    f"Download the rows matching the search and filters "
                    f"(up to {number(EXPORT_CAP)} rows)"
                )
                tag(download, f"{name}-export")
        self.body = tag(ui.column().classes("w-full gap-2"), f"{name}-list")
        with ui.row().classes("items-center gap-2"):
            self.prev = ui.button("Previous", on_click=self._previous).props("flat dense")
            tag(self.prev, f"{name}-prev")
            self.pager = tag(ui.label("").classes("text-sm text-slate-600"), f"{name}-pager")
            self.next = ui.button("Next", on_click=self._next).props("flat dense")
            tag(self.next, f"{name}-next")
            sizes = sorted({*page_sizes, page_size})
            self.sizes = ui.select(
                {size: f"{size} a page" for size in sizes}, value=page_size
            ).props("dense borderless options-dense")
            tag(self.sizes.classes("text-sm"), f"{name}-page-size")
            self.sizes.on_value_change(self._size_changed)

    @property
    def mode(self) -> DeletedMode:
        """Which rows the switches ask for."""
        if self.only_deleted.value:
            return "deleted"
        return "all" if self.show_deleted.value else "live"

    def request(self, *, whole: bool = False) -> PageRequest:
        """What the list asks for now: its page, or every row (``whole``, for the export)."""
        return PageRequest(
            search=(self.search.value or "").strip(),
            mode=self.mode,
            offset=0 if whole else (self.page - 1) * self.page_size,
            limit=EXPORT_CAP if whole else self.page_size,
            sort=self.sort,
            descending=self.descending,
            filters=tuple(
                (key, str(select.value)) for key, select in self.filters.items() if select.value
            ),
        )

    async def load(self) -> None:
        """Fetch the current page again and redraw it."""
        self._generation += 1
        generation = self._generation
        request = self.request()
        self._searched = request.search
        rows = await self.fetch(request)
        if generation != self._generation:
            return  # a newer search or click asked meanwhile: its rows are the ones to show
        self.total = rows.total
        pages = max(1, math.ceil(rows.total / self.page_size))
        if self.page > pages:
            self.page = pages
            await self.load()
            return
        self.body.clear()
        with self.body:
            if not rows.items:
                empty = ui.label(self._empty(request)).classes("text-slate-500 italic")
                tag(empty, f"{self.name}-empty")
            elif self.rows is not None:
                self.rows(rows.items)
            else:
                self._table(rows.items)
        if counted_past(rows.total, request.offset):
            # Counted only so far (a million cards are not counted on every page): say so.
            shown = request.offset + COUNT_CAP
            self.pager.text = (
                f"Page {number(self.page)} of more than {number(shown // self.page_size)} · "
                f"more than {number(shown)} in all"
            )
        else:
            self.pager.text = (
                f"Page {number(self.page)} of {number(pages)} · {number(rows.total)} in all"
            )
        self.prev.set_enabled(self.page > 1)
        self.next.set_enabled(self.page < pages)

    def _empty(self, request: PageRequest) -> str:
        """What to say when no row shows: what the admin can do about it."""
        noun = self.noun or "rows"
        if request.search:
            if self.noun:
                return (
                    f"No {noun} match “{request.search}”. Check the spelling or clear the search."
                )
            return f"Nothing matches “{request.search}”. Check the spelling or clear the search."
        if request.filters:
            return f"No {noun} match these filters. Choose “All” to see every one."
        if request.mode == "deleted":
            return f"No deleted {noun}." if self.noun else "Nothing is deleted."
        return self.empty_text

    def _heading(self, column: Column[R]) -> None:
        th = ui.element("th").classes("text-left" if not column.numeric else "text-right")
        if column.sort is None:
            with th:
                ui.label(column.label)
            return
        th.classes("sortable")
        tag(th, f"{self.name}-sort-{column.sort}")
        active = self.sort == column.sort
        order = ("descending" if self.descending else "ascending") if active else "none"
        th.props(f'aria-sort="{order}" tabindex="0" role="columnheader"')
        th.on("click", lambda key=column.sort: self._sort_by(key))
        th.on("keydown.enter", lambda key=column.sort: self._sort_by(key))
        with th, ui.row().classes("items-center gap-1 no-wrap inline-flex"):
            ui.label(column.label)
            if active:
                ui.icon("arrow_downward" if self.descending else "arrow_upward").classes("text-sm")
            else:
                ui.icon("unfold_more").classes("text-sm text-slate-400")

    def _table(self, items: Sequence[R]) -> None:
        with ui.element("div").classes("listing-box"):
            table = ui.element("q-markup-table").props("flat bordered dense")
            with table.classes("w-full listing-table"):
                with ui.element("thead"), ui.element("tr"):
                    for column in self.columns:
                        self._heading(column)
                    if self.actions is not None:
                        ui.element("th")
                with ui.element("tbody"):
                    for item in items:
                        self._row(item)

    def _row(self, item: R) -> None:
        deleted = self.is_deleted(item) if self.is_deleted else False
        row = tag(ui.element("tr"), f"{self.name}-row")
        if deleted:
            row.classes("bg-rose-50 text-slate-500")
            row.mark(f"{self.name}-row", f"{self.name}-deleted-row")
        with row:
            for i, column in enumerate(self.columns):
                cell = ui.element("td").props(f'data-label="{_attribute(column.label)}"')
                align = "justify-end" if column.numeric else ""
                with cell, ui.row().classes(f"items-center gap-1 no-wrap {align}"):
                    text = column.cell(item)
                    href = column.href(item) if column.href else None
                    if href:
                        ui.link(text, href)
                    else:
                        ui.label(text)
                    if i == 0 and deleted:
                        ui.badge("deleted", color="red").props("outline").classes("ml-2")
            if self.actions is not None:
                cell = ui.element("td").props('data-label=""')
                with cell, ui.row().classes("gap-1 justify-end no-wrap"):
                    self.actions(item)

    def _sort_value(self) -> str:
        if not self.sort:
            return ""
        return f"{self.sort}:{'desc' if self.descending else 'asc'}"

    async def _sort_by(self, key: str) -> None:
        if self.sort == key:
            self.descending = not self.descending
        else:
            self.sort, self.descending = key, False
        self.sort_choice.set_value(self._sort_value())  # it reloads the list

    async def _sort_chosen(self) -> None:
        key, _, direction = str(self.sort_choice.value or "").partition(":")
        self.sort, self.descending = key, direction == "desc"
        self.page = 1
        await self.load()

    def _typed(self) -> None:
        if self._pause is not None:
            self._pause.cancel()
        self._pause = background_tasks.create(self._search_after_pause(), name="list search")

    async def _search_after_pause(self) -> None:
        await asyncio.sleep(SEARCH_PAUSE_S)
        self._pause = None
        if (self.search.value or "").strip() != self._searched:  # not what Enter searched
            await self._search()

    async def _entered(self) -> None:
        if self._pause is not None:  # still waiting: see _search_after_pause
            self._pause.cancel()
        await self._search()

    async def _search(self) -> None:
        self.page = 1
        await self.load()

    async def _size_changed(self) -> None:
        self.page_size = int(self.sizes.value or self.page_size)
        self.page = 1
        await self.load()

    async def _export(self) -> None:
        if self.export is None:
            return
        try:
            made = await self.export(self.request(whole=True))
        except DomainRefusal as exc:
            ui.notify(str(exc), type="negative")
            return
        ui.download.content(made.content, made.filename, "text/csv")
        if made.truncated:
            ui.notify(
                f"The file holds the first {number(made.rows)} of {number(made.total)} rows: "
                "narrow the search or filters for the rest.",
                type="warning",
                multi_line=True,
            )
        else:
            rows = "row" if made.rows == 1 else "rows"
            ui.notify(f"{number(made.rows)} {rows} exported.", type="positive")

    async def _show_changed(self) -> None:
        # The switches exclude each other: switching one on switches the other off (reloads).
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


def _attribute(text: str) -> str:
    """Text safe inside a double-quoted HTML attribute of ``props``."""
    return text.replace("&", "&amp;").replace('"', "&quot;")


_DESTRUCTIVE = frozenset({"Delete", "Remove", "Discard", "Revoke", "Deactivate", "Erase"})


async def confirm(question: str, detail: str = "", *, ok: str = "Delete") -> bool:
    """Ask before doing something; ``True`` when confirmed. The dialog exists only meanwhile.

    It is made at the page's root, not where the click came from: a row's menu or a list
    redrawn meanwhile would take it away with them.
    """
    with ui.context.client.layout:
        dialog = ui.dialog().props("persistent")
    with dialog, tag(ui.card().classes("w-96 max-w-full"), "confirm-dialog"):
        ui.label(question).classes("text-lg font-medium")
        if detail:
            tag(ui.label(detail).classes("text-sm text-slate-600"), "confirm-detail")
        with ui.row().classes("w-full justify-end gap-2"):
            tag(
                ui.button("Cancel", on_click=lambda: dialog.submit(False)).props("flat"),
                "confirm-no",
            )
            # What cannot simply be taken back is red: hiding, removing, discarding, revoking.
            color = "negative" if ok.split(" ", 1)[0] in _DESTRUCTIVE else "primary"
            yes = ui.button(ok, on_click=lambda: dialog.submit(True)).props(f"color={color}")
            tag(yes, "confirm-yes")
    result = await dialog
    if not dialog.is_deleted:
        dialog.delete()
    return bool(result)
