"""Every reason code of the contract has a story through the real pipeline that expects it.

A reason added to ``ReasonCode`` (CONTRACT.md section 4) without a story here fails this test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.messages import ReasonCode

STORIES = [
    path.read_text()
    for path in sorted(Path(__file__).parent.glob("test_*.py"))
    if path.name != Path(__file__).name
]


@pytest.mark.parametrize("reason", list(ReasonCode), ids=str)
def test_the_reason_is_expected_by_a_story(reason: ReasonCode) -> None:
    assert any(f'"{reason}"' in story for story in STORIES), f"no story expects {reason}"
