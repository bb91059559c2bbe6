"""Small helpers the admin pages share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from nicegui import ui

from admin_ui import texts
from admin_ui.problems import DomainRefusal, FieldProblem, FieldsRefused
from admin_ui.queries import deletion
from admin_ui.queries.admins import Principal
from admin_ui.runtime import Runtime, transaction
from admin_ui.widgets import confirm, tag
from core.enums import ProgramType

PROGRAM_TYPES = {t.value: t.value.capitalize() for t in ProgramType}


def parse_id(value: str) -> int | None:
    """A row id typed in a URL, or ``None`` (the page then answers "not found")."""
    if not value.isdigit() or len(value) > 18:
        return None
    return int(value)


def section(title: str) -> ui.card:
    """A titled card of a page; use it as a context manager."""
    card = ui.card().classes("w-full")
    with card:
        ui.label(title).classes("text-lg font-medium text-slate-700")
    return card


def deleted_banner(kind: str, deleted_at: datetime | None, deleted_by: str | None = None) -> None:
    """Says that the row shown is deleted, when it is."""
    if deleted_at is None:
        return
    who = f" by {deleted_by}" if deleted_by else ""
    banner = ui.label(f"This {kind} was deleted on {texts.when(deleted_at)}{who}.").classes(
        "w-full bg-rose-50 border border-rose-200 text-rose-800 rounded px-3 py-2"
    )
    tag(banner, "deleted-banner")


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
    """A list row's Delete (after a confirmation) or Restore button, for any soft-deletable kind.

    ``question``/``warning`` make the confirmation, ``subject`` names the row in the outcome
    ("Merchant m-1 deleted."), ``marker`` identifies the row in the buttons' test ids.
    """

    async def remove(row: Any) -> None:
        if not await confirm(question(row), warning):
            return

        async def work() -> None:
            async with transaction(rt) as session:
                await deletion.delete(session, me, kind, row.id)

        if await guarded(work, success=f"{subject(row)} deleted."):
            await reload()

    async def bring_back(row: Any) -> None:
        async def work() -> None:
            async with transaction(rt) as session:
                await deletion.restore(session, me, kind, row.id)

        if await guarded(work, success=f"{subject(row)} restored."):
            await reload()

    def actions(row: Any) -> None:
        if row.deleted_at is None:
            tag(
                ui.button("Delete", on_click=lambda r=row: remove(r)).props(
                    "flat dense color=negative"
                ),
                f"{kind}-delete-{marker(row)}",
            )
        else:
            tag(
                ui.button("Restore", on_click=lambda r=row: bring_back(r)).props("flat dense"),
                f"{kind}-restore-{marker(row)}",
            )

    return actions
