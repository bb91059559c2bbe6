"""How the panel's services say no, apart from NiceGUI and from the pages that show it.

``DomainRefusal`` is a refusal meant for the person who asked (``str()`` is a sentence);
``FieldProblem`` is a form field, by its path (``points_rewards[0].name``), and what is wrong
with it: the catalog's ``FieldError`` (``domain.catalog``), so a form shows the very sentences
of ``loyalty provision``. ``FieldsRefused`` is a refusal of a form's values that names them, so
a page writes each under its field even when only the database could tell (an id in use).

A form shows a problem in a person's words, never by its path: ``FieldLabels`` names a path by
the label of its input (``points_rewards[0].name`` -> "Reward 1, name"), and
``plain_message`` says the catalog's sentence without symbols or field keys ("must be at least
1", not "must be >= 1").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from admin_ui.formatting import number
from domain.catalog import FieldError as FieldProblem

__all__ = ["DomainRefusal", "FieldLabels", "FieldProblem", "FieldsRefused", "plain_message"]


class DomainRefusal(Exception):
    """A domain rule said no; the message is meant for the person who asked."""


class FieldsRefused(DomainRefusal):
    """A form's values refused field by field; ``problems`` say where and why."""

    def __init__(self, problems: Sequence[FieldProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


# ``points_rewards[0].name``: a list's key, an item's index and the item's field (optional).
_ITEM = re.compile(r"(?P<key>[A-Za-z_]+)\[(?P<index>\d+)\](?:\.(?P<field>[A-Za-z_]+))?")


@dataclass(frozen=True)
class FieldLabels:
    """The words a form's inputs are labelled with, by path.

    ``fields`` names the form's own fields (``stamps_target`` -> "Stamps for a reward");
    ``items`` names a list's entries and their fields (``points_rewards`` -> ("Reward",
    {"name": "name", ...})): its entry 0 is "Reward 1". A path neither names is still said in
    words (its underscores as spaces, its indexes counted from 1).
    """

    fields: Mapping[str, str]
    items: Mapping[str, tuple[str, Mapping[str, str]]] = field(default_factory=dict)

    def label(self, path: str) -> str:
        """The words of the input at ``path``: "Program name", "Reward 1, name"."""
        if path in self.fields:
            return self.fields[path]
        match = _ITEM.fullmatch(path)
        if match is None:
            return _words(path)
        key, index, name = match["key"], int(match["index"]) + 1, match["field"]
        if key in self.items:
            entry, names = self.items[key]
            head = f"{entry} {index}"
            return f"{head}, {names.get(name, _words(name))}" if name else head
        if name is None and key in self.fields:
            # A list typed into one input (comma-separated): its entry is named by its place.
            return f"{self.fields[key]} (entry {index})"
        return _words(path)

    def sentence(self, problem: FieldProblem) -> str:
        """A problem as a person reads it: "Reward 1, points: must be at least 1"."""
        return f"{self.label(problem.path)}: {plain_message(problem.message, self.fields)}"


def _words(path: str) -> str:
    text = re.sub(r"\[(\d+)\]", lambda m: f" {int(m[1]) + 1}", path)
    text = text.replace(".", " ").replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def _count(text: str) -> str:
    try:
        return number(int(text))
    except ValueError:
        return text


# The catalog's sentences (``domain.catalog.errors``) in words, the bound grouped like any
# figure on the page.
_BOUNDS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (re.compile(r"^must be >= 0$"), lambda m: "must not be negative"),
    (re.compile(r"^must be >= (-?\d+)$"), lambda m: f"must be at least {_count(m[1])}"),
    (re.compile(r"^must be > (-?\d+)$"), lambda m: f"must be more than {_count(m[1])}"),
    (re.compile(r"^must be <= (-?\d+)$"), lambda m: f"must be at most {_count(m[1])}"),
    (re.compile(r"^must be < (-?\d+)$"), lambda m: f"must be less than {_count(m[1])}"),
    (re.compile(r"^must be < "), lambda m: "must be less than "),
    (re.compile(r"^must be an integer$"), lambda m: "must be a whole number"),
    (re.compile(r"^required$"), lambda m: "must be filled in"),
    (re.compile(r"^must be a string \(quote it\)$"), lambda m: "must be text"),
)


def plain_message(message: str, labels: Mapping[str, str] | None = None) -> str:
    """The catalog's ``message`` in words: bounds without symbols ("must be at least 1"), and
    any field key it names (``points_expiration_days``) as its label in quotes."""
    for pattern, words in _BOUNDS:
        found = pattern.search(message)
        if found is not None:
            message = message[: found.start()] + words(found) + message[found.end() :]
            break
    for key, label in sorted((labels or {}).items(), key=lambda kv: -len(kv[0])):
        if "_" in key:
            message = re.sub(rf"\b{re.escape(key)}\b", f"“{label}”", message)
    return message
