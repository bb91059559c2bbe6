"""``loyalty stack status``: the exit status says whether the stack runs; external services
are asked with a TCP connection."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.settings import REPO_ROOT, Settings
from loyalty.stack import LocalStack, kafka_addresses, postgres_addresses

CONTRACT_KEYS = ("kafka_bootstrap", "database_url", "admin_url")


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def listener() -> Iterator[int]:
    """A loopback port something listens on while the test runs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def status(tmp_path: Path, *args: str, **env: str) -> tuple[int, str, str]:
    """``loyalty stack status ARGS`` of a stack of its own (a name and folder nobody uses)."""
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in ("LOYALTY_DATABASE_URL", "LOYALTY_KAFKA_BOOTSTRAP")
    }
    environ.update(
        LOYALTY_STACK=f"status-{uuid.uuid4().hex[:8]}", LOYALTY_STACK_DIR=str(tmp_path / "stack")
    )
    environ.update(env)
    done = subprocess.run(
        [sys.executable, "-m", "loyalty", "stack", "status", *args],
        env=environ,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def services(printed: dict[str, Any]) -> dict[str, tuple[bool, str]]:
    return {name: (s["running"], s["state"]) for name, s in printed["services"].items()}


def test_a_stack_that_is_not_running_exits_non_zero_and_says_so(tmp_path: Path) -> None:
    code, out, err = status(tmp_path, "--json")

    assert code == 1, err
    printed = json.loads(out)
    assert all(isinstance(printed[k], str) for k in CONTRACT_KEYS)
    assert printed["running"] is False
    assert services(printed) == {"postgres": (False, "stopped"), "kafka": (False, "stopped")}
    assert not (tmp_path / "stack").exists()  # asking created nothing


def test_the_text_form_exits_non_zero_too(tmp_path: Path) -> None:
    code, out, _ = status(tmp_path)

    assert code == 1
    assert "postgres stopped" in out and "kafka    stopped" in out


def test_the_running_test_stack_exits_zero(stack: Settings) -> None:
    # The test stack as the session's settings name it (its own services, or external ones).
    environ = dict(os.environ)
    for name, value in (
        ("LOYALTY_DATABASE_URL", stack.database_url),
        ("LOYALTY_KAFKA_BOOTSTRAP", stack.kafka_bootstrap),
    ):
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value
    environ.update(LOYALTY_STACK=stack.stack, LOYALTY_STACK_DIR=str(stack.stack_path))
    done = subprocess.run(
        [sys.executable, "-m", "loyalty", "stack", "status", "--json"],
        env=environ,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    printed = json.loads(done.stdout)
    assert printed["running"] is True
    assert {k: printed[k] for k in CONTRACT_KEYS} == LocalStack(stack).status().urls()
    assert all(running for running, _ in services(printed).values())


def test_external_services_are_judged_by_a_tcp_connection(tmp_path: Path, listener: int) -> None:
    dead = closed_port()
    code, out, err = status(
        tmp_path,
        "--json",
        LOYALTY_DATABASE_URL=f"postgresql://someone:s3cret@127.0.0.1:{listener}/loyalty",
        LOYALTY_KAFKA_BOOTSTRAP=f"127.0.0.1:{dead}",
    )

    assert code == 1, err
    printed = json.loads(out)
    assert printed["running"] is False
    assert services(printed) == {"postgres": (True, "external"), "kafka": (False, "external")}
    assert printed["services"]["postgres"]["address"] == f"127.0.0.1:{listener}"
    assert "s3cret" not in json.dumps(printed["services"])


def test_external_services_that_answer_make_a_running_stack(tmp_path: Path, listener: int) -> None:
    code, out, err = status(
        tmp_path,
        LOYALTY_DATABASE_URL=f"postgresql://someone@127.0.0.1:{listener}/loyalty",
        LOYALTY_KAFKA_BOOTSTRAP=f"127.0.0.1:{closed_port()},PLAINTEXT://127.0.0.1:{listener}",
    )

    assert code == 0, out + err
    assert "external, answers" in out and "NOT ANSWERING" not in out


@pytest.mark.parametrize(
    ("url", "addresses"),
    [
        ("postgresql://u:p@db.example:5433/x", [("db.example", 5433)]),
        ("postgresql+asyncpg://u@db.example/x", [("db.example", 5432)]),
        ("postgres://u@h1:5433,h2/x", [("h1", 5433), ("h2", 5432)]),
        ("postgresql://u@[::1]:6000/x", [("::1", 6000)]),
        ("postgresql:///x?host=/run/postgresql", [("/run/postgresql/.s.PGSQL.5432", 0)]),
    ],
)
def test_postgres_addresses(url: str, addresses: list[tuple[str, int]]) -> None:
    assert postgres_addresses(url) == addresses


def test_kafka_addresses() -> None:
    assert kafka_addresses("k1:9093, PLAINTEXT://k2,[::1]:19092") == [
        ("k1", 9093),
        ("k2", 9092),
        ("::1", 19092),
    ]
    with pytest.raises(ValueError):
        kafka_addresses("k1:not-a-port")
