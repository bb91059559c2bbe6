"""The admin panel's process serves an ops port of its own, beside its public one."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

from core.settings import Settings
from tests.ops.scrape import ops_url, probe, scrape, wait_ready
from tests.support.pipeline import PipelineProcesses, pipeline_env, stop


def _free_port() -> int:
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        port: int = probe_socket.getsockname()[1]
    return port


async def test_the_admin_process_is_ready_while_its_database_answers(
    stack: Settings, ops_database: str, tmp_path: Path
) -> None:
    env = pipeline_env(stack, ops_database)
    env.update(LOYALTY_METRICS_PORT="0", LOYALTY_BCRYPT_ROUNDS="4")
    # NiceGUI takes a process with this variable for its own test run (and a test port).
    env.pop("PYTEST_CURRENT_TEST", None)
    procs = PipelineProcesses(env, tmp_path)
    public = _free_port()
    proc = procs.start("admin", "admin", "--port", str(public))
    try:
        base = await ops_url(stack, "admin", proc.pid)

        assert await wait_ready(base) == {"status": "ready", "role": "admin", "database": True}
        assert await probe(base, "/healthz") == (200, {"status": "ok", "role": "admin"})
        assert base != f"http://127.0.0.1:{public}"
        samples = await scrape(base)
        # Nothing locked yet, and each kind says so from the start (an alert sees 0, not
        # nothing); no other role's metric shows.
        ours = {key: v for key, v in samples.items() if key[0].startswith("loyalty_")}
        assert ours == {
            ("loyalty_lockouts_total", frozenset({("kind", "staff_pin")})): 0.0,
            ("loyalty_lockouts_total", frozenset({("kind", "sign_in")})): 0.0,
        }
    finally:
        code = await stop(procs, "admin")
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again for its exit
    # status; the shutdown hooks ran (the registration is gone).
    assert code in (0, -signal.SIGTERM), procs.log("admin")[-3000:]
    assert not (stack.stack_path / "metrics" / f"admin-{proc.pid}.url").exists()
