"""Configuration, from the environment (``LOYALTY_*``) with defaults for the local stack."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]

# Each named stack gets its own folder and ports, so `make test` never touches the data or
# the topics of the stack that `make run` started. All below 32768, outside Linux's ephemeral
# range: a restarted broker must not find its port taken by some client's outgoing connection.
_STACK_PORTS: dict[str, tuple[int, int, int, int]] = {
    # name: (postgres, kafka, kafka controller, admin ui)
    "dev": (15432, 19092, 19093, 8080),
    "test": (15442, 19192, 19193, 8090),
    # `make bench`: measurements must not share a broker or a database with running tests.
    "bench": (15452, 19292, 19293, 8100),
}


# Offsets of each process role's metrics port from its stack's base (Settings.metrics_port_for);
# further workers of `loyalty run` take base + 10, 11, ...
METRICS_ROLE_OFFSETS: dict[str, int] = {
    "admin": 0,
    "relay": 1,
    "wallet-sync": 2,
    "webhooks": 3,
    "worker": 4,
}


class Settings(BaseSettings):
    """Every knob of the engine. Unset service URLs mean "use the local stack"."""

    model_config = SettingsConfigDict(env_prefix="LOYALTY_", extra="ignore")

    database_url: str | None = None
    kafka_bootstrap: str | None = None

    stack: str = "dev"
    stack_dir: Path | None = None
    pg_port: int | None = None
    kafka_port: int | None = None
    kafka_controller_port: int | None = None
    kafka_heap: str = "-Xms256m -Xmx768m"
    input_partitions: int = Field(default=6, ge=1)

    admin_host: str = "127.0.0.1"
    admin_port: int | None = None
    admin_public_url: str | None = None
    session_secret: str = "change-me-in-production"  # noqa: S105 - a dev default, overridden in prod
    # bcrypt's cost (2**rounds iterations) for admin passwords and for staff PINs. A PIN check
    # runs bcrypt once per PIN of the store, and a 4-digit PIN is protected by the lockout far
    # more than by the cost, so PINs get a lower one. Tests lower both for speed.
    bcrypt_rounds: int = Field(default=12, ge=4, le=31)
    pin_bcrypt_rounds: int = Field(default=10, ge=4, le=31)

    # Email to customers (the card link of self-enrolment). Unset host: no email is sent, and
    # the enrol page tells people to ask at the counter. TLS: "starttls" upgrades a plain
    # connection (port 587), "tls" speaks TLS from the start (465), "none" only for a mail
    # sink on this machine.
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_tls: Literal["starttls", "tls", "none"] = "starttls"
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_sender: str = "loyalty@localhost"
    smtp_timeout_s: float = Field(default=10.0, gt=0)
    # Self-enrolment and terminal pairing answers per client address and per email in a
    # sliding window: enough for a family at one address, too few to probe emails.
    enroll_limit_per_ip: int = Field(default=10, ge=1)
    enroll_limit_per_email: int = Field(default=3, ge=1)
    enroll_limit_window_s: int = Field(default=3600, ge=1)
    pairing_limit_per_ip: int = Field(default=10, ge=1)

    consumer_group: str = "loyalty-workers"
    batch_max_records: int = Field(default=1000, ge=1)
    # How long the worker waits for a first record; FastStream also sleeps this long after an
    # empty wait, which every event arriving then waits out too.
    batch_timeout_ms: int = Field(default=10, ge=1)
    # Start a full batch's rules while the batch before is still being written and committed
    # (``domain.engine.overlap``, docs/scaling.md); false: one batch at a time, as in v1.
    batch_overlap: bool = True

    expiry_local_time: str = "03:00"
    expiry_timezone: str = "Europe/Luxembourg"

    log_level: str = "INFO"
    log_json: bool = False

    # Each long-running process serves /metrics, /healthz and /readyz on a port of its own
    # (core.health). Unset: the role's port of this stack (``metrics_port_for``), or any free
    # one when that is taken; 0: any free port. The processes register their addresses under
    # the stack folder for ``loyalty stack status --json``.
    metrics_enabled: bool = True
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = Field(default=None, ge=0, le=65535)

    # Webhooks (consumers.webhooks): a consumer group of their own on the output topics.
    webhook_group: str = "loyalty-webhooks"
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    # Retries back off exponentially with jitter from the first to the largest pause, for at
    # most the retry window; then the delivery is parked until someone re-sends it.
    webhook_retry_first_s: float = Field(default=10.0, gt=0)
    webhook_retry_max_s: float = Field(default=3600.0, gt=0)
    webhook_retry_window_s: float = Field(default=86400.0, gt=0)
    webhook_concurrency: int = Field(default=64, ge=1)
    webhook_per_endpoint: int = Field(default=8, ge=1)
    # Endpoints on private, loopback or link-local addresses (and plain http) are refused
    # unless this is set: a merchant's admin must not make the engine call into its network.
    webhook_allow_private: bool = False

    def _ports(self) -> tuple[int, int, int, int]:
        return _STACK_PORTS.get(self.stack, _STACK_PORTS["dev"])

    @property
    def stack_path(self) -> Path:
        """The git-ignored folder holding the local stack's data, logs and pid files."""
        return self.stack_dir or REPO_ROOT / ".stack" / self.stack

    @property
    def local_pg_port(self) -> int:
        return self.pg_port or self._ports()[0]

    @property
    def local_kafka_port(self) -> int:
        return self.kafka_port or self._ports()[1]

    @property
    def local_controller_port(self) -> int:
        return self.kafka_controller_port or self._ports()[2]

    @property
    def admin_http_port(self) -> int:
        return self.admin_port or self._ports()[3]

    def metrics_port_for(self, role: str) -> int:
        """The default metrics port of a process role on this stack (dev 9400, test 9500,
        bench 9600; admin +0, relay +1, wallet-sync +2, webhooks +3, worker +4)."""
        base = {"dev": 9400, "test": 9500, "bench": 9600}.get(self.stack, 9400)
        return base + METRICS_ROLE_OFFSETS.get(role, 9)

    @property
    def mail_sink_port(self) -> int:
        """The local mail sink's SMTP port (``loyalty run`` on the local stack)."""
        return self._ports()[3] + 25

    @property
    def uses_local_database(self) -> bool:
        return self.database_url is None

    @property
    def uses_local_kafka(self) -> bool:
        return self.kafka_bootstrap is None

    @property
    def db_url(self) -> str:
        """A plain ``postgresql://`` URL, as people and tools write it."""
        if self.database_url:
            return plain_postgres_url(self.database_url)
        return f"postgresql://loyalty@127.0.0.1:{self.local_pg_port}/loyalty"

    @property
    def async_db_url(self) -> str:
        """The same URL for SQLAlchemy's asyncpg dialect."""
        return asyncpg_url(self.db_url)

    @property
    def bootstrap(self) -> str:
        return self.kafka_bootstrap or f"127.0.0.1:{self.local_kafka_port}"

    @property
    def admin_url(self) -> str:
        return self.admin_public_url or f"http://{self.admin_host}:{self.admin_http_port}"


def plain_postgres_url(url: str) -> str:
    """``postgresql+asyncpg://`` and ``postgres://`` both become ``postgresql://``."""
    for prefix in ("postgresql+asyncpg://", "postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def asyncpg_url(url: str) -> str:
    """The SQLAlchemy URL for asyncpg of any PostgreSQL URL."""
    return "postgresql+asyncpg://" + plain_postgres_url(url)[len("postgresql://") :]


def with_database(url: str, database: str) -> str:
    """The same server, another database name."""
    base, _, _ = plain_postgres_url(url).rpartition("/")
    return f"{base}/{database}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
