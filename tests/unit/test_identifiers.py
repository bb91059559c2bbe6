"""Output event ids: random version 4 UUIDs in their canonical text form."""

from __future__ import annotations

import uuid

from domain.identifiers import new_event_id


def test_an_event_id_is_a_canonical_random_uuid() -> None:
    ids = [new_event_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
        assert str(parsed) == text
    # Every hex digit outside the fixed version and variant bits varies.
    free = [i for i in range(36) if i not in (8, 13, 14, 18, 19, 23)]
    assert all(len({t[i] for t in ids}) == 16 for i in free)
    assert {t[19] for t in ids} == set("89ab")
