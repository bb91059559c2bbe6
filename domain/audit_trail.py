"""The admin audit trail (issue 17): every change a person makes in the admin panel or on the
command line, with who, when, what, and the values before and after.

(``domain.audit`` is the other audit: the ledger checked against the cards.)

Who acts is a context variable: the panel sets it around each page and each transaction of a
signed-in admin (``admin_ui.runtime``), the ``loyalty`` command for the commands that change
data (``acting_as(f"cli:{user}", source="cli")``). Nothing is recorded automatically without
it, so the workers, the terminals and self-enrolment never write here.

Two ways a change gets here, one place for each fact:

- automatically: an ``after_flush`` hook of every ORM ``Session`` (registered when this module
  is imported, which ``domain.db`` does) records, while an actor is set, the inserts, the
  changed attributes of updates and the deletes of the models in ``AUDITED``; a change of
  ``deleted_at`` is a ``delete`` or a ``restore``, a secret alone a ``pin_reset`` /
  ``password_reset`` / ``secret_reset``, ``is_active`` alone an ``activate`` / ``deactivate``,
  lifting a lock an ``unlock``;
- explicitly, where a write bypasses the ORM's unit of work: the services record their own
  bulk writes (``record``: ``domain.soft_delete``; ``record_change_raw`` over asyncpg: the
  engine's card adjustments and (de)activations), and a caller records a change of its own
  with ``record_change`` (customer erasure). Such a caller wraps its other writes in
  ``recording_by_hand()``: within it only ``record_change`` records, so the change is one row.
  Explicit records are made also while nobody acts, naming the actor ``system``.

Masking is done here only: personal fields (``PERSONAL_FIELDS``, and the staff's names) are
kept masked (``a***@example.com``, ``J***``), secrets (``SECRET_FIELDS``) never: only that they
were set or changed. Rows are never changed: a trigger refuses UPDATE and DELETE of the table,
and nothing here offers either.

The hot path (the worker over asyncpg) never opens an ORM session, so the hook costs it nothing.
"""

from __future__ import annotations

import enum
import getpass
import json
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final, Literal

from sqlalchemy import Select, event, insert, inspect, null, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, UOWTransaction

from domain.engine.conn import Conn
from domain.models import (
    AdminAuditLog,
    AdminUser,
    Campaign,
    Customer,
    LoyaltyCard,
    LoyaltyProgram,
    Merchant,
    Reward,
    StaffPin,
    Store,
    TerminalDevice,
    WebhookEndpoint,
)

Source = Literal["panel", "cli", "system"]

SYSTEM: Final = "system"
"""The actor (and source) of a change recorded while nobody is acting."""

# --- who acts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Acting:
    actor: str
    source: Source


_acting: ContextVar[_Acting | None] = ContextVar("audit_acting", default=None)
_by_hand: ContextVar[bool] = ContextVar("audit_by_hand", default=False)


@contextmanager
def acting_as(actor: str, *, source: Source = "panel") -> Iterator[None]:
    """Within the block, changes are made by ``actor`` (an admin's user name, ``cli:<user>``)
    from ``source``, and the ORM's writes of audited models are recorded."""
    token = _acting.set(_Acting(actor, source))
    try:
        yield
    finally:
        _acting.reset(token)


def current_actor() -> str:
    """Who is acting now: ``"system"`` when nobody is."""
    acting = _acting.get()
    return acting.actor if acting is not None else SYSTEM


def current_source() -> Source:
    """Where the change comes from: ``panel``, ``cli``, or ``system`` when nobody is acting."""
    acting = _acting.get()
    return acting.source if acting is not None else SYSTEM


def cli_actor() -> str:
    """The actor of a ``loyalty`` command: ``cli:`` and the operating system's user."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # a container's uid without a name
        user = "unknown"
    return f"cli:{user}"


@contextmanager
def recording_by_hand() -> Iterator[None]:
    """Within the block nothing is recorded but by ``record_change``: not the ORM's writes,
    nor what the services record of their own (a soft delete, a card's deactivation). For code
    that records its change itself, as one row (an erasure is one ``erase``, not an
    ``update`` per field and a ``deactivate`` per card)."""
    token = _by_hand.set(True)
    try:
        yield
    finally:
        _by_hand.reset(token)


# --- what is recorded, and how it is masked -------------------------------------------------

# The kind of each audited model as the trail names it, and how its merchant is found: the row
# itself, its ``merchant_id``, or the merchant of its program or store.
Via = Literal["self", "merchant_id", "program_id", "store_id"]


@dataclass(frozen=True)
class Kind:
    """An audited model: its entity name, the way to its merchant, the field that names it."""

    entity: str
    via: Via
    label: str | None


AUDITED: dict[type[Any], Kind] = {
    Merchant: Kind("merchant", "self", "code"),
    Store: Kind("store", "merchant_id", "code"),
    LoyaltyProgram: Kind("program", "merchant_id", "name"),
    Reward: Kind("reward", "program_id", "code"),
    Campaign: Kind("campaign", "program_id", "code"),
    Customer: Kind("customer", "merchant_id", None),
    LoyaltyCard: Kind("card", "merchant_id", "card_number"),
    StaffPin: Kind("staff_pin", "store_id", "name"),
    AdminUser: Kind("admin_user", "merchant_id", "username"),
    WebhookEndpoint: Kind("webhook_endpoint", "merchant_id", "url"),
    TerminalDevice: Kind("terminal_device", "store_id", "name"),
}

ENTITIES: tuple[str, ...] = (*sorted(k.entity for k in AUDITED.values()),)
"""Every entity the trail names by itself (explicit callers may name others)."""

ACTIONS: dict[str, str] = {
    "create": "created",
    "update": "updated",
    "delete": "deleted",
    "restore": "restored",
    "activate": "activated",
    "deactivate": "deactivated",
    "adjust": "adjusted",
    "pin_reset": "reset the PIN of",
    "password_reset": "reset the password of",
    "secret_reset": "changed the secret of",
    "unlock": "unlocked",
    "erase": "erased",
    "redrive": "re-drove",
    "discard": "discarded",
}
"""The actions and the verb of each in a summary."""

PERSONAL_FIELDS = frozenset(
    {"email", "first_name", "last_name", "phone", "customer_ref", "push_token"}
)
"""Fields kept masked wherever they appear."""
# A person's name in a field that names a thing elsewhere (a store's name is not personal).
_PERSON_NAMES: dict[str, frozenset[str]] = {"staff_pin": frozenset({"name"})}

SECRET_FIELDS = frozenset(
    {
        "pin",
        "pin_hash",
        "password",
        "password_hash",
        "secret",
        "token",
        "token_hash",
        "pairing_code_hash",
        "link_token",
        "qr_token",
        "apple_authentication_token",
    }
)
"""Fields never stored: only that they were set or changed."""

SET_MARK = "[secret set]"
HIDDEN_MARK = "[secret]"
CHANGED_MARK = "[secret changed]"

# The row's id (the entry's ``entity_id``), what the database keeps by itself, and what the
# action implies: never part of a diff.
_IGNORED = frozenset({"id", "created_at", "updated_at", "deleted_by", "deletion_id"})
# The sign-in and PIN lock counters: a change of these alone that clears them is an unlock.
_LOCK_FIELDS = frozenset(
    {"failed_logins", "locked_until", "pin_failed_attempts", "pin_locked_until"}
)
_RESETS = {"staff_pin": "pin_reset", "admin_user": "password_reset"}
_SUMMARY_FIELDS = 6


def mask(value: object, field: str = "") -> object:
    """A personal value as the trail keeps it: ``anna@example.com`` as ``a***@example.com``,
    ``+352 621 123 456`` as ``***56``, anything else as its first character and ``***``."""
    if value is None or value == "":
        return value
    text = str(value)
    if field == "email" or ("@" in text and field != "phone"):
        local, _, domain = text.partition("@")
        return f"{local[:1]}***@{domain}" if domain else f"{local[:1]}***"
    if field == "phone":
        digits = [c for c in text if c.isdigit()]
        return "***" + "".join(digits[-2:])
    return f"{text[:1]}***"


def _plain(value: object) -> object:
    """A value as JSON holds it (exact decimals as text, times in ISO 8601)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return "[binary]"
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted((_plain(v) for v in value), key=str)
    if isinstance(value, Iterable):
        return [_plain(v) for v in value]
    return str(value)


def _masked(entity: str, field: str, value: object) -> object:
    """One field's value, personal data masked, nested values too (secrets: never)."""
    if field in SECRET_FIELDS:
        return HIDDEN_MARK
    if field in PERSONAL_FIELDS or field in _PERSON_NAMES.get(entity, ()):
        if isinstance(value, Mapping | list | tuple):
            return "***"
        return mask(value, field)
    if isinstance(value, Mapping):
        return {str(k): _masked(entity, str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(entity, "", v) for v in value]
    return _plain(value)


def masked_pair(
    entity: str, before: Mapping[str, object] | None, after: Mapping[str, object] | None
) -> tuple[dict[str, object] | None, dict[str, object] | None]:
    """``before`` and ``after`` as the trail stores them: personal data masked, secrets
    replaced by whether they were set (``[secret set]``) or changed (``[secret changed]``)."""
    old = None if before is None else {k: _masked(entity, k, v) for k, v in before.items()}
    new = None if after is None else {k: _masked(entity, k, v) for k, v in after.items()}
    if new is not None:
        for key in SECRET_FIELDS.intersection(new):
            if before is None or key not in before:
                new[key] = SET_MARK
            elif before[key] != (after or {}).get(key):
                new[key] = CHANGED_MARK
    return old, new


def summary(
    action: str,
    entity: str,
    entity_id: int | str | None,
    before: Mapping[str, object] | None,
    after: Mapping[str, object] | None,
    *,
    label: object = None,
    note: str | None = None,
) -> str:
    """One line for a person: ``updated store 4 (s-1): name``. Built from masked values."""
    verb = ACTIONS.get(action, action.replace("_", " "))
    what = entity.replace("_", " ")
    text = f"{verb} {what}" + (f" {entity_id}" if entity_id is not None else "")
    if label not in (None, ""):
        text += f" ({label})"
    if action == "update":
        fields = sorted(set(before or {}) | set(after or {}))
        if fields:
            shown = ", ".join(fields[:_SUMMARY_FIELDS])
            more = len(fields) - _SUMMARY_FIELDS
            text += f": {shown}" + (f" and {more} more" if more > 0 else "")
    if note:
        text += f" {note}"
    return text


def _row(
    acting: _Acting | None,
    *,
    action: str,
    entity: str,
    entity_id: int | str | None,
    merchant_id: int | None,
    before: Mapping[str, object] | None,
    after: Mapping[str, object] | None,
    label: object = None,
    note: str | None = None,
) -> dict[str, Any]:
    old, new = masked_pair(entity, before, after)
    return {
        "actor": acting.actor if acting else SYSTEM,
        "source": acting.source if acting else SYSTEM,
        "action": action,
        "entity": entity,
        "entity_id": None if entity_id is None else str(entity_id),
        "merchant_id": merchant_id,
        "before": old,
        "after": new,
        "summary": summary(action, entity, entity_id, old, new, label=label, note=note),
    }


# --- recording by hand ----------------------------------------------------------------------


async def record_change(
    session: AsyncSession,
    *,
    action: str,
    entity: str,
    entity_id: int | str | None,
    merchant_id: int | None,
    before: Mapping[str, object] | None,
    after: Mapping[str, object] | None,
    label: object = None,
    note: str | None = None,
) -> None:
    """Record one change made by the current actor (``"system"`` when nobody acts), in the
    session's transaction; also within ``recording_by_hand``. ``before``/``after`` hold the
    fields that changed (``None`` for a creation or a removal); they are masked here, so
    callers pass the values as they are. ``label`` and ``note``: see ``record``."""
    row = _row(
        _acting.get(),
        action=action,
        entity=entity,
        entity_id=entity_id,
        merchant_id=merchant_id,
        before=before,
        after=after,
        label=label,
        note=note,
    )
    await session.execute(insert(AdminAuditLog).values(**row))


async def record(
    session: AsyncSession,
    *,
    action: str,
    entity: str,
    entity_id: int | str | None,
    merchant_id: int | None,
    before: Mapping[str, object] | None,
    after: Mapping[str, object] | None,
    label: object = None,
    note: str | None = None,
) -> None:
    """A service's record of its own change (``domain.soft_delete``): ``record_change`` with
    what the summary should name, the row's ``label`` (its code, from ``owners``: masked when
    it is a person's name) and a ``note`` after it (``with 2 stores``). Nothing within
    ``recording_by_hand``: the caller records the change."""
    if _by_hand.get():
        return
    await record_change(
        session,
        action=action,
        entity=entity,
        entity_id=entity_id,
        merchant_id=merchant_id,
        before=before,
        after=after,
        label=label,
        note=note,
    )


_INSERT_RAW = """
INSERT INTO admin_audit_log
    (actor, source, action, entity, entity_id, merchant_id, before, after, summary)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9)
"""


async def record_change_raw(
    conn: Conn,
    *,
    action: str,
    entity: str,
    entity_id: int | str | None,
    merchant_id: int | None,
    before: Mapping[str, object] | None,
    after: Mapping[str, object] | None,
    actor: str | None = None,
    label: object = None,
) -> None:
    """``record`` over an asyncpg connection (the engine's admin actions), in its transaction.
    ``actor`` names who acts when no actor is set (source ``system`` then). Nothing within
    ``recording_by_hand``."""
    if _by_hand.get():
        return
    acting = _acting.get()
    if acting is None and actor is not None:
        acting = _Acting(actor, SYSTEM)
    row = _row(
        acting,
        action=action,
        entity=entity,
        entity_id=entity_id,
        merchant_id=merchant_id,
        before=before,
        after=after,
        label=label,
    )
    await conn.execute(
        _INSERT_RAW,
        row["actor"],
        row["source"],
        row["action"],
        row["entity"],
        row["entity_id"],
        row["merchant_id"],
        None if row["before"] is None else json.dumps(row["before"]),
        None if row["after"] is None else json.dumps(row["after"]),
        row["summary"],
    )


@dataclass(frozen=True)
class Owned:
    """An audited row's merchant and the value that names it (its code)."""

    merchant_id: int | None
    label: object


def label_of(kind: Kind, value: object) -> object:
    """The value that names a row in a summary, masked when it is a person's name."""
    return None if kind.label is None else _masked(kind.entity, kind.label, value)


def owners_query(model: type[Any], ids: Sequence[int]) -> Select[Any]:
    """``(id, merchant_id, label)`` of the rows ``ids`` of an audited model, deleted or not."""
    kind = AUDITED[model]
    label: Any = getattr(model, kind.label) if kind.label else null()
    if kind.via == "self":
        query = select(model.id, model.id.label("merchant_id"), label)
    elif kind.via == "merchant_id":
        query = select(model.id, model.merchant_id, label)
    elif kind.via == "program_id":
        query = select(model.id, LoyaltyProgram.merchant_id, label).join(
            LoyaltyProgram, LoyaltyProgram.id == model.program_id
        )
    else:
        query = select(model.id, Store.merchant_id, label).join(Store, Store.id == model.store_id)
    return query.where(model.id.in_(list(ids))).execution_options(include_deleted=True)


async def owners(session: AsyncSession, model: type[Any], ids: Sequence[int]) -> dict[int, Owned]:
    """The merchant and label of each row ``ids`` of an audited model (for ``record``)."""
    kind = AUDITED[model]
    rows = (await session.execute(owners_query(model, ids))).all()
    return {row[0]: Owned(row[1], label_of(kind, row[2])) for row in rows}


# --- recording by itself: the ORM's unit of work --------------------------------------------


@dataclass
class _Change:
    obj: Any
    kind: Kind
    action: str
    before: dict[str, object] | None
    after: dict[str, object] | None


def _columns(obj: Any) -> list[str]:
    return [a.key for a in inspect(type(obj)).column_attrs if a.key not in _IGNORED]


def _loaded(obj: Any) -> dict[str, object]:
    """The object's column values as loaded (never a lazy load inside a flush)."""
    values = inspect(obj).dict
    return {key: values[key] for key in _columns(obj) if values.get(key) is not None}


def _update(obj: Any, kind: Kind) -> _Change | None:
    state = inspect(obj)
    before: dict[str, object] = {}
    after: dict[str, object] = {}
    for key in _columns(obj):
        history = state.attrs[key].history
        if not history.added and not history.deleted:
            continue
        old = history.deleted[0] if history.deleted else None
        new = history.added[0] if history.added else None
        if old != new:
            before[key], after[key] = old, new
    if not after:
        return None
    return _Change(obj, kind, _action(kind, before, after), before, after)


def _action(kind: Kind, before: Mapping[str, object], after: Mapping[str, object]) -> str:
    """What an update does, named for a person looking for it."""
    if "deleted_at" in after:
        return "restore" if after["deleted_at"] is None else "delete"
    meaningful = set(after) - _LOCK_FIELDS
    if not meaningful:
        return "unlock" if not any(after.values()) else "update"
    if meaningful <= SECRET_FIELDS:
        return _RESETS.get(kind.entity, "secret_reset")
    if meaningful == {"is_active"}:
        return "activate" if after["is_active"] else "deactivate"
    return "update"


def _changes(session: Session) -> list[_Change]:
    found: list[_Change] = []
    for obj in session.new:
        kind = AUDITED.get(type(obj))
        if kind is not None:
            found.append(_Change(obj, kind, "create", None, _loaded(obj)))
    for obj in session.dirty:
        kind = AUDITED.get(type(obj))
        if kind is not None and (change := _update(obj, kind)) is not None:
            found.append(change)
    for obj in session.deleted:
        kind = AUDITED.get(type(obj))
        if kind is not None:
            found.append(_Change(obj, kind, "delete", _loaded(obj), None))
    return found


def _merchants(session: Session, changes: Sequence[_Change]) -> dict[tuple[str, int], int | None]:
    """The merchants of rows that name only their program or store, in one query per kind."""
    parents: dict[str, type[LoyaltyProgram] | type[Store]] = {
        "program_id": LoyaltyProgram,
        "store_id": Store,
    }
    wanted: dict[str, set[int]] = {via: set() for via in parents}
    for change in changes:
        if change.kind.via in wanted:
            value = inspect(change.obj).dict.get(change.kind.via)
            if value is not None:
                wanted[change.kind.via].add(value)
    found: dict[tuple[str, int], int | None] = {}
    connection = session.connection()
    for via, parent in parents.items():
        ids = wanted[via]
        if ids:
            rows = connection.execute(
                select(parent.id, parent.merchant_id).where(parent.id.in_(sorted(ids)))
            )
            found.update({(via, row[0]): row[1] for row in rows})
    return found


@event.listens_for(Session, "after_flush")
def _record_flush(session: Session, _flush: UOWTransaction) -> None:
    # After the flush, not before: a new row has its id by now, and the attributes' history
    # is still the flush's (it is reset after this hook).
    acting = _acting.get()
    if acting is None or _by_hand.get():
        return
    changes = _changes(session)
    if not changes:
        return
    parents = _merchants(session, changes)
    rows = []
    for change in changes:
        values = inspect(change.obj).dict
        via = change.kind.via
        if via == "self":
            merchant_id = values.get("id")
        elif via == "merchant_id":
            merchant_id = values.get("merchant_id")
        else:
            merchant_id = parents.get((via, values.get(via, -1)))
        label = label_of(change.kind, values.get(change.kind.label or ""))
        rows.append(
            _row(
                acting,
                action=change.action,
                entity=change.kind.entity,
                entity_id=values.get("id"),
                merchant_id=merchant_id,
                before=change.before,
                after=change.after,
                label=label,
            )
        )
    # Core, on the flush's own connection: the rows go with the transaction, and adding ORM
    # objects now would need another flush.
    session.connection().execute(insert(AdminAuditLog), rows)
