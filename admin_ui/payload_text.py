"""Text from the outside world as the panel shows it: a payload pretty-printed (numbers as
written, key order and repeated keys kept) and one-line previews, with control and layout
characters escaped so nothing on screen is turned around or hidden."""

from __future__ import annotations

import json
from typing import Any

from admin_ui import texts

_BIG = 10**9  # no cut: the caller has already bounded the text


class _Number(str):
    """A JSON number as the payload wrote it (``1.10`` stays ``1.10``, not ``1.1``)."""

    __slots__ = ()


class _Object(list[tuple[str, Any]]):
    """A JSON object's members in their order, repeated keys included."""

    __slots__ = ()


def _render(value: Any, depth: int) -> str:
    pad, inner = "  " * depth, "  " * (depth + 1)
    if isinstance(value, _Object):
        if not value:
            return "{}"
        members = [f"{inner}{_string(k)}: {_render(v, depth + 1)}" for k, v in value]
        return "{\n" + ",\n".join(members) + f"\n{pad}}}"
    if isinstance(value, list):
        if not value:
            return "[]"
        items = [f"{inner}{_render(v, depth + 1)}" for v in value]
        return "[\n" + ",\n".join(items) + f"\n{pad}]"
    if isinstance(value, _Number):
        return str(value)
    if isinstance(value, str):
        return _string(value)
    return json.dumps(value)  # true, false, null


def _string(text_: str) -> str:
    # JSON escapes the C0 controls; what it leaves (DEL, C1 controls, direction overrides,
    # line separators) texts.printable escapes line by line afterwards.
    return json.dumps(text_, ensure_ascii=False)


def pretty_payload(payload: str, *, is_base64: bool = False) -> str:
    """A dead letter's payload to read: JSON indented by two spaces (its numbers, key order
    and repeated keys as they were), any other text as it is; every control or layout
    character (``\\x1b``, ``\\u202e``, ``\\r``) written as an escape, so nothing in it can
    move or recolour what is shown."""
    text_ = payload
    if not is_base64:
        try:
            parsed = json.loads(
                payload,
                parse_int=_Number,
                parse_float=_Number,
                parse_constant=_Number,
                object_pairs_hook=_Object,
            )
            text_ = _render(parsed, 0)
        except (ValueError, RecursionError):
            text_ = payload  # not JSON (or cut short): shown as the text it is
    return "\n".join(texts.printable(line, _BIG) for line in text_.split("\n"))


def one_line(text_: str, limit: int = 200) -> str:
    """Text for a single line of a list: runs of white space (new lines too) as one space,
    control and layout characters escaped, cut after ``limit``."""
    return texts.printable(" ".join(text_.split()), limit)
