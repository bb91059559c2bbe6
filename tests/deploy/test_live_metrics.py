"""The dashboard names only metrics that live processes export.

Every process of docker-compose.yml runs as a real subprocess against the test stack's Kafka
and a database of its own (a consumer group on the session's database would apply the other
tests' events): ``loyalty worker``, ``relay``, ``wallet-sync``, ``webhooks`` and ``admin``, each
on an explicit free ``LOYALTY_METRICS_PORT``. Traffic goes through them: an enrolment and
purchases of a seeded merchant whose webhook endpoint (a server on loopback) takes every
result, and one message that is not JSON. Then each process's ``/metrics`` is scraped, and the
test fails for every ``loyalty_*`` or ``process_*`` series a dashboard expression reads that no
process has a sample of.

A HELP and TYPE line does not count: a labelled metric whose labels its process has not set
yet exports those lines and no sample, and Prometheus sees nothing of it; a panel over it stays
empty and an alert over it never fires. Metrics that only rare events touch (wallet pushes,
lockouts) pass only when their process sets their known labels at start (an untouched counter
then exports 0).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from prometheus_client.parser import text_string_to_metric_families

from core.settings import Settings
from domain.db import make_engine, make_sessionmaker
from domain.models import WebhookEndpoint
from streams.topics import TOPICS, Topic
from tests.deploy.files import dashboard_metric_names
from tests.support.db import fresh_database
from tests.support.pipeline import (
    INPUT_TOPIC_NAMES,
    Bus,
    PipelineProcesses,
    pipeline_env,
    position_group_at_end,
)
from tests.support.seed import seed_merchant

ROLES = ("worker", "relay", "wallet-sync", "webhooks", "admin")
# Environment of the subprocesses that pytest sets for itself: NiceGUI behaves as under test
# with them (the admin must run as `loyalty admin` runs).
_PYTEST_VARS = ("PYTEST_CURRENT_TEST", "NICEGUI_USER_SIMULATION", "NICEGUI_SCREEN_TEST_PORT")

Samples = dict[str, list[tuple[dict[str, str], float]]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - loopback only
            return int(answer.status), answer.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()
    except OSError as exc:  # not listening yet
        return 0, repr(exc)


async def get(url: str) -> tuple[int, str]:
    """Status (0: no answer) and body of a GET, off the event loop."""
    return await asyncio.to_thread(_get, url)


def parse(text: str) -> Samples:
    """The samples of an exposition, by series name (HELP and TYPE lines give none)."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return found


class _Endpoint(BaseHTTPRequestHandler):
    """A merchant's webhook endpoint that takes everything."""

    received: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.received.append(self.rfile.read(length))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: pytest shows the failures."""


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """An HTTP server on loopback answering 204 to every POST; yields its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hooks"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def deploy_database(stack: Settings) -> Iterator[str]:
    """A migrated database for these processes only."""
    with fresh_database(stack.db_url, f"loyalty_test_{os.getpid()}_deploy") as url:
        yield url


@pytest.fixture(scope="module")
async def merchant(
    stack: Settings, deploy_database: str, endpoint: str
) -> AsyncIterator[tuple[str, str]]:
    """A merchant with a store and a webhook endpoint for its results and balance changes;
    its code and its store's."""
    engine = make_engine(
        stack, url=deploy_database.replace("postgresql://", "postgresql+asyncpg://")
    )
    try:
        async with make_sessionmaker(engine)() as session:
            shop, stores, _ = await seed_merchant(session, stores=1)
            session.add(
                WebhookEndpoint(
                    merchant_id=shop.id,
                    url=endpoint,
                    secret="deploy-test-secret",
                    event_types=["event.processed", "card.balance_changed"],
                )
            )
            await session.commit()
            yield shop.code, stores[0].code
    finally:
        await engine.dispose()


class Fleet:
    """The compose file's engine processes, each with its own ops port and log."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.ports: dict[str, int] = {}
        self.procs: dict[str, PipelineProcesses] = {}

    def start(self, role: str, *args: str, **extra: str) -> None:
        """``loyalty <args>`` as ``role``, serving its ops port on a free port of its own."""
        port = _free_port()
        env = {**self.env, **extra, "LOYALTY_METRICS_PORT": str(port)}
        procs = PipelineProcesses(env, self.log_dir)
        procs.start(role, *args)
        self.ports[role] = port
        self.procs[role] = procs

    def base(self, role: str) -> str:
        """Where ``role``'s ops port answers."""
        return f"http://127.0.0.1:{self.ports[role]}"

    def exited(self, role: str) -> int | None:
        """The exit code of ``role``'s process, ``None`` while it runs."""
        return self.procs[role].procs[role].poll()

    def log(self, role: str) -> str:
        """What ``role`` logged so far."""
        return self.procs[role].log(role)

    def stop_all(self) -> None:
        """Stop every process."""
        for procs in self.procs.values():
            procs.stop_all()


@pytest.fixture(scope="module")
def fleet(
    stack: Settings,
    deploy_database: str,
    merchant: tuple[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Fleet]:
    """Every engine process of docker-compose.yml, with consumer groups of their own placed at
    the ends of their topics (the shared topics hold every earlier session's messages)."""
    group = f"test-deploy-{uuid.uuid4().hex[:8]}"
    env = pipeline_env(stack, deploy_database, group=group)
    for name in _PYTEST_VARS:
        env.pop(name, None)
    folder = tmp_path_factory.mktemp("deploy")
    env.update(
        LOYALTY_METRICS_HOST="127.0.0.1",
        LOYALTY_WEBHOOK_GROUP=f"{group}-webhooks",
        LOYALTY_WEBHOOK_ALLOW_PRIVATE="true",  # the endpoint is on loopback
        LOYALTY_WEBHOOK_RETRY_FIRST_S="1",
        LOYALTY_SESSION_SECRET="deploy-tests-secret",
        LOYALTY_BCRYPT_ROUNDS="4",
        LOYALTY_PIN_BCRYPT_ROUNDS="4",
        NICEGUI_STORAGE_PATH=str(folder / "nicegui"),
        _TYPER_STANDARD_TRACEBACK="1",
    )
    outputs = [t.topic.value for t in TOPICS if not t.is_input]
    for member, topics in (
        (group, INPUT_TOPIC_NAMES),
        (f"{group}-wallet", outputs),
        (f"{group}-webhooks", outputs),
    ):
        asyncio.run(position_group_at_end(stack.bootstrap, member, topics))
    fleet = Fleet(env, folder)
    try:
        fleet.start("worker", "worker", "--no-scheduler")
        fleet.start("relay", "relay")
        fleet.start("wallet-sync", "wallet-sync")
        fleet.start("webhooks", "webhooks")
        fleet.start("admin", "admin", "--port", str(_free_port()), LOYALTY_ADMIN_HOST="127.0.0.1")
        yield fleet
    finally:
        fleet.stop_all()


async def _wait_ready(fleet: Fleet, role: str, timeout: float = 180.0) -> dict[str, Any]:
    """Wait until ``role`` answers ``/readyz`` with 200; its body. Fails at once when the
    process exits, with the end of its log."""
    deadline = time.monotonic() + timeout
    while True:
        code = fleet.exited(role)
        if code is not None:
            raise AssertionError(f"`loyalty {role}` exited with {code}:\n{fleet.log(role)[-3000:]}")
        status, body = await get(fleet.base(role) + "/readyz")
        if status == 200:
            answer: dict[str, Any] = json.loads(body)
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"{role} never ready: {status} {body}\n{fleet.log(role)[-3000:]}")
        await asyncio.sleep(0.5)


async def _scrape_all(fleet: Fleet) -> dict[str, Samples]:
    scraped: dict[str, Samples] = {}
    for role in ROLES:
        status, text = await get(fleet.base(role) + "/metrics")
        assert status == 200, (role, status, text[:300])
        scraped[role] = parse(text)
    return scraped


def _total(samples: Samples, name: str, **labels: str) -> float:
    return sum(
        value
        for found, value in samples.get(name, [])
        if all(found.get(k) == v for k, v in labels.items())
    )


async def _traffic(stack: Settings, database: str, store: str) -> None:
    """An enrolment, three purchases on its card, and a message that is not JSON."""
    bus = Bus(stack.bootstrap, database)
    await bus.start()
    try:
        now = datetime.now(UTC).isoformat()
        enrolment: dict[str, Any] = {
            "event_id": str(uuid.uuid4()),
            "type": "enrollment.requested",
            "occurred_at": now,
            "store_code": store,
            "customer": {"email": f"{uuid.uuid4().hex[:8]}@example.com"},
            "channel": "staff",
        }
        await bus.publish(Topic.ENROLLMENTS, enrolment, store)
        results = await bus.wait_results([enrolment["event_id"]], timeout=120)
        (result,) = results[enrolment["event_id"]]
        assert result["status"] == "applied", result
        card = result["card_number"]
        purchases: list[dict[str, Any]] = [
            {
                "event_id": str(uuid.uuid4()),
                "type": "purchase.completed",
                "occurred_at": now,
                "store_code": store,
                "order_reference": f"o-{uuid.uuid4().hex[:10]}",
                "amount_cents": 450 + 100 * i,
                "card": {"card_number": card},
            }
            for i in range(3)
        ]
        await bus.publish_many((Topic.PURCHASES.value, p, card) for p in purchases)
        await bus.publish(Topic.PURCHASES, b"{not json at all", "garbage")
        await bus.wait_results([p["event_id"] for p in purchases], timeout=120)
    finally:
        await bus.stop()


async def test_every_metric_the_dashboard_names_has_a_live_sample(
    stack: Settings, deploy_database: str, merchant: tuple[str, str], fleet: Fleet
) -> None:
    named = dashboard_metric_names()
    assert named, "no metric name found in the dashboard"
    for role in ROLES:
        body = await _wait_ready(fleet, role)
        assert body["role"] == role, body
        status, alive = await get(fleet.base(role) + "/healthz")
        assert status == 200 and json.loads(alive)["role"] == role, alive

    await _traffic(stack, deploy_database, merchant[1])

    # The worker counts a batch after its commit; the gauges (lag, backlog, webhook queue)
    # follow every few seconds, and a webhook goes out once its result is relayed.
    deadline = time.monotonic() + 90
    while True:
        scraped = await _scrape_all(fleet)
        worker, relay, hooks = scraped["worker"], scraped["relay"], scraped["webhooks"]
        arrived = {
            "applied events": _total(worker, "loyalty_events_total", status="applied") >= 4,
            "a dead letter": _total(worker, "loyalty_dead_letters_total") >= 1,
            "relayed messages": _total(relay, "loyalty_relay_published_total") >= 4,
            "a delivered webhook": _total(
                hooks, "loyalty_webhook_attempts_total", outcome="delivered"
            )
            >= 1,
            "consumer lag": "loyalty_consumer_lag" in worker,
            "every dashboard metric": named <= {n for s in scraped.values() for n in s},
        }
        if all(arrived.values()) or time.monotonic() > deadline:
            break
        await asyncio.sleep(1)

    exported = {name for samples in scraped.values() for name in samples}
    missing = sorted(named - exported)
    assert not missing, (
        f"the dashboard names {len(missing)} series no live process has a sample of: "
        f"{missing}. Labelled metrics need their known labels set at start. "
        f"Still waiting for: {[k for k, ok in arrived.items() if not ok]}. Exported: "
        + "; ".join(
            f"{role}: {sorted(n for n in s if n.startswith('loyalty_'))}"
            for role, s in scraped.items()
        )
    )
    assert _Endpoint.received, "the webhook endpoint received nothing"
