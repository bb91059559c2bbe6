"""How the catalog says no: a field and why (``FieldError``), in the contract's style.

``validation_errors`` turns pydantic's errors into ``FieldError``s named by their path
(``merchants[0].program.stamps_target: must be >= 1``), the same sentences for the provisioning
file and for the admin panel's forms. ``InvalidFields`` carries such errors; ``CatalogRefusal``
is a refusal the database decides (a code in use, a second program), one sentence for a person.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails


@dataclass(frozen=True)
class FieldError:
    """One refusal: the field's path (``points_rewards[0].name``) and why."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class InvalidFields(Exception):
    """Values the catalog's schema refuses; ``errors`` say where and why, one each."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors = tuple(errors)
        super().__init__("; ".join(str(e) for e in self.errors))


class CatalogRefusal(Exception):
    """A write the database's state refuses; ``str()`` is a sentence for a person."""


def field_path(loc: Sequence[int | str]) -> str:
    """``("merchants", 0, "program", "type")`` -> ``merchants[0].program.type``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "(file)"


_SIMPLE = {
    "missing": "required",
    "extra_forbidden": "unknown field",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string (quote it)",
    "list_type": "must be a list",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "dict_type": "must be a mapping",
    "decimal_type": "must be a number",
    "decimal_parsing": "must be a number",
    "finite_number": "must be a finite number",
}

_BOUNDS = {
    "greater_than_equal": ("ge", ">="),
    "greater_than": ("gt", ">"),
    "less_than_equal": ("le", "<="),
    "less_than": ("lt", "<"),
}


def error_message(error: ErrorDetails) -> str:
    """A short sentence for one pydantic error, in the contract's style (``must be >= 1``)."""
    kind = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    if kind in _SIMPLE:
        return _SIMPLE[kind]
    if kind in _BOUNDS:
        key, sign = _BOUNDS[kind]
        return f"must be {sign} {ctx[key]}"
    if kind == "string_too_short":
        n = ctx["min_length"]
        return "must not be empty" if n == 1 else f"must have at least {n} characters"
    if kind == "string_too_long":
        return f"must have at most {ctx['max_length']} characters"
    if kind in ("enum", "literal_error"):
        expected = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        return f"must be one of {expected} (got {error['input']!r})"
    if kind == "decimal_max_places":
        return f"must have at most {ctx['decimal_places']} decimal places"
    if kind in ("decimal_max_digits", "decimal_whole_digits"):
        return "is too large"
    message = error["msg"]
    return message[:1].lower() + message[1:]


def validation_errors(exc: ValidationError) -> list[FieldError]:
    """pydantic's errors as path-named ``FieldError``s, in the data's order."""
    return [FieldError(field_path(e["loc"]), error_message(e)) for e in exc.errors()]
