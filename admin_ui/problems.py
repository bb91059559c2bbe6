"""How the panel's services say no, apart from NiceGUI and from the pages that show it.

``DomainRefusal`` is a refusal meant for the person who asked (``str()`` is a sentence);
``FieldProblem`` is a form field, by its path (``points_rewards[0].name``), and what is wrong
with it: the catalog's ``FieldError`` (``domain.catalog``), so a form shows the very sentences
of ``loyalty provision``. ``FieldsRefused`` is a refusal of a form's values that names them, so
a page writes each under its field even when only the database could tell (an id in use).
"""

from __future__ import annotations

from collections.abc import Sequence

from domain.catalog import FieldError as FieldProblem

__all__ = ["DomainRefusal", "FieldProblem", "FieldsRefused"]


class DomainRefusal(Exception):
    """A domain rule said no; the message is meant for the person who asked."""


class FieldsRefused(DomainRefusal):
    """A form's values refused field by field; ``problems`` say where and why."""

    def __init__(self, problems: Sequence[FieldProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(p) for p in self.problems))
