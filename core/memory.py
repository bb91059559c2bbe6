"""The C allocator's settings for the pipeline's long-running processes.

A worker's batch allocates a few megabytes (records, commands, rows, encoded outputs) and frees
them at its end. glibc's ``malloc`` then hands the freed top of its heap back to the system
(above 128 KiB free) and serves every allocation of 128 KiB or more (the broker's fetch
responses, the ``COPY`` buffers) with a fresh ``mmap``, unmapped when freed: the next batch
faults every page in again, and in a virtual machine a fault costs microseconds. Measured on
the benchmark's purchases (``bench.engine_cpu``): keeping the results of ``orjson.dumps``
cost 6-8 us each on freshly faulted memory against 0.7 on memory kept; the engine's Python
73 -> 66 us per event with the heap kept.

So the processes keep what they freed for their next batch: their resident memory stays at
its high-water mark (which ``VmHWM`` reported anyway) instead of going up and down each batch.
"""

from __future__ import annotations

import ctypes
import ctypes.util

from core.logs import get_logger

log = get_logger(__name__)

# mallopt(3) parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

# Freed memory at the top of the heap kept up to this much (a batch's few megabytes many
# times over; a process never frees more than it held at its peak).
TRIM_THRESHOLD = 1024 * 1024 * 1024
# Allocations below this come from the heap (glibc's maximum for it on 64-bit systems).
MMAP_THRESHOLD = 32 * 1024 * 1024


def keep_freed_memory() -> bool:
    """Tell glibc's ``malloc`` to keep freed memory for reuse; False where the C library is
    not glibc (nothing changes there)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt to speak of)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)) and bool(
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    )
    if not done:
        log.warning("malloc_settings_refused")
    return done
