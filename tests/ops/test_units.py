"""The pieces of the ops port that need no running process: group state, lag, ports."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from consumers.pipeline import Counts
from core.health import GroupWatch, Health, ops_app, role_registry
from core.settings import Settings
from loyalty.cli.run_cmd import assign_metrics_ports, metrics_port
from loyalty.supervisor import Service


@dataclass(frozen=True)
class TP:
    topic: str
    partition: int


@dataclass
class FakeConsumer:
    """What GroupWatch reads of a consumer: assignment, high watermarks, positions."""

    highwaters: dict[TP, int | None] = field(default_factory=dict)
    positions: dict[TP, int] = field(default_factory=dict)

    def assignment(self) -> set[TP]:
        return set(self.highwaters)

    def highwater(self, tp: TP) -> int | None:
        return self.highwaters[tp]

    async def position(self, tp: TP) -> int:
        return self.positions[tp]


def lag(group: str, topic: str, partition: int) -> float | None:
    return REGISTRY.get_sample_value(
        "loyalty_consumer_lag", {"group": group, "topic": topic, "partition": str(partition)}
    )


async def test_a_member_is_joined_from_its_first_assignment_even_an_empty_one() -> None:
    health = Health("worker", required=("group",))
    watch = GroupWatch(health, "g")
    assert health.readiness() == (False, {"group": False})

    await watch.on_partitions_assigned(set())
    assert health.readiness() == (True, {"group": True})

    await watch.on_partitions_revoked(set())
    assert health.readiness() == (False, {"group": False})


async def test_lag_is_highwater_minus_position_and_revoked_partitions_lose_their_gauge() -> None:
    group = f"g-{uuid.uuid4().hex[:6]}"
    a, b, fresh = TP("t", 0), TP("t", 1), TP("t", 2)
    consumer = FakeConsumer({a: 120, b: 7, fresh: None}, {a: 100, b: 7})
    watch = GroupWatch(Health("worker"), group)

    await watch.measure(consumer)

    assert (lag(group, "t", 0), lag(group, "t", 1)) == (20, 0)
    assert lag(group, "t", 2) is None, "a partition never fetched has no lag to tell yet"

    await watch.on_partitions_revoked({b})
    assert (lag(group, "t", 0), lag(group, "t", 1)) == (20, None)

    # Reassigned without ``a``: its gauge goes at the assignment, and at the next measure.
    consumer.highwaters = {b: 9}
    consumer.positions = {b: 4}
    await watch.on_partitions_assigned({b})
    assert lag(group, "t", 0) is None
    await watch.measure(consumer)
    assert (lag(group, "t", 0), lag(group, "t", 1)) == (None, 5)


def test_counts_add_their_topics() -> None:
    total = Counts()
    total.add(Counts(applied=2, by_topic={("p", "applied"): 2}))
    total.add(Counts(applied=1, dead_lettered=1, by_topic={("p", "applied"): 1, ("r", "x"): 1}))

    assert total.by_topic == {("p", "applied"): 3, ("r", "x"): 1}
    assert total.as_dict() == {
        "applied": 3,
        "rejected": 0,
        "held": 0,
        "duplicate": 0,
        "dead_lettered": 1,
        "retried_one_by_one": 0,
    }


def test_loyalty_run_gives_each_engine_process_a_port_of_its_own() -> None:
    settings = Settings(stack="test")
    names = ("admin", "relay", "wallet-sync", "webhooks", "worker-1", "worker-2", "worker-3")
    assert [metrics_port(settings, name) for name in names] == [
        9500, 9501, 9502, 9503, 9504, 9510, 9511
    ]  # fmt: skip

    services = [
        Service("worker-1", ["worker"]),
        Service("worker-2", ["worker"]),
        Service("mail-sink", ["mail-sink"]),
        Service("relay", ["relay"]),
        Service("admin", ["admin"]),
        Service("simulate", ["simulate", "--rate", "2"]),
    ]
    urls = assign_metrics_ports(settings, services)

    ports = {s.name: s.env.get("LOYALTY_METRICS_PORT") for s in services}
    assert ports["mail-sink"] is None and ports["simulate"] is None
    assigned = [p for p in ports.values() if p is not None]
    # Each its role's port, or a free one when another program holds that.
    assert len(set(assigned)) == len(assigned) == 4
    assert urls == {
        name: f"http://127.0.0.1:{port}/metrics" for name, port in ports.items() if port
    }
    # LOYALTY_METRICS_PORT=0 for `loyalty run`: free ports, still one each.
    anywhere = [Service(f"worker-{i}", ["worker"]) for i in range(1, 9)]
    assign_metrics_ports(Settings(stack="test", metrics_port=0), anywhere)
    assert len({s.env["LOYALTY_METRICS_PORT"] for s in anywhere}) == 8
    assert assign_metrics_ports(Settings(stack="test", metrics_enabled=False), services) == {}


def _families(role: str) -> set[str]:
    text = generate_latest(role_registry(role)).decode()
    return {family.name for family in text_string_to_metric_families(text)}


def test_each_role_exports_its_own_metrics_and_not_the_other_roles_ones() -> None:
    worker, relay, admin = _families("worker"), _families("relay"), _families("admin")

    assert {"loyalty_events", "loyalty_batch_size", "loyalty_consumer_lag"} <= worker
    assert "loyalty_outbox_backlog_messages" not in worker
    assert "loyalty_lockouts" not in worker
    assert {"loyalty_outbox_backlog_messages", "loyalty_relay_published"} <= relay
    assert "loyalty_events" not in relay and "loyalty_consumer_lag" not in relay
    assert {f for f in admin if f.startswith("loyalty_")} == {"loyalty_lockouts"}
    # The client's own figures everywhere.
    assert "process_cpu_seconds" in worker & relay & admin


def _call(app: Any, path: str) -> tuple[str, dict[str, Any]]:
    answered: list[str] = []
    body = b"".join(app({"PATH_INFO": path}, lambda status, headers: answered.append(status)))
    return answered[0], json.loads(body)


def test_readyz_names_the_checks_that_fail() -> None:
    health = Health("worker", required=("database", "broker", "group"))
    app = ops_app(health)
    health.set("broker", True)
    health.set("group", True)

    assert _call(app, "/readyz") == (
        "503 Service Unavailable",
        {
            "status": "not ready",
            "role": "worker",
            "database": False,
            "broker": True,
            "group": True,
        },
    )
    health.set("database", True)
    assert _call(app, "/readyz")[0] == "200 OK"
    assert _call(app, "/healthz") == ("200 OK", {"status": "ok", "role": "worker"})
