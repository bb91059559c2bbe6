"""What ``loyalty run`` starts for the demo stack, and how it stops them on Ctrl-C.

Each service is a ``python -m loyalty <command>`` child process with its log in the stack
folder, in the supervisor's environment plus the service's own ``env`` (its metrics port). A
child that dies is restarted after a pause (a few times), so a passing broker hiccup does not
end the demo; Ctrl-C or SIGTERM stops every child with SIGTERM, then SIGKILL after a grace
period.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.settings import REPO_ROOT


@dataclass
class Service:
    """A child process the supervisor keeps running."""

    name: str
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    """Variables set for this child only, over the supervisor's own environment."""
    restarts: int = 0
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    log_path: Path = field(default_factory=Path)


class Supervisor:
    """Starts services, restarts the ones that die, stops them all on request."""

    MAX_RESTARTS = 5
    GRACE_S = 20.0

    def __init__(self, services: list[Service], log_dir: Path) -> None:
        self.services = services
        self.log_dir = log_dir
        self._stopping = False

    def start(self) -> None:
        """Start every service."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for service in self.services:
            self._spawn(service)

    def _spawn(self, service: Service) -> None:
        service.log_path = self.log_dir / f"{service.name}.log"
        log = service.log_path.open("ab")
        service.proc = subprocess.Popen(
            [sys.executable, "-m", "loyalty", *service.args],
            cwd=REPO_ROOT,
            env={**os.environ, **service.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the supervisor only; it stops the rest
        )
        service.started_at = time.monotonic()

    def watch(self) -> None:
        """Keep services alive until a signal asks to stop."""

        def stop(*_: object) -> None:
            self._stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        while not self._stopping:
            for service in self.services:
                if service.proc is not None and service.proc.poll() is not None:
                    self._died(service)
            time.sleep(0.5)
        self.stop()

    def _died(self, service: Service) -> None:
        assert service.proc is not None
        code = service.proc.returncode
        if service.restarts >= self.MAX_RESTARTS:
            print(f"  {service.name} exited ({code}) too often; see {service.log_path}")
            service.proc = None
            return
        service.restarts += 1
        print(f"  {service.name} exited ({code}); restarting (log: {service.log_path})")
        time.sleep(min(10.0, 2.0**service.restarts))
        self._spawn(service)

    def stop(self) -> None:
        """SIGTERM every child, wait for them, SIGKILL the ones that do not leave."""
        running = [s.proc for s in self.services if s.proc is not None and s.proc.poll() is None]
        for proc in running:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.GRACE_S
        for proc in running:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
