"""What every list and write of the panel shares: the page of rows a list asks for (its sort
key, filters and page), the deleted-rows switch, search patterns, the admin's scope, the CSV
export of a list, and the catalog's refusals in words.

Lists always ask for deleted rows too (``ALL``) and filter on the listed table's own
``deleted_at``: the soft-delete hook would otherwise also filter the joined tables, and "only
deleted stores" would then only show stores of deleted merchants.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Literal, TypeAlias, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from admin_ui.formatting import zone_of
from admin_ui.problems import DomainRefusal, FieldsRefused
from admin_ui.queries.admins import Principal
from core.csv_cells import safe_cell
from domain.catalog import CatalogRefusal, InvalidFields

ALL = {"include_deleted": True}
R = TypeVar("R")
T = TypeVar("T")
AnySelect: TypeAlias = "Select[*tuple[Any, ...]]"
S = TypeVar("S", bound=AnySelect)

DeletedMode = Literal["live", "all", "deleted"]


EXPORT_CAP = 50_000
"""The most rows a list's CSV export holds: the file is built in memory and sent through the
page's connection, so a list of a million cards is exported in part (the page says so)."""


@dataclass(frozen=True)
class PageRequest:
    """What a list asks its query for: a search text, which rows, one page of them, the sort
    key (one of the list's, ``""`` for its own order) and the filters chosen (key, value)."""

    search: str
    mode: DeletedMode
    offset: int
    limit: int
    sort: str = ""
    descending: bool = False
    filters: tuple[tuple[str, str], ...] = ()

    def filter(self, key: str) -> str:
        """The value chosen for the filter ``key``, ``""`` when none."""
        return dict(self.filters).get(key, "")

    def filter_id(self, key: str) -> int | None:
        """The filter ``key``'s value as a row id, ``None`` when none or not a number (a
        tampered value then filters nothing in, never everything)."""
        value = self.filter(key)
        if not value:
            return None
        return int(value) if value.isascii() and value.isdigit() and len(value) <= 18 else -1


@dataclass(frozen=True)
class Rows(Generic[R]):
    """One page of rows and how many rows match in all (counted only so far: see
    :func:`page`)."""

    items: Sequence[R]
    total: int


def deleted_filter(column: Any, mode: DeletedMode) -> ColumnElement[bool]:
    """The condition on a ``deleted_at`` column that the deleted-rows switch asks for."""
    if mode == "live":
        return column.is_(None)  # type: ignore[no-any-return]
    if mode == "deleted":
        return column.is_not(None)  # type: ignore[no-any-return]
    return true()


def like(text_: str) -> str:
    """An ``ILIKE`` pattern matching ``text_`` anywhere, its ``%`` and ``_`` taken literally."""
    escaped = text_.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def scoped(query: S, column: Any, me: Principal) -> S:
    """``query`` restricted to the admin's merchant (``column`` holds the merchant's id)."""
    if me.is_platform:
        return query
    return query.where(column == me.merchant_id)


COUNT_CAP = 10_000
"""Lists count their rows only this far past the page shown, and say "more than" beyond:
counting a million cards' rows on every page and every keystroke of a search took seconds
(1 to 2 s at 1M cards on the statistics benchmark's data)."""


async def page(
    session: AsyncSession, query: AnySelect, request: PageRequest, *order: Any
) -> tuple[Sequence[Any], int]:
    """One page of ``query``'s rows, in ``order``, and how many rows it has in all, counted
    up to ``request.offset + COUNT_CAP + 1``: a count above ``offset + COUNT_CAP`` means
    "more than that" (:func:`counted_past`)."""
    bound = request.offset + COUNT_CAP + 1
    total = await session.scalar(
        select(func.count())
        .select_from(query.order_by(None).limit(bound).subquery())
        .execution_options(**ALL)
    )
    rows = (
        await session.execute(
            query.order_by(*order)
            .offset(request.offset)
            .limit(request.limit)
            .execution_options(**ALL)
        )
    ).all()
    return rows, int(total or 0)


def counted_past(total: int, offset: int) -> bool:
    """Whether a count from :func:`page` for a page at ``offset`` stopped at its bound (more
    rows match than it says)."""
    return total > offset + COUNT_CAP


class UnknownSort(DomainRefusal):
    """A list was asked to sort by a key that is not one of its own."""


def ordering(
    request: PageRequest, keys: Mapping[str, Any], default: Sequence[Any], tie: Any
) -> list[Any]:
    """The ORDER BY of a list: ``default`` unless the request names one of ``keys`` (a
    whitelist: anything else is refused), then that column with ``tie`` (the row id) after it,
    so rows of equal values keep one order from page to page. Empty values come last."""
    if not request.sort:
        return list(default)
    column = keys.get(request.sort)
    if column is None:
        raise UnknownSort(f"this list cannot be sorted by {request.sort!r}")
    if request.descending:
        return [column.desc().nulls_last(), tie.desc()]
    return [column.asc().nulls_last(), tie.asc()]


# A cell beginning with one of these is read as a formula by spreadsheets (CSV injection).
def csv_time(at: datetime | None, zone: ZoneInfo | str | None) -> str:
    """A time for a CSV file: ISO 8601 on the merchant's clock, with its offset."""
    if at is None:
        return ""
    return at.astimezone(zone_of(zone)).isoformat(timespec="seconds")


@dataclass(frozen=True)
class CsvExport:
    """A list's rows as a CSV file (UTF-8 with a byte order mark, which spreadsheets need to
    read accents), and how many rows matched in all."""

    filename: str
    content: bytes
    rows: int
    total: int

    @property
    def truncated(self) -> bool:
        """Whether more rows matched than the file holds (``EXPORT_CAP``)."""
        return self.total > self.rows


async def export(
    session: AsyncSession,
    query: AnySelect,
    order: Sequence[Any],
    header: Sequence[str],
    cells: Callable[[Any], Sequence[Any]],
    filename: str,
    *,
    cap: int = EXPORT_CAP,
) -> CsvExport:
    """Every row of ``query`` (a list's, with its scope, search and filters), in ``order``, up
    to ``cap``, as CSV: ``cells`` makes a row's cells, each neutralised by ``safe_cell``."""
    total = await session.scalar(
        select(func.count()).select_from(query.order_by(None).subquery()).execution_options(**ALL)
    )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    written = 0
    result = await session.stream(
        query.order_by(*order).limit(cap).execution_options(yield_per=1000, **ALL)
    )
    # By batches: an await per row would cost more than the rows themselves.
    async for batch in result.partitions():
        writer.writerows([safe_cell(cell) for cell in cells(row)] for row in batch)
        written += len(batch)
    return CsvExport(filename, out.getvalue().encode("utf-8-sig"), written, int(total or 0))


async def live(session: AsyncSession, model: type[T], row_id: int, allowed: bool) -> T:
    """The live row, when the admin may see it; ``DomainRefusal`` otherwise."""
    row = await session.get(model, row_id)
    if row is None or not allowed:
        raise DomainRefusal(f"this {model.__name__.lower()} does not exist or is deleted")
    return row


@contextmanager
def catalog_refusals() -> Iterator[None]:
    """The catalog's refusals as ``DomainRefusal``s, the sentences the pages show; refused
    fields as ``FieldsRefused``, which name them."""
    try:
        yield
    except CatalogRefusal as exc:
        raise DomainRefusal(str(exc)) from None
    except InvalidFields as exc:
        raise FieldsRefused(exc.errors) from None
