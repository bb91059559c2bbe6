"""CSV cells a spreadsheet shows as text, never runs: text beginning like a formula (``=``,
``+``, ``-``, ``@``, a tab, a carriage return) gets a leading apostrophe (OWASP's advice for
CSV injection). For every file the engine writes for people: the panel's list exports, the
finance report."""

from __future__ import annotations

from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_text(value: str) -> str:
    """Text as a cell a spreadsheet will not read as a formula."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def safe_cell(value: Any) -> Any:
    """A cell from a value: text through :func:`safe_text`, numbers stay numbers, ``None`` an
    empty cell, a flag ``yes`` or ``no``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return safe_text(value)
    return value
