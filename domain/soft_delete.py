"""Soft delete: deleted rows are hidden from every ORM query unless asked for.

The filter is a ``do_orm_execute`` hook on the sync ``Session`` class adding
``with_loader_criteria`` for every soft-deletable model, so ``AsyncSession`` (which runs a
sync session inside) is covered too. Execution options:

- ``include_deleted=True``: live and deleted rows;
- ``only_deleted=True``: deleted rows of the queried entity (the first one selected) only;
  the rows it is joined to are not filtered.

Hand-written Core SQL (the batch pipeline) filters ``deleted_at IS NULL`` itself.

A deletion and a restore are bulk UPDATEs, which the ORM's unit of work (and so the audit
trail's hook) never sees: each records itself, one row per row asked for, its cascade counted
in the summary (``domain.audit_trail``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

from domain import audit_trail
from domain.models import (
    SOFT_DELETABLE,
    Customer,
    LoyaltyCard,
    LoyaltyProgram,
    Merchant,
    SoftDeleteMixin,
    Store,
)


@event.listens_for(Session, "do_orm_execute")
def _hide_deleted(state: ORMExecuteState) -> None:
    if not (state.is_select or state.is_update):
        return
    if state.is_column_load or state.is_relationship_load:
        return
    if state.execution_options.get("include_deleted", False):
        return
    if state.execution_options.get("only_deleted", False):
        # Deleted rows of the queried entity only; the rows it is joined to are not filtered,
        # so "the deleted cards of this (live) merchant" finds them.
        primary = state.bind_mapper.class_ if state.bind_mapper is not None else None
        if primary in SOFT_DELETABLE:
            state.statement = state.statement.options(
                with_loader_criteria(
                    primary, lambda cls: cls.deleted_at.is_not(None), include_aliases=True
                )
            )
        return
    for model in SOFT_DELETABLE:
        state.statement = state.statement.options(
            with_loader_criteria(model, lambda cls: cls.deleted_at.is_(None), include_aliases=True)
        )


class RestoreConflict(Exception):
    """A row cannot come back: a live row took its code or email since it was deleted."""


# What a deletion of each kind of row takes along with it (the parent's foreign key column).
_CASCADE: dict[type[SoftDeleteMixin], tuple[tuple[type[SoftDeleteMixin], str], ...]] = {
    Merchant: (
        (Store, "merchant_id"),
        (LoyaltyProgram, "merchant_id"),
        (Customer, "merchant_id"),
        (LoyaltyCard, "merchant_id"),
    ),
    LoyaltyProgram: ((LoyaltyCard, "program_id"),),
    Customer: ((LoyaltyCard, "customer_id"),),
}


async def soft_delete(
    session: AsyncSession,
    model: type[SoftDeleteMixin],
    ids: Sequence[int],
    *,
    by: str,
    at: datetime | None = None,
) -> uuid.UUID:
    """Hide rows and, by cascade, what belongs to them; returns the deletion's id.

    Each live row of ``ids`` gets a ``delete`` in the audit trail, naming what went with it.
    """
    deletion_id = uuid.uuid4()
    when = at or datetime.now(UTC)
    live = await _live_ids(session, model, ids)
    await _mark(session, model, "id", ids, by, when, deletion_id)
    taken: list[str] = []
    for child, fk in _CASCADE.get(model, ()):
        count = await _mark(session, child, fk, ids, by, when, deletion_id)
        if count:
            taken.append(f"{count} {audit_trail.AUDITED[child].entity}(s)")
    note = f"with {', '.join(taken)}" if taken else None
    await _record(session, model, live, "delete", {"deleted_at": None}, {"deleted_at": when}, note)
    return deletion_id


async def _live_ids(
    session: AsyncSession, model: type[SoftDeleteMixin], ids: Sequence[int]
) -> list[int]:
    table: Any = model
    return list(
        await session.scalars(
            select(table.id)
            .where(table.id.in_(ids), table.deleted_at.is_(None))
            .execution_options(include_deleted=True)
        )
    )


async def _record(
    session: AsyncSession,
    model: type[SoftDeleteMixin],
    ids: Sequence[int],
    action: str,
    before: dict[str, object],
    after: dict[str, object],
    note: str | None,
) -> None:
    if not ids:
        return
    owners = await audit_trail.owners(session, model, ids)
    for row_id in ids:
        owner = owners.get(row_id, audit_trail.Owned(None, None))
        await audit_trail.record(
            session,
            action=action,
            entity=audit_trail.AUDITED[model].entity,
            entity_id=row_id,
            merchant_id=owner.merchant_id,
            before=before,
            after=after,
            label=owner.label,
            note=note,
        )


async def _mark(
    session: AsyncSession,
    model: type[SoftDeleteMixin],
    column: str,
    ids: Sequence[int],
    by: str,
    when: datetime,
    deletion_id: uuid.UUID,
) -> int:
    table: Any = model
    result: Any = await session.execute(
        update(table)
        .where(getattr(table, column).in_(ids), table.deleted_at.is_(None))
        .values(deleted_at=when, deleted_by=by, deletion_id=deletion_id)
        .execution_options(include_deleted=True, synchronize_session=False)
    )
    return int(result.rowcount or 0)


async def restore(session: AsyncSession, model: type[SoftDeleteMixin], ids: Sequence[int]) -> int:
    """Bring rows back with exactly what their deletion hid; returns how many rows came back.

    A card deleted on its own before its merchant was deleted has another deletion id, so it
    stays deleted when the merchant is restored. Raises ``RestoreConflict`` (and restores
    nothing) when a live row took a restored row's code or email meanwhile. Each deleted row
    of ``ids`` gets a ``restore`` in the audit trail.
    """
    table: Any = model
    deleted = (
        await session.execute(
            select(table.id, table.deletion_id, table.deleted_at)
            .where(table.id.in_(ids), table.deleted_at.is_not(None))
            .execution_options(include_deleted=True)
        )
    ).all()
    restored = 0
    deletions = [row.deletion_id for row in deleted if row.deletion_id is not None]
    try:
        # A savepoint: a conflict leaves the caller's transaction usable.
        async with session.begin_nested():
            for kind in SOFT_DELETABLE:
                kind_table: Any = kind
                result: Any = await session.execute(
                    update(kind_table)
                    .where(kind_table.deletion_id.in_(deletions))
                    .values(deleted_at=None, deleted_by=None, deletion_id=None)
                    .execution_options(include_deleted=True, synchronize_session=False)
                )
                restored += result.rowcount or 0
    except IntegrityError as exc:
        raise RestoreConflict(
            f"cannot restore {model.__name__} {list(ids)}: a live row now uses its code, "
            "email or customer reference"
        ) from exc
    if len(deleted) == 1:
        others = restored - 1
        note = f"with {others} more row(s) of its deletion" if others > 0 else None
    else:
        note = f"({restored} rows restored in all)"
    for row in deleted:
        await _record(
            session,
            model,
            [row.id],
            "restore",
            {"deleted_at": row.deleted_at},
            {"deleted_at": None},
            note,
        )
    return restored
