"""How the panel's services say no, apart from NiceGUI and from the pages that show it.

``DomainRefusal`` is a refusal meant for the person who asked (``str()`` is a sentence);
``FieldProblem`` is a form field, by its path (``points_rewards[0].name``), and what is wrong
with it: the catalog's ``FieldError`` (``domain.catalog``), so a form shows the very sentences
of ``loyalty provision``.
"""

from __future__ import annotations

from domain.catalog import FieldError as FieldProblem

__all__ = ["DomainRefusal", "FieldProblem"]


class DomainRefusal(Exception):
    """A domain rule said no; the message is meant for the person who asked."""
