"""CPU time of the pipeline's processes, read from ``/proc``: what each one cost per event.

On a machine shared with other work, wall-clock rates say as much about the neighbours as
about the engine; CPU seconds per event do not, and their sum over every process bounds the
rate the pipeline could reach on idle cores.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")

Groups = Mapping[str, Iterable[int]]
Snapshot = dict[str, dict[int, float]]


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU of a process so far, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: the fields start after the last ")".
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def children(parent: int) -> list[int]:
    """The pids whose parent is ``parent`` (a postmaster's backends and helpers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        if int(text.rsplit(")", 1)[1].split()[1]) == parent:
            found.append(int(entry.name))
    return found


def snapshot(groups: Groups) -> Snapshot:
    """CPU seconds so far of every pid, by group."""
    snap: Snapshot = {}
    for name, pids in groups.items():
        snap[name] = {}
        for pid in pids:
            seconds = cpu_seconds(pid)
            if seconds is not None:
                snap[name][pid] = seconds
    return snap


def used(before: Snapshot, after: Snapshot) -> dict[str, float]:
    """CPU seconds each group used between two snapshots (new pids count from zero)."""
    return {
        name: sum(sec - before.get(name, {}).get(pid, 0.0) for pid, sec in pids.items())
        for name, pids in after.items()
    }


class CpuMeter:
    """Snapshots of a changing set of processes, named by group."""

    def __init__(self, groups: Callable[[], Groups]) -> None:
        self.groups = groups

    def snapshot(self) -> Snapshot:
        """CPU so far of the processes the groups hold now."""
        return snapshot(self.groups())
