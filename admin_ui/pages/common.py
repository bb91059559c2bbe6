"""Small helpers the admin pages share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from nicegui import ui

from admin_ui.formatting import local_when, number
from admin_ui.problems import DomainRefusal, FieldProblem, FieldsRefused
from admin_ui.queries import deletion
from admin_ui.queries.admins import Principal
from admin_ui.runtime import Runtime, transaction
from admin_ui.widgets import confirm, tag
from core.enums import ProgramType

PROGRAM_TYPES = {t.value: t.value.capitalize() for t in ProgramType}


def parse_id(value: str) -> int | None:
    """A row id typed in a URL, or ``None`` (the page then answers "not found")."""
    # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        return None
    return int(value)


def section(title: str) -> ui.card:
    """A titled card of a page; use it as a context manager."""
    card = ui.card().classes("w-full")
    with card:
        ui.label(title).classes("text-lg font-medium text-slate-700")
    return card


_SOURCES = {"admin": "panel", "cli": "command line"}


def actor_words(actor: str | None) -> str:
    """Who did something, in words: ``admin:alice`` -> ``alice (panel)``, ``cli:ops`` ->
    ``ops (command line)``, ``terminal:LUX-01`` -> ``terminal of LUX-01``."""
    if not actor:
        return "—"
    source, _, name = actor.partition(":")
    if not name:
        return {"self": "the customer", "system": "the system"}.get(actor, actor)
    if source in _SOURCES:
        return f"{name} ({_SOURCES[source]})"
    if source == "terminal":
        return f"terminal of {name}"
    return f"{name} ({source})"


def counted(count: int, singular: str, plural: str) -> str:
    """``1 store``, ``1,204 customers``."""
    return f"{number(count)} {singular if count == 1 else plural}"


def _listed(parts: Sequence[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def cascade_words(cascade: deletion.Cascade) -> str:
    """What goes (or comes back) along with a row: ``5 stores, 1 program, 1,204 customers and
    1,310 cards``; ``""`` for nothing."""
    return _listed([counted(n, one, many) for n, one, many in cascade.counts if n])


def deletion_question(cascade: deletion.Cascade, warning: str = "") -> str:
    """The detail of a deletion's confirmation: what it hides along, counted before asking."""
    along = cascade_words(cascade)
    said = f"Deleting {cascade.name} also hides {along}." if along else ""
    return " ".join(p for p in (said, warning) if p)


def deleted_banner(
    kind: str,
    deleted_at: datetime | None,
    deleted_by: str | None = None,
    *,
    zone: ZoneInfo | str | None = None,
    hidden_with: str | None = None,
) -> None:
    """Says that the row shown is deleted, when it is: on the merchant's clock (``zone``),
    by whom in words, and, for a row deleted along with its ``hidden_with`` (``merchant``),
    that restoring that one brings it back."""
    if deleted_at is None:
        return
    who = f" by {actor_words(deleted_by)}" if deleted_by else ""
    when = local_when(deleted_at, zone)
    if hidden_with:
        text = (
            f"This {kind} is hidden: its {hidden_with} was deleted on {when}{who}. "
            f"Restoring the {hidden_with} brings it back."
        )
    else:
        text = f"This {kind} was deleted on {when}{who}."
    banner = ui.label(text).classes(
        "w-full bg-rose-50 border border-rose-200 text-rose-800 rounded px-3 py-2"
    )
    tag(banner, "deleted-banner")


async def delete_with_counts(
    rt: Runtime,
    me: Principal,
    kind: str,
    row_id: int,
    *,
    question: str,
    warning: str = "",
    subject: str,
) -> bool:
    """Delete a row after a confirmation that counts what it hides along (read just before
    asking); the message after says what was hidden. ``True`` when deleted."""
    counts: list[deletion.Cascade] = []

    async def count() -> None:
        async with rt.session() as session:
            counts.append(await deletion.cascade_of(session, me, kind, row_id))

    if not await guarded(count):
        return False
    if not await confirm(question, deletion_question(counts[0], warning)):
        return False
    hidden: list[deletion.Cascade] = []

    async def work() -> None:
        async with transaction(rt) as session:
            hidden.append(await deletion.delete(session, me, kind, row_id))

    if not await guarded(work):
        return False
    along = cascade_words(hidden[0])
    message = f"{subject} deleted." + (f" Hidden with it: {along}." if along else "")
    ui.notify(message, type="positive", multi_line=True, timeout=8000)
    return True


async def restore_with_counts(
    rt: Runtime, me: Principal, kind: str, row_id: int, subject: str
) -> bool:
    """Restore a row; the message says what came back along with it. ``True`` when restored."""
    back: list[deletion.Cascade] = []

    async def work() -> None:
        async with transaction(rt) as session:
            back.append(await deletion.restore(session, me, kind, row_id))

    if not await guarded(work):
        return False
    along = cascade_words(back[0])
    message = f"{subject} restored." + (f" Back with it: {along}." if along else "")
    ui.notify(message, type="positive", multi_line=True, timeout=8000)
    return True


async def guarded(action: Callable[[], Awaitable[Any]], *, success: str | None = None) -> bool:
    """Run a handler's work; a domain refusal becomes a message on the page. ``True`` when done."""
    try:
        await action()
    except DomainRefusal as exc:
        ui.notify(_sentence(str(exc)), type="negative", multi_line=True, timeout=8000)
        return False
    if success:
        ui.notify(success, type="positive")
    return True


async def submit_form(
    show: Callable[[Sequence[FieldProblem]], None],
    work: Callable[[], Awaitable[None]],
    success: str | None,
) -> bool:
    """Run a form's write; refused fields go under them through ``show``, not in a toast."""
    refused: list[FieldsRefused] = []

    async def attempt() -> None:
        try:
            await work()
        except FieldsRefused as exc:
            refused.append(exc)

    if not await guarded(attempt) or refused:
        if refused:
            show(refused[0].problems)
        return False
    show([])
    if success:
        ui.notify(success, type="positive")
    return True


def _sentence(message: str) -> str:
    message = message.strip()
    if not message:
        return "That did not work."
    message = message[:1].upper() + message[1:]
    return message if message.endswith((".", "!", "?")) else message + "."


def delete_restore_actions(
    rt: Runtime,
    me: Principal,
    kind: str,
    *,
    question: Callable[[Any], str],
    warning: str,
    subject: Callable[[Any], str],
    marker: Callable[[Any], str],
    reload: Callable[[], Awaitable[None]],
) -> Callable[[Any], None]:
    """A list row's Restore button, or its "⋮" menu holding Delete, for any soft-deletable
    kind: deleting is never the first thing beside a row.

    ``question``/``warning`` make the confirmation (with the counts of what the deletion hides
    along, read before asking), ``subject`` names the row in the outcome ("Merchant m-1
    deleted."), ``marker`` identifies the row in the test ids (``merchant-menu-m-1``,
    ``merchant-delete-m-1``, ``merchant-restore-m-1``).
    """

    async def remove(row: Any) -> None:
        if await delete_with_counts(
            rt, me, kind, row.id, question=question(row), warning=warning, subject=subject(row)
        ):
            await reload()

    async def bring_back(row: Any) -> None:
        if await restore_with_counts(rt, me, kind, row.id, subject(row)):
            await reload()

    def actions(row: Any) -> None:
        if row.deleted_at is None:
            more = ui.button(icon="more_vert").props(
                f'flat dense round aria-label="More actions for {kind} {marker(row)}"'
            )
            tag(more, f"{kind}-menu-{marker(row)}")
            with more, ui.menu().props("anchor='bottom right' self='top right'"):
                item = ui.menu_item(f"Delete {kind}…", on_click=lambda r=row: remove(r))
                tag(item.classes("text-negative"), f"{kind}-delete-{marker(row)}")
        else:
            tag(
                ui.button("Restore", on_click=lambda r=row: bring_back(r)).props("flat dense"),
                f"{kind}-restore-{marker(row)}",
            )

    return actions


def danger_zone(title: str = "Danger zone") -> ui.card:
    """A card set apart at the foot of a page for what cannot be undone lightly (delete,
    deactivate); use it as a context manager."""
    card = tag(
        ui.card().classes("w-full border border-rose-200 bg-rose-50/40 mt-6 shadow-none"),
        "danger-zone",
    )
    with card:
        ui.label(title).classes("text-lg font-medium text-rose-800")
    return card
