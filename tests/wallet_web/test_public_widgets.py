"""The plain rules behind the customer pages' widgets: grid rows, safe links, labels."""

from __future__ import annotations

import pytest

from admin_ui.i18n import LANGUAGE_NAMES
from admin_ui.public_widgets import (
    STAMP_GRID_MAX,
    STAMP_UNITS,
    TEXTS,
    safe_web_url,
    stamp_grid_columns,
    stamps_label,
)
from wallet import SUPPORTED_LOCALES


@pytest.mark.parametrize(
    ("target", "columns"),
    [(1, 1), (5, 5), (6, 6), (7, 4), (8, 4), (10, 5), (12, 6), (15, 5), (20, 5), (30, 6)],
)
def test_rows_are_even_and_at_most_six_wide(target: int, columns: int) -> None:
    assert stamp_grid_columns(target) == columns


def test_every_drawable_target_fits_six_columns() -> None:
    for target in range(1, STAMP_GRID_MAX + 1):
        columns = stamp_grid_columns(target)
        assert 1 <= columns <= 6
        # No last row much shorter than the others: at most one row's worth of gaps.
        rows = -(-target // columns)
        assert rows * columns - target < rows


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("https://cafe.example.lu/privacy", "https://cafe.example.lu/privacy"),
        ("  http://cafe.example.lu/p  ", "http://cafe.example.lu/p"),
        ("HTTPS://cafe.example.lu/", "HTTPS://cafe.example.lu/"),
        ("javascript:alert(1)", None),
        ("JavaScript://cafe.example.lu/%0Aalert(1)", None),
        ("data:text/html,hi", None),
        ("//cafe.example.lu/privacy", None),
        ("/privacy", None),
        ("https://", None),
        ("", None),
        (None, None),
    ],
)
def test_only_absolute_web_addresses_become_links(url: str | None, safe: str | None) -> None:
    assert safe_web_url(url) == safe


@pytest.mark.parametrize(
    ("language", "count", "target", "label"),
    [
        ("en", 7, 10, "7 of 10 stamps"),
        ("en", 0, 1, "0 of 1 stamp"),
        ("fr", 7, 10, "7 sur 10 tampons"),
        ("de", 7, 10, "7 von 10 Stempeln"),
        ("lb", 7, 10, "7 vun 10 Stempelen"),
        ("xx", 2, 8, "2 of 8 stamps"),
    ],
)
def test_the_grid_label(language: str, count: int, target: int, label: str) -> None:
    assert stamps_label(language, count, target) == label


def test_every_language_has_every_text() -> None:
    assert set(LANGUAGE_NAMES) == set(SUPPORTED_LOCALES)
    assert set(TEXTS) == set(SUPPORTED_LOCALES) == set(STAMP_UNITS)
    for texts in TEXTS.values():
        assert texts.keys() == TEXTS["en"].keys()
        assert all(text.strip() for text in texts.values())
