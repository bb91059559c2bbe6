"""Parts of a page drawn once their data is read, with a skeleton meanwhile.

A page built with ``deferred`` parts is sent at once (the frame, the titles, grey shapes where
the figures will be); each part reads its data after the browser has connected, in a task of
its own, and replaces its skeleton with what it draws. A slow query then delays only its part,
not the page. A part whose read fails says so in a sentence (the error goes to the log), and
the rest of the page stays usable.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from nicegui import ui

from admin_ui.widgets import tag
from core.logs import get_logger

T = TypeVar("T")
log = get_logger(__name__)

FAILED = "This part could not be loaded. Reload the page to try again."


def skeleton_lines(lines: int = 3) -> None:
    """Grey lines of text to come."""
    for i in range(lines):
        ui.skeleton("text").classes("w-full" if i < lines - 1 else "w-2/3")


def skeleton_block(height: str = "16rem") -> None:
    """A grey box the size of a chart to come."""
    ui.skeleton("rect", height=height).classes("w-full")


def skeleton_cards(count: int, classes: str) -> None:
    """``count`` grey cards in a grid of ``classes`` (figures to come)."""
    with ui.element("div").classes(classes):
        for _ in range(count):
            ui.skeleton("rect", height="6.5rem").classes("w-full rounded")


def deferred(
    marker: str,
    load: Callable[[], Awaitable[T]],
    draw: Callable[[T], None],
    *,
    skeleton: Callable[[], None] = skeleton_lines,
    classes: str = "w-full",
) -> ui.element:
    """A box named ``marker`` showing ``skeleton`` (named ``<marker>-loading``) until
    ``load()`` has read its data, then what ``draw(data)`` draws in it.

    The read starts once the browser is connected, so the page is sent without waiting for
    it. A failed read shows ``FAILED`` (named ``<marker>-failed``).
    """
    box = tag(ui.element("div").classes(classes), marker)
    with box, tag(ui.column().classes("w-full gap-2"), f"{marker}-loading"):
        skeleton()

    async def fill() -> None:
        try:
            data = await load()
        except Exception:  # one part of the page, not the page: say so, log the rest
            log.exception("page_part_failed", part=marker)
            if not box.is_deleted:
                box.clear()
                with box:
                    tag(ui.label(FAILED).classes("text-rose-700"), f"{marker}-failed")
            return
        if box.is_deleted:  # the person left the page meanwhile
            return
        box.clear()
        with box:
            draw(data)

    # The timer sits beside the box, not in it: clearing the box would cancel the read.
    ui.timer(0, fill, once=True)
    return box
