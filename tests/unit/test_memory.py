"""The pipeline's processes keep the memory they free (``core.memory``): checked by the page
faults of batch-like rounds of allocations, in a child process so this one's allocator is
left alone."""

from __future__ import annotations

import subprocess
import sys

import pytest

# A warm-up round, then five rounds like a batch's: many objects above what Python's own
# small-object allocator takes (an encoded result is ~500 bytes) and a few buffers of a few
# hundred kilobytes (a fetch response, a COPY's data), all freed at the round's end. Prints
# the page faults per round after the first.
_CHILD = """
import resource
import sys
from core.memory import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()

def faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

def round_() -> int:
    small = [bytes(600) + i.to_bytes(4, "little") for i in range(20_000)]
    big = [bytearray(300_000) for _ in range(20)]
    return len(small) + len(big)

round_()
before = faults()
for _ in range(5):
    round_()
print((faults() - before) / 5)
"""


def _faults_per_round(mode: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, mode], capture_output=True, text=True, check=True
    ).stdout
    return float(out)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc: Linux")
def test_a_round_after_the_first_reuses_the_memory_the_first_freed() -> None:
    # Measured: 0.4 faults per round kept, ~1,400 without (the buffers mapped and unmapped
    # each time, the objects' pages handed back and faulted in again).
    assert _faults_per_round("keep") < 50
    assert _faults_per_round("default") > 500  # what the setting changes
