"""The pipeline's processes as the benchmark runs them: ``python -m loyalty worker|relay``.

Each child asks the kernel to send it SIGTERM when the benchmark dies (``PR_SET_PDEATHSIG``),
so even a benchmark killed with SIGKILL leaves no worker behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import signal
import subprocess
import sys
import time
from pathlib import Path

from core.settings import REPO_ROOT

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: only async-signal-safe work belongs here.
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _status_mb(pid: int, field: str) -> float | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024  # the kernel counts in kB
    return None


def peak_rss_mb(pid: int) -> float | None:
    """The high-water mark of a live process's resident memory (``VmHWM``), in MiB."""
    return _status_mb(pid, "VmHWM:")


def rss_mb(pid: int) -> float | None:
    """A live process's resident memory now (``VmRSS``), in MiB."""
    return _status_mb(pid, "VmRSS:")


class Processes:
    """Named ``loyalty`` subprocesses with a log file each under ``log_dir``."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.peaks: dict[str, float] = {}
        log_dir.mkdir(parents=True, exist_ok=True)

    def start(
        self, name: str, args: list[str], env: dict[str, str], module: str = "loyalty"
    ) -> subprocess.Popen[bytes]:
        """Start ``python -m <module> <args>``; its output goes to ``log_dir/<name>.log``."""
        with (self.log_dir / f"{name}.log").open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", module, *args],
                env=env,
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,  # the benchmark starts no threads before this
            )
        self.procs[name] = proc
        return proc

    def log_path(self, name: str) -> Path:
        """Where a process's output goes."""
        return self.log_dir / f"{name}.log"

    def log_tail(self, name: str, lines: int = 15) -> str:
        """The last lines a process wrote, for error messages."""
        try:
            text = self.log_path(name).read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def check_alive(self, name: str) -> None:
        """Raise with the tail of its log when the process has exited."""
        code = self.procs[name].poll()
        if code is not None:
            raise RuntimeError(
                f"{name} exited with code {code}; {self.log_path(name)}:\n{self.log_tail(name)}"
            )

    def peak_rss_mb(self, name: str) -> float | None:
        """``VmHWM`` of a running process (remembered for when it has stopped)."""
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is None:
            peak = peak_rss_mb(proc.pid)
            if peak is not None:
                self.peaks[name] = max(peak, self.peaks.get(name, 0.0))
        return self.peaks.get(name)

    def stop(self, name: str, timeout: float = 20.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; returns the exit code."""
        proc = self.procs.get(name)
        if proc is None:
            return None
        self.peak_rss_mb(name)  # /proc forgets the process once it exits
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait(10)
        del self.procs[name]
        return code

    def stop_all(self) -> None:
        """Stop every process still running, the most recent first."""
        for name in reversed(list(self.procs)):
            self.stop(name)

    async def wait_exit(self, name: str, within: float) -> int | None:
        """Wait for a process to end by itself, sampling its memory; None after ``within`` s."""
        proc = self.procs[name]
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            self.peak_rss_mb(name)
            code = proc.poll()
            if code is not None:
                del self.procs[name]
                return code
            await asyncio.sleep(0.05)
        return None

    async def wait_for_log(self, name: str, marker: str, within: float) -> None:
        """Wait until the process wrote ``marker`` (a log event name) to its log."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            self.check_alive(name)
            with contextlib.suppress(OSError):
                if marker in self.log_path(name).read_text(errors="replace"):
                    return
            await asyncio.sleep(0.05)
        raise TimeoutError(f"{name} did not log {marker!r} within {within:.0f} s")
