"""``loyalty run``: the whole engine for a demo or a developer, in the foreground."""

from __future__ import annotations

import asyncio

import typer

from loyalty.cli import app
from loyalty.settings import get_settings
from loyalty.supervisor import Service


@app.command()
def run(
    workers: int = typer.Option(1, min=1, help="Worker processes."),
    simulate_rate: float = typer.Option(
        2.0, help="Simulated events per second for the demo (0: none)."
    ),
) -> None:
    """Migrate, then run workers, relay, admin UI and demo traffic until Ctrl-C."""
    from loyalty import migrate
    from loyalty.supervisor import Supervisor

    settings = get_settings()
    migrate.upgrade()
    password = asyncio.run(_initial_admin())
    services = [Service(f"worker-{i + 1}", ["worker"]) for i in range(workers)]
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
    typer.echo("  running: " + ", ".join(s.name for s in services) + " — Ctrl-C stops them")
    supervisor.watch()
    typer.echo("stopped")


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
