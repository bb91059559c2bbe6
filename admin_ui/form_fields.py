"""What the pages' forms share: naming elements for tests (``tag``), the box where a form's
refusal is written and the problems put under their fields, numbers and blanks as the
validation reads them, and a time of day or a date and time typed or picked."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from nicegui import ui

from admin_ui.problems import FieldLabels, FieldProblem

E = TypeVar("E", bound=ui.element)


def tag(element: E, name: str) -> E:
    """Name an element for tests: a NiceGUI marker (the ``user`` fixture) and a
    ``data-testid`` attribute (the browser tests)."""
    element.mark(name)
    element.props(f'data-testid="{name}"')
    return element


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


# Paths of inputs without a label of their own, said in words ("allow self enrollment").
_UNLABELLED = FieldLabels({})


def _label_of(element: Any) -> str | None:
    """The words an input is labelled with on the screen, if it has them."""
    props = getattr(element, "_props", None)
    label = props.get("label") if isinstance(props, dict) else None
    return label if isinstance(label, str) and label else None


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
        lines.append(f"{_label_of(element) or _UNLABELLED.label(problem.path)}: {problem.message}")
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
