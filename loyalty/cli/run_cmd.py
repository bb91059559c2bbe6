"""``loyalty run``: the whole engine for a demo or a developer, in the foreground."""

from __future__ import annotations

import asyncio
import os

import typer

from core.settings import Settings, get_settings
from loyalty.cli import app
from loyalty.supervisor import Service


@app.command()
def run(
    workers: int = typer.Option(1, min=1, help="Worker processes."),
    simulate_rate: float = typer.Option(
        2.0, help="Simulated events per second for the demo (0: none)."
    ),
) -> None:
    """Migrate, then run workers, relay, admin UI and demo traffic until Ctrl-C.

    The demo traffic goes only to the merchants of demo/demo.yaml (loyalty simulate).
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
        Service("admin", ["admin"]),
    ]
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
