"""Each long-running process's ops port: ``/metrics``, ``/healthz`` and ``/readyz``.

The server runs in a daemon thread (the standard library's WSGI server under
``prometheus_client``'s exposition app), so a scrape never waits for the event loop and costs
the hot path nothing. The loop tells the thread how it is through ``Health``:

- ``/healthz`` answers 200 while the loop's heartbeat (``keep_beating``) is fresh: a process
  whose loop is stuck stops being healthy even though this thread still answers;
- ``/readyz`` answers 200 when every required check last passed (database and broker
  reachable, consumer group joined: whatever the process declared), 503 with the failing
  ones otherwise. Both answer a small JSON body.

Started processes register ``<stack folder>/metrics/<role>-<pid>.url`` (removed at stop), which
``loyalty stack status --json`` lists under ``metrics_urls``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app

from core.logs import get_logger
from core.settings import Settings

log = get_logger(__name__)

# A heartbeat older than this means the event loop is stuck (a batch never takes this long).
STALE_AFTER_S = 60.0
PROBE_EVERY_S = 5.0
PROBE_TIMEOUT_S = 5.0


@dataclass
class Health:
    """What the process's loop last saw; read by the ops thread.

    ``required`` names the checks ``/readyz`` waits for; each is false until first set.
    """

    role: str
    required: tuple[str, ...] = ()
    _checks: dict[str, bool] = field(default_factory=dict)
    _beat: float = field(default_factory=time.monotonic)

    def beat(self) -> None:
        """The loop is alive now."""
        self._beat = time.monotonic()

    def set(self, check: str, ok: bool) -> None:
        """Record a check's latest answer (a plain assignment: safe across threads)."""
        self._checks[check] = ok

    def alive(self) -> bool:
        """Whether the loop beat recently."""
        return time.monotonic() - self._beat < STALE_AFTER_S

    def readiness(self) -> tuple[bool, dict[str, bool]]:
        """Ready, and each required check's last answer."""
        checks = {name: self._checks.get(name, False) for name in self.required}
        return self.alive() and all(checks.values()), checks


async def keep_beating(health: Health, every_s: float = 1.0) -> None:
    """Beat the heartbeat from the event loop until cancelled."""
    while True:
        health.beat()
        await asyncio.sleep(every_s)


Probe = Callable[[], Awaitable[object]]


async def keep_probing(health: Health, probes: dict[str, Probe]) -> None:
    """Run each probe every few seconds until cancelled; a probe passes when it returns
    without raising within the timeout. Heartbeats too."""
    while True:
        health.beat()
        for name, probe in probes.items():
            try:
                await asyncio.wait_for(probe(), PROBE_TIMEOUT_S)
            except Exception:  # any failure means "not reachable now"; the reason is not ours
                health.set(name, False)
            else:
                health.set(name, True)
        await asyncio.sleep(PROBE_EVERY_S)


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds would flood the process's log."""


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def ops_app(health: Health) -> Callable[..., Iterable[bytes]]:
    """The WSGI app: prometheus_client's exposition, plus the two probes."""
    metrics = make_wsgi_app()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            ok = health.alive()
            body: dict[str, Any] = {"status": "ok" if ok else "stuck", "role": health.role}
        elif path == "/readyz":
            ok, checks = health.readiness()
            body = {"status": "ready" if ok else "not ready", "role": health.role, **checks}
        else:
            return metrics(environ, start_response)  # type: ignore[no-any-return]
        start_response(
            "200 OK" if ok else "503 Service Unavailable",
            [("Content-Type", "application/json"), ("Cache-Control", "no-store")],
        )
        return [json.dumps(body).encode()]

    return app


@dataclass
class OpsServer:
    """A running ops server: where it listens, and how to stop it."""

    url: str
    _server: WSGIServer
    _registration: Path | None

    def close(self) -> None:
        """Stop serving and forget the registration."""
        self._server.shutdown()
        self._server.server_close()
        if self._registration is not None:
            with contextlib.suppress(OSError):
                self._registration.unlink()


def start_ops_server(settings: Settings, health: Health) -> OpsServer | None:
    """Serve the ops endpoints from a daemon thread; ``None`` when metrics are disabled.

    The port: ``LOYALTY_METRICS_PORT`` when set (0: any free one), else the role's port of this
    stack, or any free one when another process holds that.
    """
    if not settings.metrics_enabled:
        return None
    app = ops_app(health)
    ports = (
        [settings.metrics_port]
        if settings.metrics_port is not None
        else [settings.metrics_port_for(health.role), 0]
    )
    server: WSGIServer | None = None
    for port in ports:
        try:
            server = make_server(
                settings.metrics_host, port, app, _ThreadingServer, handler_class=_Quiet
            )
            break
        except OSError:
            if port == ports[-1]:
                raise
    assert server is not None
    threading.Thread(target=server.serve_forever, name="ops-http", daemon=True).start()
    url = f"http://{settings.metrics_host}:{server.server_port}/metrics"
    registration = _register(settings, health.role, url)
    log.info("ops_server_started", role=health.role, url=url)
    return OpsServer(url, server, registration)


def _register(settings: Settings, role: str, url: str) -> Path | None:
    folder = settings.stack_path / "metrics"
    path = folder / f"{role}-{os.getpid()}.url"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(url + "\n")
    except OSError:  # a read-only image: the URL is still in the log
        return None
    return path


def registered_metrics_urls(settings: Settings) -> dict[str, str]:
    """The ops URLs of this stack's live processes, by ``<role>-<pid>``; stale files (their
    process gone) are skipped."""
    folder = settings.stack_path / "metrics"
    found: dict[str, str] = {}
    for path in sorted(folder.glob("*.url")) if folder.is_dir() else []:
        name = path.stem
        pid = name.rpartition("-")[2]
        if pid.isdigit() and Path(f"/proc/{pid}").exists():
            found[name] = path.read_text().strip()
    return found
