"""``loyalty stack up|down|status``: the local PostgreSQL and Kafka (loyalty/stack.py)."""

from __future__ import annotations

import json

import typer

from core.settings import get_settings
from loyalty.cli import app
from loyalty.stack import LocalStack, ServiceStatus, StackError, StackStatus

stack_app = typer.Typer(
    help="The local stack: PostgreSQL and Kafka of the project's own (LOYALTY_STACK=dev|test).",
    no_args_is_help=True,
)
app.add_typer(stack_app, name="stack")


def _state(service: ServiceStatus) -> str:
    if service.state != "external" or service.reachable is None:
        return service.state
    return "external, " + ("answers" if service.reachable else "NOT ANSWERING")


def _print(status: StackStatus) -> None:
    typer.echo(f"stack {status.stack}")
    for service in (status.postgres, status.kafka):
        pid = f" pid {service.pid}" if service.pid else ""
        log_file = f" log {service.log_file}" if service.log_file else ""
        typer.echo(f"  {service.name:<9}{_state(service):<9} {service.address}{pid}{log_file}")
    for name, url in status.urls().items():
        typer.echo(f"  {name:<16}{url}")
    if status.metrics_urls:
        typer.echo("  metrics")
        for process, url in status.metrics_urls.items():
            typer.echo(f"    {process:<20}{url}")


@stack_app.command("up")
def up(
    timeout: float = typer.Option(120.0, help="Seconds to wait for each service."),
) -> None:
    """Start PostgreSQL and Kafka unless they run or are external; create the topics."""
    try:
        status = LocalStack(get_settings()).up(timeout=timeout)
    except StackError as exc:
        typer.echo(f"loyalty stack up: {exc}", err=True)
        raise typer.Exit(1) from exc
    _print(status)


@stack_app.command("down")
def down(
    timeout: float = typer.Option(60.0, help="Seconds to wait before killing Kafka."),
) -> None:
    """Stop the local services of this stack; their data stays for the next `up`."""
    try:
        status = LocalStack(get_settings()).down(timeout=timeout)
    except StackError as exc:
        typer.echo(f"loyalty stack down: {exc}", err=True)
        raise typer.Exit(1) from exc
    _print(status)


@stack_app.command(
    "status",
    epilog="Exit status: 0 when both services run (external ones: answer a TCP connection), "
    "1 when one does not.",
)
def status(
    as_json: bool = typer.Option(
        False,
        "--json",
        help="As JSON: the URLs of CONTRACT.md section 6, plus running, services and the "
        "metrics_urls of the engine's live processes.",
    ),
) -> None:
    """Where the services are and whether they run: this stack's own from their processes,
    external ones (LOYALTY_DATABASE_URL, LOYALTY_KAFKA_BOOTSTRAP) by a TCP connection."""
    current = LocalStack(get_settings()).status(probe=True)
    if as_json:
        typer.echo(json.dumps(current.status_json()))
    else:
        _print(current)
    if not current.running:
        # Scripts ask "is the stack up?" with the exit status; the output says what is not.
        raise typer.Exit(1)
