"""``loyalty wallet-sync`` serves its ops port: ready once its group has taken it in."""

from __future__ import annotations

import uuid
from pathlib import Path

from core.settings import Settings
from streams.topics import Topic
from tests.ops.scrape import labelled, ops_url, probe, scrape_until, value, wait_ready
from tests.support.pipeline import PipelineProcesses, pipeline_env, position_group_at_end, stop


async def test_the_wallet_sync_is_ready_and_exports_its_pushes_and_lag(
    stack: Settings, ops_database: str, tmp_path: Path
) -> None:
    group = f"test-ops-{uuid.uuid4().hex[:8]}"
    env = pipeline_env(stack, ops_database, group=group)
    env["LOYALTY_METRICS_PORT"] = "0"
    # Its group reads from the end: earlier sessions' updates are not this test's.
    await position_group_at_end(stack.bootstrap, f"{group}-wallet", [Topic.WALLET_UPDATES.value])
    procs = PipelineProcesses(env, tmp_path)
    proc = procs.start("wallet-sync", "wallet-sync")
    try:
        base = await ops_url(stack, "wallet-sync", proc.pid)

        assert await wait_ready(base) == {
            "status": "ready",
            "role": "wallet-sync",
            "database": True,
            "broker": True,
            "group": True,
        }
        assert await probe(base, "/healthz") == (200, {"status": "ok", "role": "wallet-sync"})
        samples = await scrape_until(
            base,
            lambda s: any(
                x["group"] == f"{group}-wallet" for x in labelled(s, "loyalty_consumer_lag")
            ),
        )
        # No wallet is configured here: every known series is there, at 0.
        assert {
            (x["platform"], x["outcome"]) for x in labelled(samples, "loyalty_wallet_pushes_total")
        } == {(w, o) for w in ("apple", "google") for o in ("ok", "failed", "gone")}
        pushes = labelled(samples, "loyalty_wallet_pushes_total")
        assert [value(samples, "loyalty_wallet_pushes_total", **x) for x in pushes] == [0.0] * 6
        assert {x["topic"] for x in labelled(samples, "loyalty_consumer_lag")} == {
            Topic.WALLET_UPDATES.value
        }
        assert not any(name.startswith("loyalty_events") for name, _ in samples)
    finally:
        code = await stop(procs, "wallet-sync")
    assert code == 0, procs.log("wallet-sync")[-3000:]
    assert not (stack.stack_path / "metrics" / f"wallet-sync-{proc.pid}.url").exists()
