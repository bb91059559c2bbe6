"""``loyalty stack status`` lists where the engine's live processes serve their metrics."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from core.settings import Settings
from tests.ops.scrape import get, ops_url
from tests.support.pipeline import PipelineProcesses


def _status(*args: str) -> subprocess.CompletedProcess[str]:
    # The console script itself, in a process of its own, as people and scripts call it.
    loyalty = Path(sys.executable).with_name("loyalty")
    return subprocess.run(
        [str(loyalty), "stack", "status", *args], capture_output=True, text=True, check=False
    )


async def test_status_lists_the_metrics_urls_of_the_live_processes(
    stack: Settings, ops_processes: PipelineProcesses
) -> None:
    worker, relay = (ops_processes.procs[name].pid for name in ("worker", "relay"))
    urls = {
        f"worker-{worker}": await ops_url(stack, "worker", worker) + "/metrics",
        f"relay-{relay}": await ops_url(stack, "relay", relay) + "/metrics",
    }

    result = await asyncio.to_thread(_status, "--json")

    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)["metrics_urls"]
    assert {name: listed.get(name) for name in urls} == urls
    for url in urls.values():
        status, body = await get(url)
        assert status == 200
        assert "loyalty_" in body
    text = await asyncio.to_thread(_status)
    for name, url in urls.items():
        assert any(name in line and url in line for line in text.stdout.splitlines()), text.stdout


async def test_a_registration_whose_process_is_gone_is_not_listed(stack: Settings) -> None:
    # A pid that cannot be alive (above the kernel's pid_max): left by a process killed hard.
    folder = stack.stack_path / "metrics"
    folder.mkdir(parents=True, exist_ok=True)
    stale = folder / "worker-99999999.url"
    stale.write_text("http://127.0.0.1:1/metrics\n")
    try:
        result = await asyncio.to_thread(_status, "--json")
    finally:
        stale.unlink()

    assert result.returncode == 0, result.stderr
    assert "worker-99999999" not in json.loads(result.stdout)["metrics_urls"]
