"""The local stack: a PostgreSQL cluster and a Kafka broker of the project's own.

``LocalStack(settings).up()`` starts what the settings leave local (no ``LOYALTY_DATABASE_URL``,
no ``LOYALTY_KAFKA_BOOTSTRAP``) from the folder ``.stack/<name>``, waits until both answer and
makes sure every contract topic exists. It is idempotent: a second call finds the running
processes and only checks the topics. ``down()`` stops the local processes; the data stays for
the next ``up()``. ``status()`` tells what runs and where; ``status(probe=True)`` also tries a
TCP connection to the external services, so that ``loyalty stack status`` can say whether they
answer.

PostgreSQL comes from the machine's server binaries (Debian's ``postgresql``), Kafka from the
jars ``make setup`` resolves into ``.stack/kafka-libs`` (see ``stack/pom.xml``).

Long (about 900 lines) because it manages two processes of very different kinds (a PostgreSQL
cluster and a KRaft broker) through one idempotent life cycle.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import hashlib
import logging
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from string import Template
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qs, urlsplit

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.errors import KafkaError

from core.health import registered_metrics_urls
from core.logs import get_logger
from core.settings import REPO_ROOT, Settings, plain_postgres_url, with_database
from streams.topics import TOPICS, Topic

log = get_logger(__name__)

T = TypeVar("T")

#: Jars of the broker, shared by every named stack (``make setup`` fills it).
KAFKA_LIBS = REPO_ROOT / ".stack" / "kafka-libs"
#: Templates kept under version control beside the pom.
SERVER_PROPERTIES_TEMPLATE = REPO_ROOT / "stack" / "server.properties"
LOG4J_CONFIG = REPO_ROOT / "stack" / "log4j2.xml"

#: Partitions of every topic that is not an input; inputs follow ``settings.input_partitions``.
OUTPUT_PARTITIONS = 6
#: Unix sockets have a path limit of 108 bytes; longer folders fall back to a short one in /tmp.
_MAX_SOCKET_PATH = 100
#: What ``/proc/<pid>/cmdline`` of our broker must contain besides its config path.
_KAFKA_MAIN_CLASS = "kafka.Kafka"

ServiceState = Literal["running", "stopped", "external"]


class StackError(RuntimeError):
    """The stack cannot start or stop; the message tells a person what to do."""


@dataclass(frozen=True)
class ServiceStatus:
    """One service of the stack: where it is, and whether this stack runs it.

    ``reachable`` is known for an external service only when it was probed (a TCP
    connection): ``None`` means not asked.
    """

    name: str
    state: ServiceState
    address: str
    pid: int | None = None
    log_file: Path | None = None
    reachable: bool | None = None

    @property
    def running(self) -> bool:
        """Runs in this stack, or is external and did not fail to answer a probe."""
        if self.state == "external":
            return self.reachable is not False
        return self.state == "running"


@dataclass(frozen=True)
class StackStatus:
    """What ``loyalty stack status`` shows."""

    stack: str
    postgres: ServiceStatus
    kafka: ServiceStatus
    kafka_bootstrap: str
    database_url: str
    admin_url: str
    metrics_urls: dict[str, str] = field(default_factory=dict)
    """The ops URLs of this stack's live engine processes, by ``<role>-<pid>``."""

    @property
    def running(self) -> bool:
        """Both services run in this stack or are external (and answered, when probed)."""
        return all(s.running for s in (self.postgres, self.kafka))

    def urls(self) -> dict[str, str]:
        """The addresses of CONTRACT.md section 6 (``stack status --json``)."""
        return {
            "kafka_bootstrap": self.kafka_bootstrap,
            "database_url": self.database_url,
            "admin_url": self.admin_url,
        }

    def status_json(self) -> dict[str, Any]:
        """``stack status --json``: the addresses of CONTRACT.md section 6, then whether the
        stack runs, in all (``running``) and per service (``services``), and where the
        engine's processes serve their metrics (``metrics_urls``)."""
        return {
            **self.urls(),
            "metrics_urls": dict(self.metrics_urls),
            "running": self.running,
            "services": {
                s.name: {"running": s.running, "state": s.state, "address": s.address}
                for s in (self.postgres, self.kafka)
            },
        }

    def as_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready."""
        data = asdict(self)
        for service in ("postgres", "kafka"):
            if data[service]["log_file"] is not None:
                data[service]["log_file"] = str(data[service]["log_file"])
        return data


# --------------------------------------------------------------------------- processes


def process_cmdline(pid: int) -> list[str] | None:
    """The arguments of a live process, ``None`` when there is none (or only a zombie)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    if not raw:
        # Zombies and kernel threads have an empty command line: neither is our server.
        return None
    return raw.rstrip(b"\0").decode(errors="replace").split("\0")


def _reap(pid: int) -> None:
    # A broker started by this very process stays a zombie until waited for; reaping it
    # lets the liveness checks below see it gone.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def is_alive(pid: int, *markers: str) -> bool:
    """Whether ``pid`` runs a process whose arguments contain every marker."""
    _reap(pid)
    cmdline = process_cmdline(pid)
    if cmdline is None:
        return False
    joined = " ".join(cmdline)
    return all(marker in joined for marker in markers)


def read_pid_file(path: Path, *markers: str) -> int | None:
    """The pid in ``path`` if that process still runs our program, else ``None``.

    A stale file, whose process is gone or whose pid now belongs to another program (the
    kernel reuses pids), is removed so that nobody signals a stranger.
    """
    try:
        first_line = path.read_text().splitlines()[0].strip()
        pid = int(first_line)
    except (FileNotFoundError, IndexError, ValueError):
        pid = None
    if pid is not None and pid > 0 and is_alive(pid, *markers):
        return pid
    if path.exists():
        log.info("stale_pid_file_removed", path=str(path), pid=pid)
        path.unlink(missing_ok=True)
    return None


def find_process(*markers: str) -> int | None:
    """A running process whose arguments contain every marker (a lost pid file's owner)."""
    for entry in Path("/proc").iterdir():
        pid = int(entry.name) if entry.name.isdigit() else os.getpid()
        if pid != os.getpid() and is_alive(pid, *markers):
            return pid
    return None


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something listens on ``host:port`` (binding is the only reliable test)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR: connections of a just-stopped server in TIME_WAIT do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def _port_answers(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


Address = tuple[str, int]
"""A TCP ``(host, port)``, or ``(socket path, 0)`` for a Unix socket."""


def _host_port(item: str, default_port: int) -> Address:
    """``host``, ``host:port`` or ``[v6]:port`` as an address."""
    parts = urlsplit("//" + item.strip())
    return parts.hostname or "localhost", parts.port or default_port


def postgres_addresses(url: str) -> list[Address]:
    """Where a PostgreSQL URL connects: its hosts (libpq allows several) or Unix socket.

    Raises ``ValueError`` for a URL whose port is not a number.
    """
    parts = urlsplit(plain_postgres_url(url))
    socket_dirs = [h for h in parse_qs(parts.query).get("host", []) if h.startswith("/")]
    hosts = parts.netloc.rpartition("@")[2]
    port = int(parse_qs(parts.query).get("port", ["5432"])[0])
    if socket_dirs and not hosts:
        return [(f"{d.rstrip('/')}/.s.PGSQL.{port}", 0) for d in socket_dirs]
    return [_host_port(h, port) for h in (hosts or "localhost").split(",")]


def kafka_addresses(bootstrap: str) -> list[Address]:
    """The brokers of a bootstrap list (``host:port,...``, a ``PLAINTEXT://`` prefix allowed).

    Raises ``ValueError`` for a port that is not a number.
    """
    return [
        _host_port(item.rpartition("://")[2], 9092) for item in bootstrap.split(",") if item.strip()
    ]


def reachable(addresses: list[Address], timeout: float = 2.0) -> bool:
    """Whether any address accepts a connection (a TCP connect, or a Unix socket's)."""
    for host, port in addresses:
        if port == 0:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout)
                with contextlib.suppress(OSError):
                    sock.connect(host)
                    return True
            continue
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
            return True
    return False


def _shown(addresses: list[Address]) -> str:
    # Only where it is: a URL's user name and password stay out of the status.
    return ",".join(host if port == 0 else f"{host}:{port}" for host, port in addresses)


def _require_free_port(port: int, what: str, setting: str) -> None:
    if port_in_use(port):
        raise StackError(
            f"Port {port} for {what} is already taken by another program; stop that program "
            f"or choose another port with {setting}=<port>."
        )


def _tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def _run_sync(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine from sync code, also when the caller already has an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    # asyncio.run refuses to nest: run it in a worker thread with a loop of its own.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def _run(cmd: list[str], what: str, log_file: Path | None = None) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise StackError(f"{what} failed: {exc.filename} is missing; run `make setup`.") from exc
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()
        hint = f" (see {log_file})" if log_file else ""
        raise StackError(f"{what} failed with exit code {done.returncode}{hint}:\n{output}")
    return done.stdout


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    # While we wait for a broker, each refused connection is expected and the client library
    # would log it as an error; the last one is in our own message if the wait fails.
    target = logging.getLogger(logger_name)
    previous = target.level
    target.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        target.setLevel(previous)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    # Two `make` targets (or test sessions) bringing one stack up at once must not both
    # run initdb or start a second broker on the same folder.
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- postgres


def find_pg_bindir() -> Path | None:
    """The folder of the newest PostgreSQL server binaries on this machine."""
    on_path = shutil.which("initdb")
    if on_path:
        bindir = Path(on_path).resolve().parent
        if (bindir / "pg_ctl").exists() and (bindir / "postgres").exists():
            return bindir
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return candidates[-1].parent if candidates else None


class _Postgres:
    """A cluster in ``<stack>/pg``: ``data/``, a socket folder and ``postgres.log``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = settings.stack_path / "pg"
        self.data = self.root / "data"
        self.log_file = self.root / "postgres.log"
        self.port = settings.local_pg_port

    # Running as root: initdb and postgres refuse it, so they run as the `postgres` user.
    @property
    def _as_root(self) -> bool:
        return os.geteuid() == 0

    @property
    def socket_dir(self) -> Path:
        preferred = self.root / "run"
        if len(f"{preferred}/.s.PGSQL.{self.port}") <= _MAX_SOCKET_PATH:
            return preferred
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:12]
        return Path("/tmp") / f"loyalty-pg-{digest}"  # noqa: S108 - the path limit leaves no choice

    def _cmd(self, *args: str) -> list[str]:
        if self._as_root:
            return ["runuser", "-u", "postgres", "--", *args]
        return list(args)

    def _bin(self, name: str) -> str:
        bindir = find_pg_bindir()
        if bindir is None:
            raise StackError(
                "PostgreSQL server binaries (initdb, pg_ctl) are missing: run `make setup` "
                "or `apt-get install postgresql`."
            )
        return str(bindir / name)

    def pid(self) -> int | None:
        """The postmaster's pid if this cluster runs."""
        pid_file = self.data / "postmaster.pid"
        if not pid_file.exists():
            return None
        # The postmaster is `postgres -D <data>`; its pid file names that data folder too.
        return read_pid_file(pid_file, "postgres", str(self.data))

    def _check_running_port(self) -> None:
        # The fourth line of postmaster.pid is the port the server listens on.
        lines = (self.data / "postmaster.pid").read_text().splitlines()
        running_port = int(lines[3]) if len(lines) > 3 and lines[3].isdigit() else self.port
        if running_port != self.port:
            raise StackError(
                f"PostgreSQL of stack '{self.settings.stack}' runs on port {running_port}, but "
                f"the settings ask for {self.port} (LOYALTY_PG_PORT); run `loyalty stack down` "
                f"with the old settings first."
            )

    def status(self, probe: bool = False) -> ServiceStatus:
        if not self.settings.uses_local_database:
            try:
                addresses = postgres_addresses(self.settings.db_url)
            except ValueError:
                return ServiceStatus("postgres", "external", "(unreadable URL)", reachable=False)
            answers = reachable(addresses) if probe else None
            return ServiceStatus("postgres", "external", _shown(addresses), reachable=answers)
        pid = self.pid()
        return ServiceStatus(
            "postgres",
            "running" if pid else "stopped",
            f"127.0.0.1:{self.port}",
            pid=pid,
            log_file=self.log_file,
        )

    def up(self, timeout: float) -> None:
        if self.pid() is not None:
            self._check_running_port()
            return
        _require_free_port(self.port, "PostgreSQL", "LOYALTY_PG_PORT")
        self._prepare_folder()
        if not (self.data / "PG_VERSION").exists():
            self._initdb()
        self._write_conf()
        log.info("postgres_starting", port=self.port, log=str(self.log_file))
        cmd = self._cmd(
            self._bin("pg_ctl"),
            "start",
            "-D", str(self.data),
            "-l", str(self.log_file),
            "-w", "-t", str(max(1, int(timeout))),
        )  # fmt: skip
        try:
            _run(cmd, "Starting PostgreSQL", self.log_file)
        except StackError as exc:
            raise StackError(
                f"PostgreSQL did not start on port {self.port}; see {self.log_file}:\n"
                f"{_tail(self.log_file)}"
            ) from exc
        _run_sync(self._ensure_database)

    def _prepare_folder(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if not self._as_root:
            return
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            # Debian's postgresql package creates this user; a machine without it gets one.
            _run(
                ["useradd", "--system", "--user-group", "--no-create-home",
                 "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", "postgres"],
                "Creating the postgres system user",
            )  # fmt: skip
            owner = pwd.getpwnam("postgres")
        for folder in (self.root, self.socket_dir):
            if folder.stat().st_uid != owner.pw_uid:
                _run(["chown", "-R", "postgres:", str(folder)], f"chown {folder}")
        probe = subprocess.run(self._cmd("test", "-w", str(self.root)), check=False)
        if probe.returncode != 0:
            raise StackError(
                f"The postgres user cannot reach {self.root} (a parent folder is not open to "
                f"other users); put the project under a path it can enter or point "
                f"LOYALTY_STACK_DIR to one."
            )

    def _initdb(self) -> None:
        log.info("postgres_initdb", data=str(self.data))
        _run(
            self._cmd(
                self._bin("initdb"),
                "-D", str(self.data),
                # The bootstrap superuser is the engine's own role, so no role to create.
                "--username=loyalty",
                # Loopback only (listen_addresses below): trust is the usual dev choice.
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-instructions",
            ),
            "initdb",
        )  # fmt: skip
        conf = self.data / "postgresql.conf"
        with conf.open("a") as handle:
            # Our settings live in a file of their own, rewritten at every start.
            handle.write("\ninclude_if_exists = 'loyalty.conf'\n")

    def _write_conf(self) -> None:
        conf = self.data / "loyalty.conf"
        conf.write_text(
            "# Written by loyalty/stack.py at every start: edit core.settings instead.\n"
            "listen_addresses = '127.0.0.1'\n"
            f"port = {self.port}\n"
            f"unix_socket_directories = '{self.socket_dir}'\n"
            # Workers, the relay, the admin UI and tests each hold a pool.
            "max_connections = 200\n"
            # A worker batch takes one advisory lock per order it touches (up to ~1000);
            # the default table (64 per connection) runs out with a few batches at once.
            "max_locks_per_transaction = 256\n"
            # Batches update cards all over the table: after each checkpoint the first change
            # of every page writes the whole page to the WAL. Fewer checkpoints, fewer of those
            # (PostgreSQL's CPU per event 141-145 -> 124-129 us in the benchmark), and a cache
            # that holds the benchmark's 100,000 cards and their indexes.
            "shared_buffers = 256MB\n"
            "max_wal_size = 2GB\n"
            "checkpoint_timeout = 15min\n" + self._statement_timing()
        )
        if self._as_root:
            shutil.chown(conf, "postgres", "postgres")

    def _statement_timing(self) -> str:
        # The benchmark's stack times PostgreSQL's statements (``bench``: PostgreSQL's time per
        # event by statement); the other stacks do without the extension's small cost. A
        # server built without it would not start with it, hence the check.
        library = Path(self._bin("postgres")).parent.parent / "lib" / "pg_stat_statements.so"
        if self.settings.stack != "bench" or not library.exists():
            return ""
        return "shared_preload_libraries = 'pg_stat_statements'\n"

    async def _ensure_database(self) -> None:
        conn = await asyncpg.connect(with_database(self.settings.db_url, "postgres"))
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = 'loyalty'")
            if not exists:
                await conn.execute("CREATE DATABASE loyalty")
        finally:
            await conn.close()

    def down(self, timeout: float) -> None:
        if not self.settings.uses_local_database or self.pid() is None:
            return
        log.info("postgres_stopping")
        _run(
            self._cmd(
                self._bin("pg_ctl"), "stop", "-D", str(self.data),
                "-m", "fast", "-w", "-t", str(max(1, int(timeout))),
            ),
            "Stopping PostgreSQL",
            self.log_file,
        )  # fmt: skip


# --------------------------------------------------------------------------- kafka


def new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        # Kafka's own generator skips ids starting with "-": they read as command options.
        if not cluster_id.startswith("-"):
            return cluster_id


def find_java() -> str | None:
    """``$JAVA_HOME/bin/java``, else ``java`` on the PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    return shutil.which("java")


class _Kafka:
    """A single KRaft node (broker and controller) in ``<stack>/kafka``."""

    def __init__(self, settings: Settings, libs: Path) -> None:
        self.settings = settings
        self.libs = libs
        self.root = settings.stack_path / "kafka"
        self.data = self.root / "data"
        self.properties = self.root / "server.properties"
        self.log_file = self.root / "kafka.log"
        self.pid_file = self.root / "kafka.pid"
        self.port = settings.local_kafka_port
        self.controller_port = settings.local_controller_port

    def pid(self) -> int | None:
        """The broker's pid if it runs, from the pid file or, when that is lost, /proc."""
        markers = (_KAFKA_MAIN_CLASS, str(self.properties))
        pid = read_pid_file(self.pid_file, *markers)
        if pid is None and self.root.exists():
            pid = find_process(*markers)
            if pid is not None:
                self.pid_file.write_text(f"{pid}\n")
        return pid

    def status(self, probe: bool = False) -> ServiceStatus:
        if not self.settings.uses_local_kafka:
            try:
                addresses = kafka_addresses(self.settings.bootstrap)
            except ValueError:
                return ServiceStatus("kafka", "external", self.settings.bootstrap, reachable=False)
            answers = reachable(addresses) if probe else None
            return ServiceStatus("kafka", "external", self.settings.bootstrap, reachable=answers)
        pid = self.pid()
        return ServiceStatus(
            "kafka",
            "running" if pid else "stopped",
            self.settings.bootstrap,
            pid=pid,
            log_file=self.log_file,
        )

    def _java(self) -> list[str]:
        java = find_java()
        if java is None:
            raise StackError("Java 17+ is missing: run `make setup` or set JAVA_HOME.")
        if not any(self.libs.glob("kafka_2.13-*.jar")):
            raise StackError(f"The Kafka jars are missing in {self.libs}: run `make setup`.")
        return [
            java,
            *shlex.split(self.settings.kafka_heap),
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            f"-Dkafka.logs.dir={self.root}",
            "-cp",
            f"{self.libs}/*",  # the JVM expands the wildcard itself
        ]

    def up(self, timeout: float) -> None:
        if self.pid() is not None:
            if self.properties.read_text() != self._render_properties():
                raise StackError(
                    f"Kafka of stack '{self.settings.stack}' runs with other settings than "
                    f"asked for (LOYALTY_KAFKA_PORT, LOYALTY_KAFKA_CONTROLLER_PORT); run "
                    f"`loyalty stack down` with the old settings first."
                )
            return
        _require_free_port(self.port, "Kafka", "LOYALTY_KAFKA_PORT")
        _require_free_port(
            self.controller_port, "the Kafka controller", "LOYALTY_KAFKA_CONTROLLER_PORT"
        )
        java = self._java()
        self.root.mkdir(parents=True, exist_ok=True)
        self._write_properties()
        if not (self.data / "meta.properties").exists():
            log.info("kafka_format", data=str(self.data))
            _run(
                [*java, "kafka.tools.StorageTool", "format", "--standalone",
                 "-t", new_cluster_id(), "-c", str(self.properties)],
                "Formatting the Kafka storage",
            )  # fmt: skip
        if self.log_file.exists():
            # One file per run keeps the reason of the last failure easy to find.
            self.log_file.replace(self.log_file.with_name("kafka.log.1"))
        log.info("kafka_starting", bootstrap=self.settings.bootstrap, log=str(self.log_file))
        with self.log_file.open("ab") as out:
            process = subprocess.Popen(
                [*java, "kafka.Kafka", str(self.properties)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                # Its own session: Ctrl-C in the terminal that ran `make` leaves it alone.
                start_new_session=True,
            )
        self.pid_file.write_text(f"{process.pid}\n")
        self._wait_until_listening(process, timeout)

    def _render_properties(self) -> str:
        return Template(SERVER_PROPERTIES_TEMPLATE.read_text()).substitute(
            kafka_port=self.port,
            controller_port=self.controller_port,
            data_dir=self.data,
        )

    def _write_properties(self) -> None:
        self.properties.write_text(self._render_properties())

    def _wait_until_listening(self, process: subprocess.Popen[bytes], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = process.poll()
            if code is not None:
                self.pid_file.unlink(missing_ok=True)
                raise StackError(
                    f"Kafka stopped during start (exit code {code}); see {self.log_file}:\n"
                    f"{_tail(self.log_file)}"
                )
            if _port_answers(self.port):
                return
            time.sleep(0.2)
        raise StackError(
            f"Kafka did not listen on port {self.port} within {timeout:.0f} s; see "
            f"{self.log_file}:\n{_tail(self.log_file)}"
        )

    def down(self, timeout: float) -> None:
        pid = self.pid()
        if pid is None:
            return
        log.info("kafka_stopping", pid=pid)
        markers = (_KAFKA_MAIN_CLASS, str(self.properties))
        # SIGTERM runs the broker's controlled shutdown, which flushes and closes the logs.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and is_alive(pid, *markers):
            time.sleep(0.2)
        if is_alive(pid, *markers):
            log.warning("kafka_killed", pid=pid, after_s=timeout)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            while is_alive(pid, *markers):
                time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)


# --------------------------------------------------------------------------- topics


def wanted_topics(settings: Settings) -> dict[str, int]:
    """Every contract topic and its partition count."""
    return {
        spec.topic.value: settings.input_partitions if spec.is_input else OUTPUT_PARTITIONS
        for spec in TOPICS
    }


async def ensure_topics(
    bootstrap: str, topics: dict[str, int], replication_factor: int | None = None
) -> None:
    """Create the missing topics and grow those with too few partitions; never shrinks.

    ``replication_factor`` defaults to the smaller of 3 and the number of brokers.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        await admin.start()
        await _ensure_topics_once(admin, topics, replication_factor)
    finally:
        await admin.close()


async def _ensure_topics_once(
    admin: AIOKafkaAdminClient, topics: dict[str, int], replication_factor: int | None
) -> None:
    existing = {
        t["topic"]: len(t["partitions"])
        for t in await admin.describe_topics()
        if t["error_code"] == 0
    }
    if replication_factor is None:
        brokers = (await admin.describe_cluster())["brokers"]
        replication_factor = max(1, min(3, len(brokers)))
    missing = [
        NewTopic(name, partitions, replication_factor)
        for name, partitions in topics.items()
        if name not in existing
    ]
    if missing:
        log.info("kafka_topics_create", topics=[t.name for t in missing])
        response = await admin.create_topics(missing)
        for error in response.topic_errors:
            name, code = error[0], error[1]
            # 36: TOPIC_ALREADY_EXISTS, when another process created it in between.
            if code not in (0, 36):
                message = error[2] if len(error) > 2 else ""
                raise StackError(f"Creating topic {name} failed: error {code} {message}")
    grow = {
        name: NewPartitions(partitions)
        for name, partitions in topics.items()
        if name in existing and existing[name] < partitions
    }
    if grow:
        log.info("kafka_topics_grow", topics=sorted(grow))
        await admin.create_partitions(grow)


async def ensure_group_coordination(bootstrap: str) -> None:
    """Wait-free check that consumer groups work: commit an offset for a probe group.

    On a new broker the first group call creates the offsets topic, and until it is ready
    every group call fails (coordinator not available). Done here, the stack is ready when
    ``up`` returns, not a few seconds later for whoever comes first.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id="loyalty-stack-probe",
        enable_auto_commit=False,
        request_timeout_ms=10_000,
    )
    await consumer.start()
    try:
        probe = TopicPartition(Topic.DLQ.value, 0)
        consumer.assign([probe])
        await consumer.commit({probe: 0})
    finally:
        await consumer.stop()


# --------------------------------------------------------------------------- the stack


class LocalStack:
    """The services of one named stack (``settings.stack``) under ``settings.stack_path``."""

    def __init__(self, settings: Settings, kafka_libs: Path = KAFKA_LIBS) -> None:
        self.settings = settings
        self.postgres = _Postgres(settings)
        self.kafka = _Kafka(settings, kafka_libs)
        self._lock_file = settings.stack_path / ".lock"

    def up(self, timeout: float = 120.0) -> StackStatus:
        """Start what is local and not running, wait until it answers, ensure the topics.

        Raises ``StackError`` with a message for people (a taken port, a start that failed
        with the tail of its log) instead of hanging past ``timeout`` seconds per service.
        """
        local = self.settings.uses_local_database or self.settings.uses_local_kafka
        # Only local services need the stack folder and its lock (a container that merely
        # ensures topics on an external Kafka may have no writable folder at all).
        with _locked(self._lock_file) if local else contextlib.nullcontext():
            if self.settings.uses_local_database:
                self.postgres.up(timeout)
            if self.settings.uses_local_kafka:
                self.kafka.up(timeout)
            self._ensure_topics(timeout)
        return self.status()

    def _ensure_topics(self, timeout: float) -> None:
        errors: list[Exception] = []

        async def until_done() -> None:
            async with asyncio.timeout(timeout):
                await self._ensure_topics_retrying(errors)

        try:
            with _quiet("aiokafka"):
                _run_sync(until_done)
        except TimeoutError as exc:
            where = (
                f"see {self.kafka.log_file}"
                if self.settings.uses_local_kafka
                else "check LOYALTY_KAFKA_BOOTSTRAP"
            )
            last = f"; last error: {errors[-1]!r}" if errors else ""
            raise StackError(
                f"Kafka at {self.settings.bootstrap} did not accept the topics within "
                f"{timeout:.0f} s ({where}){last}"
            ) from exc

    async def _ensure_topics_retrying(self, errors: list[Exception]) -> None:
        # A broker that just opened its port may have no controller yet, and an external
        # one may still be starting (docker compose): retry until the caller's timeout.
        while True:
            try:
                await ensure_topics(
                    self.settings.bootstrap,
                    wanted_topics(self.settings),
                    replication_factor=1 if self.settings.uses_local_kafka else None,
                )
                await ensure_group_coordination(self.settings.bootstrap)
                return
            except (KafkaError, OSError, StackError) as exc:
                errors.append(exc)
                await asyncio.sleep(0.5)

    def restart(self, service: Literal["postgres", "kafka"], timeout: float = 120.0) -> StackStatus:
        """Stop and start one local service, its data kept; its clients must ride it out.

        For fault tests (a broker or database restart in the middle of a load). Raises
        ``StackError`` when the service is external: it is not this stack's to restart.
        """
        local = (
            self.settings.uses_local_kafka
            if service == "kafka"
            else self.settings.uses_local_database
        )
        if not local:
            raise StackError(f"{service} is external: this stack cannot restart it.")
        with _locked(self._lock_file):
            if service == "kafka":
                self.kafka.down(timeout)
                self.kafka.up(timeout)
                # Listening is not serving yet: wait until the broker accepts admin requests.
                self._ensure_topics(timeout)
            else:
                self.postgres.down(timeout)
                self.postgres.up(timeout)
        return self.status()

    def down(self, timeout: float = 60.0) -> StackStatus:
        """Stop the local services (Kafka first: it has clients to let go). Data stays."""
        with _locked(self._lock_file):
            if self.settings.uses_local_kafka:
                self.kafka.down(timeout)
            self.postgres.down(timeout)
        return self.status()

    def status(self, *, probe: bool = False) -> StackStatus:
        """What runs, from pid files and /proc. Asks no service anything, unless ``probe``:
        then each external service gets a TCP connection (``reachable``)."""
        return StackStatus(
            stack=self.settings.stack,
            postgres=self.postgres.status(probe),
            kafka=self.kafka.status(probe),
            kafka_bootstrap=self.settings.bootstrap,
            database_url=self.settings.db_url,
            admin_url=self.settings.admin_url,
            metrics_urls=registered_metrics_urls(self.settings),
        )
