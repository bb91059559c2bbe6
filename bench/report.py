"""The benchmark's figures, each against its target: a table for people, JSON for machines."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Direction = Literal["min", "max"]


@dataclass
class Figure:
    """One measured figure; ``target`` is a bound (``direction`` says which) or None."""

    name: str
    value: float | None
    unit: str
    target: float | None = None
    direction: Direction = "min"
    note: str = ""

    @property
    def passed(self) -> bool | None:
        """True/False against the target; None for a figure without one."""
        if self.target is None:
            return None
        if self.value is None or math.isnan(self.value):
            return False
        return self.value >= self.target if self.direction == "min" else self.value < self.target

    def as_dict(self) -> dict[str, Any]:
        """The figure and its verdict, JSON-ready."""
        data = asdict(self)
        data["passed"] = self.passed
        return data


@dataclass
class Report:
    """Every figure of a run, the run's parameters and what else was observed."""

    figures: list[Figure] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def add(self, figure: Figure) -> Figure:
        """Record a figure."""
        self.figures.append(figure)
        return figure

    @property
    def all_passed(self) -> bool:
        """Whether every figure with a target met it."""
        return all(f.passed is not False for f in self.figures)

    def as_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready."""
        return {
            "params": self.params,
            "figures": [f.as_dict() for f in self.figures],
            "all_passed": self.all_passed,
            "details": self.details,
        }

    def write_json(self, path: Path) -> None:
        """Write the report as JSON (the folder is created)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_dict(), indent=2, default=str) + "\n")


def _number(value: float | None, unit: str) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    if unit == "x":
        return f"{value:.1f}x"
    digits = 0 if abs(value) >= 100 or unit == "events/s" else 1
    return f"{value:,.{digits}f} {unit}"


def _target(f: Figure) -> str:
    if f.target is None:
        return "-"
    sign = ">=" if f.direction == "min" else "<"
    return f"{sign} {_number(f.target, f.unit)}"


def _verdict(f: Figure) -> str:
    return {True: "PASS", False: "FAIL", None: "info"}[f.passed]


def render_table(figures: Sequence[Figure]) -> str:
    """The figures as an aligned text table, notes under their row."""
    rows = [("measure", "value", "target", "result")]
    rows += [(f.name, _number(f.value, f.unit), _target(f), _verdict(f)) for f in figures]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = []
    for n, row in enumerate(rows):
        lines.append(
            f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]}"
        )
        if n == 0:
            lines.append("-" * (sum(widths) + 6 + 4))
        elif figures[n - 1].note:
            lines.append(f"    {figures[n - 1].note}")
    return "\n".join(lines)


def render_statements(statements: Sequence[dict[str, Any]]) -> str:
    """PostgreSQL's busiest statements of the throughput phase (``pg_stat_statements``), per
    event: where the server's share of the CPU per event goes."""
    total = sum(s["us_per_event"] for s in statements)
    lines = [
        "PostgreSQL, throughput phase, per event (time inside the server: CPU, I/O and lock "
        f"waits; top {len(statements)}: {total:.0f} us)",
        f"{'us':>6}  {'rows':>5}  {'WAL B':>6}  statement",
    ]
    lines += [
        f"{s['us_per_event']:>6.1f}  {s['rows_per_event']:>5.2f}  {s['wal_bytes_per_event']:>6}  "
        f"{s['statement']}"
        for s in statements
    ]
    return "\n".join(lines)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` percentile (0-100) of already sorted values."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]
