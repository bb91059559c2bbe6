"""What every list and write of the panel shares: the page of rows a list asks for, the
deleted-rows switch, search patterns, the admin's scope, and the catalog's refusals in words.

Lists always ask for deleted rows too (``ALL``) and filter on the listed table's own
``deleted_at``: the soft-delete hook would otherwise also filter the joined tables, and "only
deleted stores" would then only show stores of deleted merchants.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeAlias, TypeVar

from sqlalchemy import ColumnElement, Select, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from admin_ui.problems import DomainRefusal, FieldsRefused
from admin_ui.queries.admins import Principal
from domain.catalog import CatalogRefusal, InvalidFields

ALL = {"include_deleted": True}
R = TypeVar("R")
T = TypeVar("T")
AnySelect: TypeAlias = "Select[*tuple[Any, ...]]"
S = TypeVar("S", bound=AnySelect)

DeletedMode = Literal["live", "all", "deleted"]


@dataclass(frozen=True)
class PageRequest:
    """What a list asks its query for: a search text, which rows, and one page of them."""

    search: str
    mode: DeletedMode
    offset: int
    limit: int


@dataclass(frozen=True)
class Rows(Generic[R]):
    """One page of rows and how many rows match in all."""

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


async def page(
    session: AsyncSession, query: AnySelect, request: PageRequest, *order: Any
) -> tuple[Sequence[Any], int]:
    """One page of ``query``'s rows, in ``order``, and how many rows it has in all."""
    total = await session.scalar(
        select(func.count()).select_from(query.order_by(None).subquery()).execution_options(**ALL)
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
