"""How one dead letter reads when opened: its key, its error a sentence a line, and its payload
pretty-printed in a box that wraps long values; the pipeline page's heading style and UTC
times, shared by its sections."""

from __future__ import annotations

from datetime import datetime

from nicegui import ui

from admin_ui import formatting, texts
from admin_ui.payload_text import pretty_payload
from admin_ui.queries.dead_letters import DeadLetterDetail
from admin_ui.widgets import tag

HEAD = "text-xs uppercase tracking-wide text-slate-500"
"""The classes of a list's column headings on the pipeline page."""


def utc(at: datetime | None) -> str:
    """A time on the platform's pages: UTC, and saying so (nothing there is one merchant's)."""
    return formatting.local_when(at, "UTC")


def letter_body(letter: DeadLetterDetail) -> None:
    """The opened letter's key, full error and payload (escaped; cut where the query cut)."""
    ui.label(f"Key: {texts.printable(letter.key, 500) if letter.key else '—'}").classes(
        "text-sm break-all"
    )
    ui.label("Error").classes(HEAD)
    with tag(ui.column().classes("gap-0 min-w-0"), "dlq-full-error"):
        for sentence in letter.error.split("; "):
            ui.label(texts.printable(sentence, 2000)).classes("text-sm text-red-700 break-words")
    ui.label(
        "Payload" + (" (base64: the bytes were not UTF-8 text)" if letter.is_base64 else "")
    ).classes(HEAD)
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
