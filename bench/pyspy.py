"""Sampling the worker and the relay with py-spy while they run, and what the samples say.

py-spy is not a dependency of the project: ``uv pip install py-spy`` into the venv to use
``python -m bench --py-spy``. It samples the processes from outside (no instrumentation, so
the figures of the run stay valid) and writes collapsed stacks, which ``summarize`` groups by
the project module that holds the innermost frame and by the package where the CPU ends.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^:()]+)(?::\d+)?\)$")
_OURS = ("domain/", "streams/", "consumers/", "loyalty/", "wallet/")


def executable() -> str | None:
    """The py-spy beside this interpreter, else on the PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Sampler:
    """``py-spy record`` attached to one process until ``stop``."""

    def __init__(self, pid: int, output: Path, rate: int = 200) -> None:
        binary = executable()
        if binary is None:
            raise RuntimeError("py-spy is not installed (uv pip install py-spy)")
        self.output = output
        output.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [binary, "record", "--pid", str(pid), "--format", "raw", "--output", str(output),
             "--rate", str(rate), "--nonblocking"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def stop(self) -> None:
        """Stop sampling; py-spy writes its file on SIGINT."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def _frames(stack: str) -> list[tuple[str, str]]:
    frames = []
    for raw in stack.split(";"):
        match = _FRAME.match(raw)
        if match:
            frames.append((match["func"], match["file"]))
    return frames


def _package(file: str) -> str:
    if file.startswith(_OURS):
        return file
    top = file.split("/", 1)[0]
    return top.removesuffix(".py")


def summarize(path: Path, top: int = 12) -> dict[str, object]:
    """Samples by innermost project module, by the package of the leaf, and by leaf function."""
    ours: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    total = 0
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return {}
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = _frames(stack)
        if not frames:
            continue
        total += count
        func, file = frames[-1]
        leaves[_package(file)] += count
        functions[f"{func} ({file})"] += count
        owner = next(
            (f"{fn} ({fl})" for fn, fl in reversed(frames) if fl.startswith(_OURS)), "(outside)"
        )
        ours[owner] += count

    def share(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(k, round(100 * v / total, 1)) for k, v in counter.most_common(top)]

    return {
        "samples": total,
        "by_innermost_project_function_pct": share(ours),
        "by_leaf_package_pct": share(leaves),
        "by_leaf_function_pct": share(functions),
    }


def render(name: str, summary: dict[str, object]) -> str:
    """The summary as text."""
    if not summary:
        return f"{name}: no samples"
    out = [f"{name}: {summary['samples']} samples (CPU only, idle time not sampled)"]
    for key, title in (
        ("by_innermost_project_function_pct", "innermost project function"),
        ("by_leaf_package_pct", "where the CPU ends (leaf package)"),
    ):
        out.append(f"  by {title}:")
        rows = summary.get(key)
        assert isinstance(rows, list)
        out.extend(f"    {pct:5.1f} %  {label}" for label, pct in rows)
    return "\n".join(out)
