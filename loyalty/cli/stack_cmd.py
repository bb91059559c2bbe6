"""``loyalty stack up|down|status``: the local PostgreSQL and Kafka (loyalty/stack.py)."""

from __future__ import annotations

import json

import typer

from loyalty.cli import app
from loyalty.settings import get_settings
from loyalty.stack import LocalStack, StackError, StackStatus

stack_app = typer.Typer(
    help="The local stack: PostgreSQL and Kafka of the project's own (LOYALTY_STACK=dev|test).",
    no_args_is_help=True,
)
app.add_typer(stack_app, name="stack")


def _print(status: StackStatus) -> None:
    typer.echo(f"stack {status.stack}")
    for service in (status.postgres, status.kafka):
        pid = f" pid {service.pid}" if service.pid else ""
        log_file = f" log {service.log_file}" if service.log_file else ""
        typer.echo(f"  {service.name:<9}{service.state:<9}{service.address}{pid}{log_file}")
    for name, url in status.urls().items():
        typer.echo(f"  {name:<16}{url}")


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


@stack_app.command("status")
def status(
    as_json: bool = typer.Option(
        False, "--json", help="Only the URLs, as CONTRACT.md section 6 gives them."
    ),
) -> None:
    """Where the services are and whether this stack runs them."""
    current = LocalStack(get_settings()).status()
    if as_json:
        typer.echo(json.dumps(current.urls()))
    else:
        _print(current)
