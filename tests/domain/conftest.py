"""Fixtures of the domain tests (the database fixtures come from ``tests.support.db``, which
the top-level conftest registers once for every folder)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.settings import get_settings


@pytest.fixture(autouse=True)
def cheap_bcrypt(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """bcrypt at its lowest cost: the tests check behaviour, not the cost of hashing."""
    monkeypatch.setenv("LOYALTY_BCRYPT_ROUNDS", "4")
    monkeypatch.setenv("LOYALTY_PIN_BCRYPT_ROUNDS", "4")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
