"""The stack manager's care for people, without a running stack: stale pid files, taken ports."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.settings import Settings
from loyalty.stack import LocalStack, StackError, process_cmdline, read_pid_file

# A port nothing listens on: the "external" service of a test that never reaches it.
UNUSED = "127.0.0.1:9"


def _settings(tmp_path: Path, **overrides: object) -> Settings:
    return Settings.model_validate({"stack": "test", "stack_dir": tmp_path / "stack", **overrides})


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another program listens on while the test runs."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


@pytest.fixture
def other_program() -> Iterator[subprocess.Popen[bytes]]:
    """A live process that is not ours."""
    process = subprocess.Popen(["sleep", "300"])
    # Popen can return before /proc shows the new program's arguments.
    deadline = time.monotonic() + 10
    while process_cmdline(process.pid) != ["sleep", "300"] and time.monotonic() < deadline:
        time.sleep(0.01)
    yield process
    process.kill()
    process.wait()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_a_pid_file_of_a_finished_process_is_removed(tmp_path: Path) -> None:
    stack = LocalStack(_settings(tmp_path))
    finished = subprocess.Popen(["true"])
    finished.wait()
    stack.kafka.pid_file.parent.mkdir(parents=True)
    stack.kafka.pid_file.write_text(f"{finished.pid}\n")

    status = stack.status()

    assert (status.kafka.state, status.kafka.pid) == ("stopped", None)
    assert not stack.kafka.pid_file.exists()


def test_a_pid_reused_by_another_program_is_not_taken_for_the_broker(
    tmp_path: Path, other_program: subprocess.Popen[bytes]
) -> None:
    stack = LocalStack(_settings(tmp_path))
    stack.kafka.pid_file.parent.mkdir(parents=True)
    stack.kafka.pid_file.write_text(f"{other_program.pid}\n")

    stack.down()

    assert stack.status().kafka.state == "stopped"
    assert not stack.kafka.pid_file.exists()
    # `down` did not signal the stranger.
    assert other_program.poll() is None


def test_a_pid_file_of_a_live_matching_process_is_kept(
    tmp_path: Path, other_program: subprocess.Popen[bytes]
) -> None:
    pid_file = tmp_path / "sleep.pid"
    pid_file.write_text(f"{other_program.pid}\n")

    assert read_pid_file(pid_file, "sleep", "300") == other_program.pid
    assert pid_file.exists()


def test_a_taken_postgres_port_names_the_port_and_its_setting(
    tmp_path: Path, taken_port: int
) -> None:
    stack = LocalStack(_settings(tmp_path, pg_port=taken_port, kafka_bootstrap=UNUSED))

    with pytest.raises(StackError, match=rf"Port {taken_port} .* LOYALTY_PG_PORT="):
        stack.up(timeout=5)
    assert not (tmp_path / "stack" / "pg" / "data").exists()


def test_a_taken_kafka_port_names_the_port_and_its_setting(tmp_path: Path, taken_port: int) -> None:
    settings = _settings(
        tmp_path, kafka_port=taken_port, database_url=f"postgresql://loyalty@{UNUSED}/loyalty"
    )

    with pytest.raises(StackError, match=rf"Port {taken_port} .* LOYALTY_KAFKA_PORT="):
        LocalStack(settings).up(timeout=5)


def test_a_taken_controller_port_names_the_port_and_its_setting(
    tmp_path: Path, taken_port: int
) -> None:
    settings = _settings(
        tmp_path,
        kafka_port=_free_port(),
        kafka_controller_port=taken_port,
        database_url=f"postgresql://loyalty@{UNUSED}/loyalty",
    )

    with pytest.raises(StackError, match=rf"Port {taken_port} .* LOYALTY_KAFKA_CONTROLLER_PORT="):
        LocalStack(settings).up(timeout=5)


@pytest.mark.parametrize(("name", "timed"), [("bench", True), ("test", False), ("dev", False)])
def test_only_the_bench_stack_times_postgres_statements(
    tmp_path: Path, name: str, timed: bool
) -> None:
    # ``make bench`` prints PostgreSQL's time per event by statement; the other stacks do
    # without the extension.
    stack = LocalStack(Settings.model_validate({"stack": name, "stack_dir": tmp_path / "s"}))
    stack.postgres.data.mkdir(parents=True)
    stack.postgres._write_conf()
    conf = (stack.postgres.data / "loyalty.conf").read_text()
    assert ("shared_preload_libraries = 'pg_stat_statements'" in conf) is timed
