"""A worker's ops port: probes that say what is wrong, and metrics that count what it did."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.settings import Settings
from streams.topics import INPUT_TOPICS, Topic
from tests.ops.scrape import (
    Samples,
    labelled,
    ops_url,
    probe,
    scrape,
    scrape_until,
    value,
    wait_ready,
)
from tests.pipeline.stories import key_of, purchase, send, shop_with_cards
from tests.support.pipeline import Bus, PipelineProcesses, pipeline_env, stop, wait_log

PURCHASES = Topic.PURCHASES.value


async def test_a_joined_worker_is_alive_and_ready(
    stack: Settings, ops_processes: PipelineProcesses
) -> None:
    base = await ops_url(stack, "worker", ops_processes.procs["worker"].pid)

    ready = await wait_ready(base)

    assert ready == {
        "status": "ready",
        "role": "worker",
        "database": True,
        "broker": True,
        "group": True,
    }
    assert await probe(base, "/healthz") == (200, {"status": "ok", "role": "worker"})


async def test_a_worker_whose_database_is_unreachable_is_alive_but_not_ready(
    stack: Settings, tmp_path: Path
) -> None:
    # Port 1: nothing listens there, so every connection is refused (a transient failure:
    # the worker waits for its database instead of exiting).
    env = pipeline_env(stack, "postgresql://loyalty@127.0.0.1:1/nowhere")
    env["LOYALTY_METRICS_PORT"] = "0"
    procs = PipelineProcesses(env, tmp_path)
    proc = procs.start_worker("lost")
    try:
        base = await ops_url(stack, "worker", proc.pid)
        await wait_log(procs, "lost", "database_unreachable")
        # Past the first round of probes: their answers are in, not merely unset.
        await asyncio.sleep(1.0)

        status, body = await probe(base, "/readyz")

        assert status == 503, body
        assert body["status"] == "not ready"
        assert body["database"] is False
        assert await probe(base, "/healthz") == (200, {"status": "ok", "role": "worker"})
        assert proc.poll() is None, "the worker gave up instead of waiting for its database"
    finally:
        code = await stop(procs, "lost")
    # SIGTERM ends the wait for the database as cleanly as a running worker's stop.
    assert code == 0, procs.log("lost")[-3000:]
    assert not (stack.stack_path / "metrics" / f"worker-{proc.pid}.url").exists()


async def test_batches_count_events_by_topic_type_and_status_and_dead_letters(
    stack: Settings,
    ops_processes: PipelineProcesses,
    ops_bus: Bus,
    ops_sessions: async_sessionmaker[AsyncSession],
) -> None:
    base = await ops_url(stack, "worker", ops_processes.procs["worker"].pid)
    shop, (card,) = await shop_with_cards(ops_sessions, ops_bus, 1)
    before = await scrape(base)

    purchases = [purchase(shop, card, 1000 + i) for i in range(3)]
    await send(ops_bus, *purchases)
    key = f"ops-dlq-{uuid.uuid4().hex}"
    await ops_bus.publish(PURCHASES, b'{"event_id": "1", "type": ', key)
    results = await ops_bus.wait_results([p["event_id"] for p in purchases])
    assert {r[0]["status"] for r in results.values()} == {"applied"}
    await _wait_dead_letter(ops_bus, key)

    def grew(after: Samples, name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    applied = {"topic": PURCHASES, "type": "purchase.completed", "status": "applied"}
    dead = {"topic": PURCHASES, "type": "purchase.completed", "status": "dead_lettered"}
    after = await scrape_until(
        base,
        lambda s: (
            grew(s, "loyalty_events_total", **applied) >= 3
            and grew(s, "loyalty_dead_letters_total", topic=PURCHASES) >= 1
        ),
    )
    # Other test sessions publish on the same topics; in this database their purchases find
    # no store and are rejected, never applied, so applied grew by ours exactly.
    assert grew(after, "loyalty_events_total", **applied) == 3
    assert grew(after, "loyalty_events_total", **dead) >= 1
    assert grew(after, "loyalty_dead_letters_total", topic=PURCHASES) >= 1
    assert value(after, "loyalty_batch_size_count") > 0
    assert value(after, "loyalty_batch_size_sum") >= value(after, "loyalty_batch_size_count")
    assert value(after, "loyalty_batch_duration_seconds_count") == value(
        after, "loyalty_batch_size_count"
    )
    # A worker exports its own metrics, not the relay's as zeros.
    assert labelled(after, "loyalty_outbox_backlog_messages") == []
    # Every topic's outcomes exist from the start (0 until their first event).
    assert len(labelled(after, "loyalty_events_total")) >= len(INPUT_TOPICS) * 5
    assert {x["topic"] for x in labelled(after, "loyalty_dead_letters_total")} == {
        t.value for t in INPUT_TOPICS
    }
    # The enrolment of the card went through the same counter under its own topic and type.
    assert (
        value(
            after,
            "loyalty_events_total",
            topic=Topic.ENROLLMENTS.value,
            type="enrollment.requested",
            status="applied",
        )
        >= 1
    )


async def test_the_worker_reports_its_lag_per_assigned_partition(
    stack: Settings, ops_processes: PipelineProcesses, ops_bus: Bus
) -> None:
    base = await ops_url(stack, "worker", ops_processes.procs["worker"].pid)
    group = ops_processes.env["LOYALTY_CONSUMER_GROUP"]
    inputs = {t.value for t in INPUT_TOPICS}

    # Alone in its group, the worker holds every partition of every input topic; the gauges
    # appear once each partition has been fetched and measured (every 5 s).
    samples = await scrape_until(
        base,
        lambda s: (
            {x["topic"] for x in labelled(s, "loyalty_consumer_lag") if x["group"] == group}
            == inputs
        ),
    )

    ours = [x for x in labelled(samples, "loyalty_consumer_lag") if x["group"] == group]
    assert len({(x["topic"], x["partition"]) for x in ours}) == len(ours)
    assert all(value(samples, "loyalty_consumer_lag", **x) >= 0 for x in ours)
    partitions = sorted(int(x["partition"]) for x in ours if x["topic"] == PURCHASES)
    assert partitions == list(range(len(partitions)))


async def _wait_dead_letter(bus: Bus, key: str, timeout: float = 60.0) -> None:
    # Other sessions' garbage is dead-lettered here too: wait for ours by its key.
    deadline = time.monotonic() + timeout
    while not any(d["key"] == key for d in bus.dead):
        if time.monotonic() > deadline:
            pytest.fail(f"no dead letter for {key}")
        await bus.drain()


async def test_a_worker_behind_runs_two_batches_in_flight_and_applies_each_event_once(
    stack: Settings,
    ops_processes: PipelineProcesses,
    ops_bus: Bus,
    ops_sessions: async_sessionmaker[AsyncSession],
) -> None:
    base = await ops_url(stack, "worker", ops_processes.procs["worker"].pid)
    shop, cards = await shop_with_cards(ops_sessions, ops_bus, 4)
    before = await scrape(base)

    # Far more than a batch (50 in the tests' environment) at once: batches are full, and
    # each starts while the one before commits; every card's purchases follow one another.
    purchases = [purchase(shop, cards[i % 4], 100 * (i + 1)) for i in range(600)]
    await ops_bus.publish_many((PURCHASES, p, key_of(p)) for p in purchases)
    results = await ops_bus.wait_results([p["event_id"] for p in purchases], timeout=120)

    assert all(len(r) == 1 and r[0]["status"] == "applied" for r in results.values())
    for card in cards:
        mine = [results[p["event_id"]][0] for p in purchases if p["card"]["card_number"] == card]
        # Applied in the order sent: each purchase's balance is the one before plus its own.
        balances = [r["points_balance"] for r in mine]
        deltas = [r["points_delta"] for r in mine]
        assert all(b - a == d for a, b, d in zip(balances, balances[1:], deltas[1:], strict=False))
    after = await scrape(base)
    assert value(after, "loyalty_batches_overlapped_total") > value(
        before, "loyalty_batches_overlapped_total"
    )
