"""``loyalty run``: the whole engine for a demo or a developer, in the foreground."""

from __future__ import annotations

import asyncio
import os
import socket

import typer

from core.settings import METRICS_ROLE_OFFSETS, Settings, get_settings
from loyalty.cli import app
from loyalty.supervisor import Service


@app.command()
def run(
    workers: int = typer.Option(1, min=1, help="Worker processes."),
    simulate_rate: float = typer.Option(
        2.0, help="Simulated events per second for the demo (0: none)."
    ),
) -> None:
    """Migrate, then run workers, relay, wallet sync, webhooks, admin UI and demo traffic
    until Ctrl-C.

    The demo traffic goes only to the merchants of demo/demo.yaml (loyalty simulate). Each
    engine process serves its metrics and health probes on a port of its own, printed here.
    """
    from loyalty import migrate
    from loyalty.supervisor import Supervisor

    settings = get_settings()
    _refuse_a_bad_start(settings)
    migrate.upgrade()
    password = asyncio.run(_initial_admin())
    services = [Service(f"worker-{i + 1}", ["worker"]) for i in range(workers)]
    services += _mail_sink(settings)
    services += [
        Service("relay", ["relay"]),
        Service("wallet-sync", ["wallet-sync"]),
        Service("webhooks", ["webhooks"]),
        Service("admin", ["admin"]),
    ]
    metrics = assign_metrics_ports(settings, services)
    services += _optional_services(simulate_rate)
    supervisor = Supervisor(services, settings.stack_path / "logs")
    supervisor.start()
    typer.echo("")
    typer.echo(f"  admin UI        {settings.admin_url}")
    if password:
        typer.echo(f"  first sign-in   admin / {password}   (shown once; change it)")
    typer.echo(f"  kafka           {settings.bootstrap}")
    typer.echo(f"  postgres        {settings.db_url}")
    typer.echo(f"  logs            {supervisor.log_dir}")
    if any(s.name == "mail-sink" for s in services):
        typer.echo(
            f"  email           customers' email is kept in {settings.stack_path / 'mail'} "
            f"(a local SMTP sink on 127.0.0.1:{settings.mail_sink_port}; nothing is sent out)"
        )
    else:
        typer.echo(f"  email           through {settings.smtp_host}:{settings.smtp_port}")
    if simulate_rate > 0:
        typer.echo(f"  demo traffic    {_demo_merchants()}")
    for name, url in metrics.items():
        typer.echo(f"  metrics         {name:<12} {url}")
    typer.echo("  running: " + ", ".join(s.name for s in services) + " — Ctrl-C stops them")
    supervisor.watch()
    typer.echo("stopped")


def _refuse_a_bad_start(settings: Settings) -> None:
    """Stop here, with the reason, when the admin panel or the wallet sync would refuse to
    start: otherwise the supervisor would restart them in a loop behind a cheerful banner."""
    from admin_ui.app import StartRefused, check_start
    from wallet import WalletConfigError, get_wallet_settings

    try:
        check_start(settings, get_wallet_settings())
    except (StartRefused, WalletConfigError) as exc:
        typer.echo(f"loyalty run: {exc}", err=True)
        raise typer.Exit(2) from None


# The commands that serve an ops port (core.health).
METRICS_COMMANDS = frozenset({"worker", "relay", "wallet-sync", "webhooks", "admin"})


def metrics_port(settings: Settings, service: str) -> int:
    """The default metrics port of a ``loyalty run`` service: its role's port of the stack;
    worker-1 the worker's, worker-N (N >= 2) base + 10 + N - 2."""
    role, _, number = service.rpartition("-")
    if role == "worker" and number.isdigit():
        if int(number) == 1:
            return settings.metrics_port_for("worker")
        base = settings.metrics_port_for("admin") - METRICS_ROLE_OFFSETS["admin"]
        return base + 10 + int(number) - 2
    return settings.metrics_port_for(service)


def assign_metrics_ports(settings: Settings, services: list[Service]) -> dict[str, str]:
    """Give each engine process an explicit ``LOYALTY_METRICS_PORT`` (else two workers would
    race for one port); returns each one's metrics URL for the banner.

    A port another program holds is replaced by a free one, so the process still starts and
    the banner still says where it is.
    """
    if not settings.metrics_enabled:
        return {}
    urls: dict[str, str] = {}
    taken: set[int] = set()
    for service in services:
        if service.args[0] not in METRICS_COMMANDS:
            continue
        port = metrics_port(settings, service.name)
        if settings.metrics_port == 0 or not _free(settings.metrics_host, port):
            # The kernel may hand the same free port out twice: no two services share one.
            port = _any_free_port(settings.metrics_host)
            while port in taken:
                port = _any_free_port(settings.metrics_host)
        taken.add(port)
        service.env["LOYALTY_METRICS_PORT"] = str(port)
        urls[service.name] = f"http://{settings.metrics_host}:{port}/metrics"
    return urls


def _free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _any_free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
    return port


def _mail_sink(settings: Settings) -> list[Service]:
    """Without a mail server of its own, a local run gets a sink that keeps every message as a
    file, so self-enrolment's email can be tried end to end; the children inherit where it is.
    """
    if settings.smtp_host:
        return []
    os.environ.update(
        LOYALTY_SMTP_HOST="127.0.0.1",
        LOYALTY_SMTP_PORT=str(settings.mail_sink_port),
        LOYALTY_SMTP_TLS="none",
    )
    return [Service("mail-sink", ["mail-sink"])]


def _demo_merchants() -> str:
    from consumers.simulate import DEMO_FILE, DemoFileError, demo_merchant_codes

    try:
        return f"{', '.join(demo_merchant_codes())} (only the merchants of {DEMO_FILE.name})"
    except DemoFileError as exc:
        return f"none: {exc}"


def _optional_services(simulate_rate: float) -> list[Service]:
    services: list[Service] = []
    if simulate_rate > 0:
        services.append(Service("simulate", ["simulate", "--rate", str(simulate_rate)]))
    return services


async def _initial_admin() -> str | None:
    from domain.db import make_engine, make_sessionmaker
    from domain.users import ensure_initial_admin

    engine = make_engine(get_settings())
    try:
        async with make_sessionmaker(engine)() as session:
            password = await ensure_initial_admin(session)
            await session.commit()
            return password
    finally:
        await engine.dispose()
