"""Each long-running process's ops port: ``/metrics``, ``/healthz`` and ``/readyz``.

The server runs in a daemon thread (the standard library's WSGI server under
``prometheus_client``'s exposition app), so a scrape never waits for the event loop and costs
the hot path nothing. The loop tells the thread how it is through ``Health``:

- ``/healthz`` answers 200 while the loop's heartbeat (``keep_beating``) is fresh: a process
  whose loop is stuck stops being healthy even though this thread still answers;
- ``/readyz`` answers 200 when every required check last passed (database and broker
  reachable, consumer group joined: whatever the process declared), 503 with the failing
  ones otherwise. Both answer a small JSON body.

Started processes register ``<stack folder>/metrics/<role>-<pid>.url`` (removed at stop, and
at any orderly exit of the interpreter), which ``loyalty stack status --json`` lists under
``metrics_urls``.

Consumers of a group also keep a ``GroupWatch``: its rebalance callbacks answer ``/readyz``'s
``group`` check, and every few seconds it sets ``loyalty_consumer_lag`` from what the
consumer already knows (no request to the broker).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any, Protocol
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import REGISTRY, CollectorRegistry, make_wsgi_app
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from core.logs import get_logger
from core.metrics import CONSUMER_LAG, ROLE_METRICS
from core.settings import Settings

log = get_logger(__name__)

# A heartbeat older than this means the event loop is stuck (a batch never takes this long).
STALE_AFTER_S = 60.0
PROBE_EVERY_S = 5.0
PROBE_TIMEOUT_S = 5.0
LAG_EVERY_S = 5.0
# A partition whose position is not known yet (just assigned, offsets being fetched) is
# skipped for this round rather than waited for.
POSITION_TIMEOUT_S = 1.0


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


async def keep_probing(health: Health, probes: Mapping[str, Probe]) -> None:
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


class Partition(Protocol):
    """A topic partition as Kafka clients name it (aiokafka's ``TopicPartition`` fits)."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...


class LagSource(Protocol):
    """What ``GroupWatch`` reads of a consumer (aiokafka's ``AIOKafkaConsumer`` fits)."""

    def assignment(self) -> set[Any]: ...

    def highwater(self, partition: Any) -> int | None: ...

    async def position(self, partition: Any) -> int: ...


class GroupWatch:
    """A consumer group member's state for the ops port: joined or not, and its lag.

    ``on_partitions_revoked`` and ``on_partitions_assigned`` are the callbacks of aiokafka's
    ``ConsumerRebalanceListener``; a consumer module mixes that class in (core imports no
    Kafka client). ``measure`` sets ``loyalty_consumer_lag`` per assigned partition.
    """

    def __init__(self, health: Health, group: str) -> None:
        self.health = health
        self.group = group
        self._labelled: set[tuple[str, int]] = set()

    async def on_partitions_revoked(self, revoked: Iterable[Partition]) -> None:
        """A rebalance starts: out of the group until the next assignment."""
        self.health.set("group", False)
        for tp in revoked:
            self._forget(tp.topic, tp.partition)

    async def on_partitions_assigned(self, assigned: Iterable[Partition]) -> None:
        """The group answered: joined, even with nothing assigned (more members than
        partitions), since such a member takes partitions over when another leaves."""
        self.health.set("group", True)
        kept = {(tp.topic, tp.partition) for tp in assigned}
        for topic, partition in self._labelled - kept:
            self._forget(topic, partition)

    async def measure(self, consumer: LagSource) -> None:
        """Set the lag of every assigned partition from the consumer's own figures: the high
        watermark of its last fetch minus its position. Partitions no longer assigned lose
        their gauge, so a revoked partition does not report a frozen lag."""
        assigned = {(tp.topic, tp.partition): tp for tp in consumer.assignment()}
        for (topic, partition), tp in assigned.items():
            try:
                high = consumer.highwater(tp)
                if high is None:  # no fetch answered for it yet
                    continue
                position = await asyncio.wait_for(consumer.position(tp), POSITION_TIMEOUT_S)
            except Exception as exc:  # revoked meanwhile, or no position yet: next round
                log.debug("consumer_lag_skipped", topic=topic, partition=partition, error=repr(exc))
                continue
            CONSUMER_LAG.labels(self.group, topic, str(partition)).set(max(0, high - position))
            self._labelled.add((topic, partition))
        for topic, partition in self._labelled - assigned.keys():
            self._forget(topic, partition)

    def _forget(self, topic: str, partition: int) -> None:
        if (topic, partition) in self._labelled:
            self._labelled.discard((topic, partition))
            with contextlib.suppress(KeyError):
                CONSUMER_LAG.remove(self.group, topic, str(partition))


async def keep_measuring_lag(
    watch: GroupWatch, consumer: Callable[[], LagSource | None], every_s: float = LAG_EVERY_S
) -> None:
    """``watch.measure`` every few seconds until cancelled; ``consumer`` gives the consumer
    of the moment (``None`` while there is none)."""
    while True:
        await asyncio.sleep(every_s)
        current = consumer()
        if current is not None:
            try:
                await watch.measure(current)
            except Exception as exc:  # a gauge left stale must never stop the process
                log.debug("consumer_lag_unmeasured", error=repr(exc)[:200])


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds would flood the process's log."""


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def _family_names(role: str) -> frozenset[str]:
    return frozenset(next(iter(m.describe())).name for m in ROLE_METRICS.get(role, ()))


class _RoleCollector(Collector):
    """The default registry's families, less those only other roles update."""

    def __init__(self, role: str) -> None:
        own = _family_names(role)
        others = frozenset().union(*(_family_names(r) for r in ROLE_METRICS if r != role))
        self.hidden = others - own

    def collect(self) -> Iterable[Metric]:
        """What the role's ops port exports."""
        return (family for family in REGISTRY.collect() if family.name not in self.hidden)


def role_registry(role: str) -> CollectorRegistry:
    """A registry exporting what a process of ``role`` updates (``core.metrics.ROLE_METRICS``);
    the default registry whole for a role not listed there."""
    if role not in ROLE_METRICS:
        return REGISTRY
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_RoleCollector(role))
    return registry


def ops_app(health: Health) -> Callable[..., Iterable[bytes]]:
    """The WSGI app: prometheus_client's exposition of the role's metrics, plus the two
    probes."""
    metrics = make_wsgi_app(role_registry(health.role))

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
            _unregister(self._registration)


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
    # A process that ends without closing its server (a failed start) leaves no stale file.
    atexit.register(_unregister, path)
    return path


def _unregister(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


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
